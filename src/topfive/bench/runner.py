"""Speed and memory of models, each measured in its own fresh process.

`run_bench(["alexnet", "efficientnet_lite0"], runtimes=["auto"], ...)` starts `python -m
topfive.bench.worker` once per (model, runtime) and repeat (PYTHONPATH derived from this package's
location), reads back the one JSON line the worker prints (how each figure is measured:
topfive.bench.worker), combines the repeats and reports their spread. A model that fails gets a row
with its error and empty figures; the others go on. `topfive.bench.results.write_results` writes the
result files.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import topfive
from topfive.bench.results import summary
from topfive.bench.timing import time_boxes
from topfive.machine import environment as describe_environment
from topfive.runtime.axis import pairs
from topfive.sampling import spread_evenly

WIDE_SPREAD_PCT = 10.0

# Figures whose spread over the repeats is reported.
SPREAD_FIELDS = [
    "latency_ms_median", "decode_ms", "preprocess_ms", "end_to_end_img_s", "rss_load_mib", "rss_run_mib",
    "cuda_peak_mib",
]
FIGURES = [
    "params", "gmacs", "weight_bytes", "latency_ms_median", "latency_ms_p90", "latency_ms_min", "latency_ms_max",
    "latency_runs", "decode_ms", "preprocess_ms", "end_to_end_img_s", "rss_baseline_mib", "rss_load_mib",
    "rss_run_mib", "cuda_peak_mib",
]
MODEL_PROPERTIES = ("params", "gmacs", "weight_bytes")  # the same in every repeat
LABELS = ("model", "canonical", "weights", "weights_note", "gmacs_counter", "device", "dtype", "threads",
          "rss_method", "runtime", "precision", "memory_format")
AMP_DTYPES = {"bf16": "bfloat16 autocast", "fp16": "float16 autocast"}


def worker_env(threads: int | None = None) -> dict:
    """This environment, with this package importable and the thread count set for OpenMP."""
    env = dict(os.environ)
    src = str(Path(topfive.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([src] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_worker(config: dict, timeout: float | None = None) -> dict:
    """One fresh process, one model, one JSON result (with "error" set if anything went wrong)."""
    cmd = [sys.executable, "-m", "topfive.bench.worker", json.dumps(config)]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=worker_env(config.get("threads"))
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        return {"error": f"worker exited with code {proc.returncode} and no result: {tail}"}
    return json.loads(lines[-1])


def pick_photos(photos_dir: str | os.PathLike | None, n: int) -> list[str]:
    """`n` photos spread evenly over the sorted list (so every category is represented)."""
    if not photos_dir:
        return []
    from topfive.decode.images import find_images

    found = find_images([photos_dir], recursive=True)
    if not found:
        raise FileNotFoundError(f"{photos_dir}: no image files")
    return spread_evenly(found, n)


def spread(values: list[float | None]) -> float | None:
    """(max - min) / median, percent; None with fewer than two values."""
    values = [v for v in values if v is not None]
    if len(values) < 2:
        return None
    mid = statistics.median(values)
    return abs(max(values) - min(values)) / abs(mid) * 100 if mid else 0.0


def combine(model: str, runs: list[dict]) -> dict:
    """Repeats of one model -> one row: medians, min/max of extremes, and the spread."""
    errors = [r.get("error") for r in runs if r.get("error")]
    if errors:
        row = {"model": model, "error": errors[0], "runs": runs, "pids": [r.get("pid") for r in runs]}
        for r in runs:  # the label and settings are still useful when known
            for key in ("weights", "device", "dtype", "threads", "canonical", "weights_note", "runtime"):
                if r.get(key) is not None:
                    row.setdefault(key, r[key])
        row["throughput_img_s"] = {}
        return row
    first = runs[0]
    row = {k: first.get(k) for k in LABELS}
    for key in FIGURES:
        values = [r.get(key) for r in runs if r.get(key) is not None]
        if not values:
            row[key] = None
        elif key in MODEL_PROPERTIES:
            row[key] = values[0]
        elif key == "latency_ms_min":
            row[key] = min(values)
        elif key == "latency_ms_max":
            row[key] = max(values)
        elif key == "latency_runs":
            row[key] = sum(values)
        else:
            row[key] = statistics.median(values)
    row["rss_loaded_mib"] = statistics.median(r["rss_loaded_mib"] for r in runs)
    # each repeat's 95 % interval of its median; over repeats, the widest span they make together
    intervals = [r["latency_ms_ci"] for r in runs if r.get("latency_ms_ci")]
    row["latency_ms_ci_low"] = min(lo for lo, _ in intervals) if intervals else None
    row["latency_ms_ci_high"] = max(hi for _, hi in intervals) if intervals else None
    row["throughput_ci"] = {
        bs: [min(r["throughput_ci"][bs][0] for r in runs), max(r["throughput_ci"][bs][1] for r in runs)]
        for bs in first.get("throughput_ci", {}) if all(bs in r.get("throughput_ci", {}) for r in runs)
    }
    row["throughput_img_s"] = {
        bs: statistics.median(r["throughput_img_s"][bs] for r in runs) for bs in first["throughput_img_s"]
    }
    spreads = {key: spread([r.get(key) for r in runs]) for key in SPREAD_FIELDS}
    spreads.update({f"throughput_bs{bs}": spread([r["throughput_img_s"][bs] for r in runs])
                    for bs in first["throughput_img_s"]})
    spreads = {k: v for k, v in spreads.items() if v is not None}
    row["spread"] = spreads
    if len(runs) < 2:
        row["spread_pct"], row["spread_note"] = None, ""  # one process: its intervals are the uncertainty
        lo, hi, mid = row["latency_ms_ci_low"], row["latency_ms_ci_high"], row.get("latency_ms_median")
        if lo is not None and hi is not None and mid and (hi - lo) / 2 / mid * 100 > WIDE_SPREAD_PCT:
            row["spread_note"] = (f"wide interval: the median latency's 95 % interval is ±{(hi - lo) / 2 / mid * 100:.0f} %"
                                  " (a busy machine?)")
    else:
        row["spread_pct"] = max(spreads.values()) if spreads else 0.0
        wide = [f"{k} {v:.0f} %" for k, v in sorted(spreads.items(), key=lambda kv: -kv[1]) if v > WIDE_SPREAD_PCT]
        row["spread_note"] = f"wide spread (>{WIDE_SPREAD_PCT:.0f} %): " + ", ".join(wide) if wide else ""
    row["error"] = ""
    row["pids"] = [r["pid"] for r in runs]
    row["runs"] = runs
    return row


def run_bench(
    models: list[str],
    device: str = "cpu",
    batch_sizes: list[int] = (1, 16),
    threads: int | None = None,
    photos: str | os.PathLike | None = None,
    amp: str | None = None,
    channels_last: bool = False,
    quick: bool = False,
    repeats: int = 2,
    timeout: float | None = 1800,
    progress=None,
    runtimes: list[str] | tuple[str, ...] = ("auto",),
    calibration: str | os.PathLike | None = None,
) -> tuple[dict, list[dict]]:
    """Measure each model on each of `runtimes` (a `NAME@RUNTIME` model on that one only) `repeats`
    times, each time in a fresh process. Returns (environment, rows), a row per (model, runtime):
    its "runtime" is the one measured (what auto resolved to), or the one asked for when it failed.

    `amp`: None, "bf16" or "fp16" (autocast in the torch runtime); `channels_last`: the torch
    runtime's memory format (with either, auto means torch). `calibration`: photos for int8.
    `progress(text)` is called with one line per (model, runtime) when it is done.
    """
    sizes = time_boxes(quick)
    config = {
        "device": device, "batch_sizes": list(batch_sizes), "threads": threads, "amp": amp,
        "channels_last": channels_last, "quick": quick,
        "photos": pick_photos(photos, max(sizes["decode"], sizes["e2e"])),
        "calibration": str(calibration) if calibration else None,
    }
    rows, environment = [], None
    todo = pairs(models, runtimes)
    for i, (model, runtime) in enumerate(todo, 1):
        started = time.perf_counter()
        runs = []
        for _ in range(repeats):
            runs.append(run_worker({**config, "model": model, "runtime": runtime}, timeout))
            if runs[-1].get("error"):
                break  # an unknown model or a broken file does not get better the second time
        row = combine(model, runs)
        row["runtime"] = row.get("runtime") or runtime
        environment = environment or next((r["environment"] for r in runs if r.get("environment")), None)
        rows.append(row)
        if progress:
            progress(f"[{i}/{len(todo)}] {summary(row)} ({time.perf_counter() - started:.0f} s)")
    return environment or fallback_environment(device, threads, amp, channels_last), rows


def fallback_environment(device, threads, amp, channels_last) -> dict:
    """When no worker got far enough to describe itself; torch is not imported for it."""
    return describe_environment(
        device, threads or "torch default", AMP_DTYPES.get(amp, "float32"),
        "channels_last" if channels_last else "contiguous",
    )
