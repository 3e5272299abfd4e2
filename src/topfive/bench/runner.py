"""Speed and memory of models, each measured in its own fresh process.

`run_bench(["alexnet", "efficientnet_lite0"], ...)` starts `python -m topfive.bench.worker` once per
model and repeat (PYTHONPATH derived from this package's location), reads back the one JSON line
the worker prints, combines the repeats and reports their spread. A model that fails gets a row
with its error and empty figures; the others go on. `write_results` writes the two files below.

How each figure is measured (the worker, in order):
- baseline: RSS after importing torch/torchvision/topfive and warming the runtime (thread pool,
  CUDA context), before the model exists;
- load: build the model (and read its weights) -> `rss_load_mib` = peak RSS growth over the
  baseline while loading (includes the state dict's transient copy when real weights are read);
- run: batch-1 latency after warm-up (time-boxed: at least 20 reps and 3 s), then throughput at
  each batch size (batch size / median batch time) -> `rss_run_mib` = peak RSS growth over the
  baseline while running (weights + activations + inputs); on CUDA `cuda_peak_mib` =
  `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats` over the same passes;
  CUDA timings are bracketed by `torch.cuda.synchronize`;
- peak RSS is the kernel's own high-water mark (VmHWM, reset through /proc/self/clear_refs), or a
  1 ms psutil sampler where that is not available (the JSON's `rss_method` says which);
- GMACs: `torch.utils.flop_counter.FlopCounterMode` on one image, FLOPs / 2 (it counts 2 per
  multiply-accumulate of conv/matmul; elementwise ops are not counted);
- decode / preprocess: median ms per image over real photos with the core's `load_image` and
  `preprocess`, apart from the model; end to end: images/s from files through
  `Classifier.iter_predict` (decoding in worker threads, batch = the largest batch size).
Speed and memory do not depend on weight values: a model whose weights cannot be had here is
built from its architecture and marked `weights = "architecture only"` in every output. The
worker never downloads weights. Models that are not torch modules (model cards: ONNX, TFLite,
OpenVINO; their build raises NotImplementedError, AttributeError or TypeError) are timed through
their Backend's `probabilities` (given --threads where it takes `threads`); their params, GMACs and
weight bytes are left empty (unknown), never guessed.

Result files (in --out DIR) -- the report reads exactly these names:

bench.csv, one row per model, columns in this order:
  model             the name as asked for (--models)
  weights           "real" | "architecture only" ("user code" for `python:module:function` models)
  params            parameter count (empty: unknown)
  gmacs             multiply-accumulates per image, 1e9 (empty: unknown)
  gmacs_counter     "torch.utils.flop_counter" (empty when gmacs is)
  weight_bytes      bytes of parameters + buffers as loaded
  device, dtype     "cpu" / "cuda[:N]"; "float32", "bfloat16 autocast", "float16 autocast", or the
                    backend's input dtype
  threads           torch intra-op threads
  latency_ms_median, latency_ms_p90, latency_ms_min, latency_ms_max   batch 1, ms
  latency_runs      timed repetitions behind those (all repeats together)
  throughput_bs<B>  images/s at batch size B, one column per --batch-sizes value
  decode_ms, preprocess_ms   median ms per image on real photos (empty without photos)
  end_to_end_img_s  images/s from files through Classifier.iter_predict (empty without photos)
  rss_baseline_mib  RSS after imports, MiB
  rss_load_mib      peak RSS growth over the baseline while loading, MiB
  rss_run_mib       peak RSS growth over the baseline while running, MiB
  cuda_peak_mib     torch.cuda.max_memory_allocated while running, MiB (empty on CPU)
  spread_pct        largest (max - min) / median over the repeats, percent, of the speed and
                    memory figures (empty with one repeat)
  spread_note       "" | "wide spread (>10 %): field 23 %, ..." | "single run, no spread"
  error             "" or why the model could not be measured (then the figures are empty)
Every figure is the median over the repeats (two fresh processes by default), except
latency_ms_min / _max (min / max over all) and latency_runs (sum).

bench.json: {"environment": {"cpu", "threads", "device", "dtype", "memory_format", "torch",
  "torchvision", "python", "platform"}, "results": [row, ...]}; each row has the bench.csv columns
  plus "throughput_img_s": {"<batch size>": images/s}, and these extras: "canonical" (the
  resolved name), "weights_note" (why architecture only), "rss_loaded_mib" (RSS growth once
  loaded, after the load peak), "rss_method", "spread" ({field: percent}), "pids" (one per
  repeat) and "runs" (each repeat's raw worker output).
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import topfive

WIDE_SPREAD_PCT = 10.0

BASE_COLUMNS = [
    "model", "weights", "params", "gmacs", "gmacs_counter", "weight_bytes", "device", "dtype", "threads",
    "latency_ms_median", "latency_ms_p90", "latency_ms_min", "latency_ms_max", "latency_runs",
]
TAIL_COLUMNS = [
    "decode_ms", "preprocess_ms", "end_to_end_img_s", "rss_baseline_mib", "rss_load_mib", "rss_run_mib",
    "cuda_peak_mib", "spread_pct", "spread_note", "error",
]
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


def columns(batch_sizes: list[int]) -> list[str]:
    return BASE_COLUMNS + [f"throughput_bs{b}" for b in batch_sizes] + TAIL_COLUMNS


def worker_env(threads: int | None = None) -> dict:
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
    step = max(1, len(found) // n)
    return found[::step][:n]


def _spread(values: list[float]) -> float | None:
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
            for key in ("weights", "device", "dtype", "threads", "canonical", "weights_note"):
                if r.get(key) is not None:
                    row.setdefault(key, r[key])
        row["throughput_img_s"] = {}
        return row
    first = runs[0]
    row = {k: first[k] for k in ("model", "canonical", "weights", "weights_note", "gmacs_counter", "device", "dtype",
                                 "threads", "rss_method")}
    for key in FIGURES:
        values = [r.get(key) for r in runs if r.get(key) is not None]
        if not values:
            row[key] = None
        elif key in ("params", "gmacs", "weight_bytes"):
            row[key] = values[0]  # a property of the model, the same in every repeat
        elif key == "latency_ms_min":
            row[key] = min(values)
        elif key == "latency_ms_max":
            row[key] = max(values)
        elif key == "latency_runs":
            row[key] = sum(values)
        else:
            row[key] = statistics.median(values)
    row["rss_loaded_mib"] = statistics.median(r["rss_loaded_mib"] for r in runs)
    row["throughput_img_s"] = {
        bs: statistics.median(r["throughput_img_s"][bs] for r in runs) for bs in first["throughput_img_s"]
    }
    spread = {key: _spread([r.get(key) for r in runs]) for key in SPREAD_FIELDS}
    spread.update({f"throughput_bs{bs}": _spread([r["throughput_img_s"][bs] for r in runs])
                   for bs in first["throughput_img_s"]})
    spread = {k: v for k, v in spread.items() if v is not None}
    row["spread"] = spread
    if len(runs) < 2:
        row["spread_pct"], row["spread_note"] = None, "single run, no spread"
    else:
        row["spread_pct"] = max(spread.values()) if spread else 0.0
        wide = [f"{k} {v:.0f} %" for k, v in sorted(spread.items(), key=lambda kv: -kv[1]) if v > WIDE_SPREAD_PCT]
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
) -> tuple[dict, list[dict]]:
    """Measure each model `repeats` times, each time in a fresh process. Returns (environment, rows).

    `progress(text)` is called with one line per model when it is done.
    """
    from topfive.bench.worker import QUICK, FULL

    sizes = FULL if not quick else QUICK
    config = {
        "device": device, "batch_sizes": list(batch_sizes), "threads": threads, "amp": amp,
        "channels_last": channels_last, "quick": quick,
        "photos": pick_photos(photos, max(sizes["decode"], sizes["e2e"])),
    }
    rows, environment = [], None
    for i, model in enumerate(models, 1):
        started = time.perf_counter()
        runs = []
        for _ in range(repeats):
            runs.append(run_worker({**config, "model": model}, timeout))
            if runs[-1].get("error"):
                break  # an unknown model or a broken file does not get better the second time
        row = combine(model, runs)
        environment = environment or next((r["environment"] for r in runs if r.get("environment")), None)
        rows.append(row)
        if progress:
            progress(f"[{i}/{len(models)}] {summary(row)} ({time.perf_counter() - started:.0f} s)")
    return environment or fallback_environment(device, threads, amp, channels_last), rows


def fallback_environment(device, threads, amp, channels_last) -> dict:
    """When no worker got far enough to describe itself; nothing is imported for it."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from topfive.bench.worker import cpu_name

    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return ""

    return {
        "cpu": f"{cpu_name()} ({os.cpu_count()} logical CPUs)", "threads": threads or "torch default", "device": device,
        "dtype": {"bf16": "bfloat16 autocast", "fp16": "float16 autocast"}.get(amp, "float32"),
        "memory_format": "channels_last" if channels_last else "contiguous",
        "torch": ver("torch"), "torchvision": ver("torchvision"), "python": platform.python_version(),
        "platform": platform.platform(),
    }


def summary(row: dict) -> str:
    if row.get("error"):
        return f"{row['model']}: FAILED: {row['error']}"
    tput = ", ".join(f"bs{bs} {v:.1f} img/s" for bs, v in row["throughput_img_s"].items())
    text = (
        f"{row['model']} ({row['weights']}): {row['latency_ms_median']:.1f} ms at batch 1, {tput}, "
        f"RSS +{row['rss_load_mib']:.0f} MiB load / +{row['rss_run_mib']:.0f} MiB run"
    )
    if row.get("cuda_peak_mib") is not None:
        text += f", CUDA peak {row['cuda_peak_mib']:.0f} MiB"
    if row.get("spread_pct") is not None:
        text += f", spread {row['spread_pct']:.0f} %"
    if row.get("spread_note"):
        text += f" [{row['spread_note']}]"
    return text


def csv_row(row: dict, batch_sizes: list[int]) -> dict:
    flat = dict(row)
    for bs in batch_sizes:
        flat[f"throughput_bs{bs}"] = row.get("throughput_img_s", {}).get(str(bs))
    out = {}
    for col in columns(batch_sizes):
        value = flat.get(col)
        if value is None:
            value = ""
        elif isinstance(value, float):
            value = f"{value:.6g}" if col in ("gmacs",) else f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
        out[col] = value
    return out


def write_results(out_dir: str | os.PathLike, environment: dict, rows: list[dict], batch_sizes: list[int]):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_rows = []
    for row in rows:
        full = {col: row.get(col) for col in columns(batch_sizes) if not col.startswith("throughput_bs")}
        full.update({k: v for k, v in row.items() if k not in full})
        for bs in batch_sizes:
            full[f"throughput_bs{bs}"] = row.get("throughput_img_s", {}).get(str(bs))
        json_rows.append(full)
    (out / "bench.json").write_text(json.dumps({"environment": environment, "results": json_rows}, indent=2) + "\n")
    with open(out / "bench.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns(batch_sizes))
        writer.writeheader()
        for row in rows:
            writer.writerow(csv_row(row, batch_sizes))
    return out / "bench.json", out / "bench.csv"


def render_table(environment: dict, rows: list[dict], batch_sizes: list[int]) -> str:
    """A Markdown table of the main figures, with the environment and the methods underneath."""
    head = ["model", "weights", "params (M)", "GMACs", "weights (MiB)", "lat. median ms", "p90", "min", "max"]
    head += [f"bs{b} img/s" for b in batch_sizes]
    head += ["decode ms", "prep ms", "e2e img/s", "RSS load MiB", "RSS run MiB", "CUDA MiB", "spread %"]

    def f(v, fmt):
        return "" if v is None else format(v, fmt)

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['model']} | {r.get('weights', '')} | " + " | ".join(["—"] * (len(head) - 3))
                         + " | error |")
            notes.append(f"{r['model']}: {r['error']}")
            continue
        cells = [
            r["model"], r["weights"], f(r["params"] and r["params"] / 1e6, ".2f"), f(r["gmacs"], ".3f"),
            f(r["weight_bytes"] and r["weight_bytes"] / 2**20, ".1f"), f(r["latency_ms_median"], ".1f"),
            f(r["latency_ms_p90"], ".1f"), f(r["latency_ms_min"], ".1f"), f(r["latency_ms_max"], ".1f"),
        ]
        cells += [f(r["throughput_img_s"].get(str(b)), ".1f") for b in batch_sizes]
        cells += [
            f(r["decode_ms"], ".1f"), f(r["preprocess_ms"], ".1f"), f(r["end_to_end_img_s"], ".1f"),
            f(r["rss_load_mib"], "+.0f"), f(r["rss_run_mib"], "+.0f"), f(r["cuda_peak_mib"], ".0f"),
            f(r["spread_pct"], ".0f"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
        if r.get("spread_note"):
            notes.append(f"{r['model']}: {r['spread_note']}")
    env = environment
    lines += [
        "",
        f"Environment: {env['cpu']}; threads {env['threads']}; device {env['device']}; {env['dtype']}; "
        f"{env['memory_format']}; torch {env['torch']}, torchvision {env['torchvision']}, Python {env['python']}.",
        "Latency: batch 1 after warm-up. Throughput: batch size / median batch time. RSS: peak growth over "
        "the post-import baseline while loading / while running. GMACs: torch.utils.flop_counter FLOPs / 2. "
        "Each model in its own fresh process; figures are medians over the repeats; spread = (max - min) / median.",
    ]
    lines += notes
    return "\n".join(lines) + "\n"
