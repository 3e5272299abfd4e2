"""What `auto` runs a zoo model on: the fastest fp32 runtime, measured on this machine and cached.

The candidates are the installed runtimes that give the same answers as eager torch (fp32, within
1e-3 in probability): `onnxruntime`, `openvino` (its precision pinned to f32) and `torch`. Not
`int8` or `openvino-bf16` (other numerics: opt-in, under their own names) and not `compile`
(building it takes about a minute on a small CPU, longer than any run it would speed up).

"Fastest" is the most images/s at batch 8, the regime of `classify` and `evaluate` (batch 16) at
half the cost to time; ms at batch 1 is measured and shown beside it, not used to choose. Each
candidate is built, warmed up with one batch of each size, then timed for `seconds` (half at
batch 1, half at batch 8; at least one run each) on synthetic inputs of the model's input shape;
the median run counts, so one stall on a shared machine does not decide. A candidate that fails to
build or run is skipped, with its reason in the table.

The choice is cached as JSON in `cache_dir("tune")`, under a key made of the model's name, the
machine's fingerprint with the threads asked for (CPU, ISA features, cores, memory, OS, Python and
the runtime packages' versions: `topfive.machine.fingerprint`) and the ONNX export's format, so
any change of these measures again. $TOPFIVE_AUTO_RUNTIME=<candidate> pins the choice without
measuring (tests and CI, where timings mean nothing).

Model cards are not tuned: `auto` runs them on their format's reference runtime
(`registry.card_runtime`). Their graphs are quantised, and OpenVINO's integer kernels differ from
LiteRT's and ONNX Runtime's, so the runtimes that could run a card do not give the same answers.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from topfive import machine
from topfive.files import atomic_write, cache_dir
from topfive.runtime.export import EXPORT_FORMAT, slug
from topfive.tables import text_table

CANDIDATES = ("onnxruntime", "openvino", "torch")  # the order of the table
PACKAGES = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "openvino"), "torch": ("torch", "")}
ENV = "TOPFIVE_AUTO_RUNTIME"
DEFAULT_SECONDS = 1.5
BATCH = 8
FORMAT = 1  # of the cached JSON; bump when what is measured changes, so old choices are not reused


@dataclass(frozen=True)
class Row:
    """One candidate: its images/s at batch 8 and ms per image at batch 1, or why it was skipped."""

    runtime: str
    precision: str = ""
    images_per_s: float | None = None
    ms_batch1: float | None = None
    skipped: str = ""

    @property
    def timed(self) -> bool:
        return self.images_per_s is not None


@dataclass(frozen=True)
class Tuning:
    """What `auto` runs `model` on here (`choice`), why, and the table it was chosen from.

    `cached`: read from `path` rather than measured now. `runtime`: the chosen runtime itself when
    it was built while measuring (so `auto` does not build it twice), else None."""

    model: str
    choice: str
    why: str
    rows: tuple[Row, ...]
    key: str
    path: Path | None = None
    seconds: float = DEFAULT_SECONDS
    threads: int | None = None
    cached: bool = False
    runtime: object = field(default=None, repr=False, compare=False)

    def table(self) -> str:
        """The rows as a terminal table."""
        rows = [
            [r.runtime, r.precision or "-", f"{r.images_per_s:.1f}" if r.timed else "-",
             f"{r.ms_batch1:.1f}" if r.timed else "-",
             "chosen" if r.runtime == self.choice else (r.skipped or "")]
            for r in self.rows
        ]
        return text_table(rows, ["runtime", "precision", f"img/s (batch {BATCH})", "ms (batch 1)", "note"], {2, 3})


def pinned() -> str | None:
    """The runtime $TOPFIVE_AUTO_RUNTIME pins `auto` to, or None; a ValueError if it is not a candidate."""
    choice = os.environ.get(ENV, "").strip()
    if not choice:
        return None
    if choice not in CANDIDATES:
        raise ValueError(f"{ENV}={choice!r}: use one of {', '.join(CANDIDATES)} (the fp32 runtimes auto chooses from)")
    return choice


def installed(name: str) -> bool:
    return importlib.util.find_spec(PACKAGES[name][0]) is not None


@functools.cache
def current_fingerprint(threads: int | None) -> dict:
    """This machine's fingerprint, read once per process and threads (it asks nvidia-smi for the GPU)."""
    return machine.fingerprint(threads)


def cache_key(model: str, threads: int | None = None) -> str:
    """A short hash of what a choice depends on: model, machine and versions, threads, export format."""
    fp = machine.fingerprint_key(current_fingerprint(threads))
    what = {"model": model, "machine": fp, "export": EXPORT_FORMAT, "format": FORMAT}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def cache_path(model: str, threads: int | None = None) -> Path:
    return cache_dir("tune") / f"{slug(model)}-{cache_key(model, threads)}.json"


def median_seconds(run, batch: torch.Tensor, budget: float) -> float:
    """The median time of `run(batch)` over as many runs as fit in `budget` seconds (at least one)."""
    times: list[float] = []
    end = time.perf_counter() + budget
    while not times or time.perf_counter() < end:
        start = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_runtime(runtime, shape: tuple[int, ...], seconds: float) -> tuple[float, float]:
    """(images/s at batch 8, ms at batch 1) of `runtime.probabilities` on synthetic inputs of `shape`
    (C, H, W), after one warm-up run of each batch size (OpenVINO and ONNX Runtime plan per shape)."""
    generator = torch.Generator().manual_seed(0)
    one, eight = (torch.randn(n, *shape, generator=generator) for n in (1, BATCH))
    for batch in (one, eight):
        runtime.probabilities(batch)
    ms = 1000 * median_seconds(runtime.probabilities, one, seconds / 2)
    return BATCH / median_seconds(runtime.probabilities, eight, seconds / 2), ms


def first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:160]


def pick(rows: list[Row]) -> tuple[str, str]:
    """(choice, why): the timed row with the most images/s at batch 8, compared with the others."""
    timed = sorted((r for r in rows if r.timed), key=lambda r: r.images_per_s, reverse=True)
    if not timed:
        reasons = "; ".join(f"{r.runtime}: {r.skipped}" for r in rows)
        return "torch", f"no candidate could be timed ({reasons}); torch is the reference"
    best = timed[0]
    others = ", ".join(f"{best.images_per_s / r.images_per_s:.2f}x {r.runtime}" for r in timed[1:])
    why = f"the most images/s at batch {BATCH} here: {best.images_per_s:.1f}"
    return best.runtime, why + (f" ({others})" if others else " (the only candidate that ran)")


def measure(model: str, build, shape: tuple[int, ...], seconds: float = DEFAULT_SECONDS,
            threads: int | None = None, candidates=CANDIDATES) -> Tuning:
    """Time each installed candidate (`build(name)` makes it) and pick the fastest; not cached.

    Only the fastest so far is kept alive, so at most two copies of a large model are in memory."""
    rows, best, best_speed = [], None, -1.0
    for name in candidates:
        if not installed(name):
            rows.append(Row(name, skipped=f"not installed (pip install 'topfive[{PACKAGES[name][1]}]')"))
            continue
        try:
            runtime = build(name)
            speed, ms = time_runtime(runtime, shape, seconds)
        except Exception as e:  # noqa: BLE001  (one candidate failing leaves the others to choose from)
            rows.append(Row(name, skipped=first_line(e)))
            continue
        rows.append(Row(name, runtime.precision, speed, ms))
        if speed > best_speed:
            best, best_speed = runtime, speed
        del runtime
    choice, why = pick(rows)  # the fastest timed row: `best`'s, where there is one
    return Tuning(model, choice, why, tuple(rows), cache_key(model, threads), None, seconds, threads, runtime=best)


def load(path: Path) -> Tuning | None:
    """A cached choice, or None when there is none or it cannot be read (then it is measured again)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT or data["choice"] not in CANDIDATES:
            return None
        rows = tuple(Row(**row) for row in data["rows"])
        return Tuning(data["model"], data["choice"], data["why"], rows, data["key"], path,
                      data["seconds"], data["threads"], cached=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(tuning: Tuning, path: Path) -> Tuning:
    """Write the choice to `path` (atomically: a reader never sees half a file) with the fingerprint."""
    data = {
        "format": FORMAT, "model": tuning.model, "key": tuning.key, "choice": tuning.choice, "why": tuning.why,
        "seconds": tuning.seconds, "threads": tuning.threads, "rows": [asdict(r) for r in tuning.rows],
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "fingerprint": current_fingerprint(tuning.threads),
    }
    atomic_write(path, json.dumps(data, indent=2) + "\n")
    return dataclasses.replace(tuning, path=path)


def tuned(model: str, build, shape: tuple[int, ...], threads: int | None = None,
          seconds: float = DEFAULT_SECONDS, force: bool = False) -> Tuning:
    """The cached choice for `model` on this machine, else (or with `force`) measured and cached.

    A choice made when no candidate could be timed is returned but not cached, so the next use
    tries again."""
    path = cache_path(model, threads)
    if not force and (found := load(path)) is not None:
        return found
    tuning = measure(model, build, shape, seconds, threads)
    return save(tuning, path) if any(r.timed for r in tuning.rows) else tuning
