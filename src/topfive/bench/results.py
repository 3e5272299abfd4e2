"""The bench's result files and its terminal output: columns, bench.csv, bench.json, the table.

Result files (in --out DIR) -- the report reads exactly these names:

bench.csv, one row per (model, runtime), columns in this order:
  model             the name as asked for (--models), without a `@RUNTIME` pin
  weights           "real" | "architecture only" ("user code" for `python:module:function` models)
  params            parameter count (empty: unknown)
  gmacs             multiply-accumulates per image, 1e9 (empty: unknown)
  gmacs_counter     "torch.utils.flop_counter" (empty when gmacs is)
  weight_bytes      bytes of parameters + buffers as loaded
  device, dtype     "cpu" / "cuda[:N]"; "float32", "bfloat16 autocast", "float16 autocast", or the
                    runtime's input dtype
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
  spread_note       "" | "wide spread (>10 %): field 23 %, ..." ("" with one repeat)
  error             "" or why the model could not be measured (then the figures are empty)
  runtime           the runtime measured (a word of the README's vocabulary; for auto the one it
                    resolved to), or the one asked for when the model could not be measured
  latency_ms_ci_low, latency_ms_ci_high   95 % interval of the batch-1 median latency, ms
                    (distribution-free, from the timed runs; over repeats, the span of theirs)
The columns after "error" come last so that readers of older files keep working.
Every figure is the median over the repeats (two fresh processes by default), except
latency_ms_min / _max (min / max over all) and latency_runs (sum).

bench.json: {"environment": {"cpu", "threads", "device", "dtype", "memory_format", "torch",
  "torchvision", "python", "platform"}, "fingerprint": topfive.machine.fingerprint() of the machine
  that ran the bench, "results": [row, ...]}; each row has the bench.csv columns
  plus "throughput_img_s": {"<batch size>": images/s}, and these extras: "canonical" (the
  resolved name), "weights_note" (why architecture only), "precision" (the runtime's: "fp32",
  "int8", "as stored", ...),
  "memory_format", "rss_loaded_mib" (RSS growth once loaded, after the load peak),
  "rss_method", "spread" ({field: percent}), "throughput_ci" ({"<batch size>": [low, high]}
  images/s, 95 % interval of the median), "pids" (one per repeat) and "runs" (each repeat's raw
  worker output).
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from topfive.files import atomic_write
from topfive.machine import fingerprint as machine_fingerprint

BASE_COLUMNS = [
    "model", "weights", "params", "gmacs", "gmacs_counter", "weight_bytes", "device", "dtype", "threads",
    "latency_ms_median", "latency_ms_p90", "latency_ms_min", "latency_ms_max", "latency_runs",
]
TAIL_COLUMNS = [
    "decode_ms", "preprocess_ms", "end_to_end_img_s", "rss_baseline_mib", "rss_load_mib", "rss_run_mib",
    "cuda_peak_mib", "spread_pct", "spread_note", "error", "runtime", "latency_ms_ci_low", "latency_ms_ci_high",
]


def columns(batch_sizes: list[int]) -> list[str]:
    return BASE_COLUMNS + [f"throughput_bs{b}" for b in batch_sizes] + TAIL_COLUMNS


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
            value = f"{value:.6g}" if col == "gmacs" else f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
        out[col] = value
    return out


def write_results(out_dir: str | os.PathLike, environment: dict, rows: list[dict], batch_sizes: list[int],
                  fingerprint: dict | None = None):
    """bench.json and bench.csv in `out_dir`, each written whole or not at all. Returns their paths.

    fingerprint: the machine the rows were measured on; by default this one (the bench's workers are
    its children), so that `topfive report` can tell whether the figures still hold here."""
    if fingerprint is None:
        threads = environment.get("threads")
        fingerprint = machine_fingerprint(threads if isinstance(threads, int) else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_rows = []
    for row in rows:
        full = {col: row.get(col) for col in columns(batch_sizes) if not col.startswith("throughput_bs")}
        full.update({k: v for k, v in row.items() if k not in full})
        for bs in batch_sizes:
            full[f"throughput_bs{bs}"] = row.get("throughput_img_s", {}).get(str(bs))
        json_rows.append(full)
    json_path = atomic_write(out / "bench.json", json.dumps(
        {"environment": environment, "fingerprint": fingerprint, "results": json_rows}, indent=2) + "\n")
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=columns(batch_sizes))
    writer.writeheader()
    for row in rows:
        writer.writerow(csv_row(row, batch_sizes))
    csv_path = atomic_write(out / "bench.csv", text.getvalue())
    return json_path, csv_path


def summary(row: dict) -> str:
    """One line per model, for progress output."""
    if row.get("error"):
        return f"{row['model']}: FAILED on {row.get('runtime') or '?'}: {row['error']}"
    tput = ", ".join(f"bs{bs} {v:.1f} img/s" for bs, v in row["throughput_img_s"].items())
    text = (
        f"{row['model']} on {row.get('runtime') or '?'} ({row['weights']}): {row['latency_ms_median']:.1f} ms at "
        f"batch 1, {tput}, "
        f"RSS +{row['rss_load_mib']:.0f} MiB load / +{row['rss_run_mib']:.0f} MiB run"
    )
    if row.get("cuda_peak_mib") is not None:
        text += f", CUDA peak {row['cuda_peak_mib']:.0f} MiB"
    if row.get("spread_pct") is not None:
        text += f", spread {row['spread_pct']:.0f} %"
    if row.get("spread_note"):
        text += f" [{row['spread_note']}]"
    return text


def render_table(environment: dict, rows: list[dict], batch_sizes: list[int]) -> str:
    """A Markdown table of the main figures, with the environment and the methods underneath."""
    head = ["model", "runtime", "weights", "params (M)", "GMACs", "weights (MiB)", "lat. median ms", "p90", "min", "max"]
    head += [f"bs{b} img/s" for b in batch_sizes]
    head += ["decode ms", "prep ms", "e2e img/s", "RSS load MiB", "RSS run MiB", "CUDA MiB", "spread %"]

    def f(v, fmt):
        return "" if v is None else format(v, fmt)

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    notes = []
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['model']} | {r.get('runtime', '')} | {r.get('weights', '')} | "
                         + " | ".join(["—"] * (len(head) - 4)) + " | error |")
            notes.append(f"{r['model']} on {r.get('runtime', '')}: {r['error']}")
            continue
        cells = [
            r["model"], r.get("runtime", ""), r["weights"], f(r["params"] and r["params"] / 1e6, ".2f"),
            f(r["gmacs"], ".3f"),
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
            notes.append(f"{r['model']} on {r.get('runtime', '')}: {r['spread_note']}")
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
