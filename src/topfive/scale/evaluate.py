"""`topfive evaluate --engine ray`: predictions.csv's rows computed on Ray, shard by shard, then the
local path's own summary code (topfive.eval.summaries) on them, so every result file reads as the
local path's: predictions.csv, summary.csv, per_label.csv, mcnemar.csv, calibration.csv,
severity.csv, failures.csv and evaluate.json (with "engine": "ray"), plus predictions.parquet.

A shard holds predictions.csv's columns and then failures.csv's error and reason, empty on a
predicted row; the rows of a photo that could not be decoded have only file, label and those two.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Callable

from topfive.eval.datasets import Dataset
from topfive.eval.evaluate import FINGERPRINT_FILE, prediction_row, write_evaluate_json
from topfive.eval.predictions import PREDICTION_COLUMNS, ResumeError, csv_line, read_predictions
from topfive.eval.summaries import ModelStatus, summaries, write_tables
from topfive.files import atomic_write
from topfive.models import resolve
from topfive.predict import Failure
from topfive.runtime.axis import pairs
from topfive.scale.jobs import complete, run_job
from topfive.scale.ray_engine import Engine, Job, JobFailed, session
from topfive.scale.shards import merged_csv, shard_runtime, write_results
from topfive.scale.sources import dataset_inputs

SHARD_COLUMNS = [*PREDICTION_COLUMNS, "error", "reason"]
NUMBERS = {"n_accepted", "hit1", "hit5"}
SCHEMA = {c: "int" if c in NUMBERS else "str" for c in SHARD_COLUMNS}
PREDICTIONS_SCHEMA = {c: SCHEMA[c] for c in PREDICTION_COLUMNS}


def render(results, inputs, runtime) -> str:
    lines = [csv_line(SHARD_COLUMNS)]
    for r, i in zip(results, inputs):
        if isinstance(r, Failure):
            lines.append(csv_line([r.model, i.item.file, i.item.label, len(i.item.accepted), "", "", "", "", "",
                                   runtime, r.error, r.reason]))
        else:
            lines.append(csv_line(prediction_row(r.model, runtime, i.item, r) + ["", ""]))
    return "".join(lines)


def check_out(out: Path, dataset: Dataset) -> None:
    """`out` is new, or a Ray run's on the same set: the shards of another set would only be redone,
    but a local run's predictions.csv would be replaced, so that is refused."""
    marker = out / FINGERPRINT_FILE
    if (out / "predictions.csv").is_file() and not (out / "shards").is_dir():
        raise ResumeError(f"{out} holds a run of the local engine; resume it without --engine ray, or use a new --out")
    if marker.is_file() and marker.read_text(errors="replace").strip() != dataset.fingerprint():
        raise ResumeError(f"{out} holds results for another photo set (or other labels); use a new --out")
    atomic_write(marker, dataset.fingerprint() + "\n")


def gather(text: str, failures: dict) -> str:
    """predictions.csv's text from the shards' rows: the predicted rows, each (model, runtime, file)
    once (auto may have resolved to a runtime also asked for), and the failures into `failures`."""
    lines, seen = [csv_line(PREDICTION_COLUMNS)], set()
    for r in csv.DictReader(io.StringIO(text, newline="")):
        if r["error"]:
            failures.setdefault(r["file"], (r["error"], r["reason"]))
        elif (key := (r["model"], r["runtime"], r["file"])) not in seen:
            seen.add(key)
            lines.append(csv_line([r[c] for c in PREDICTION_COLUMNS]))
    return "".join(lines)


def evaluate_on_ray(dataset: Dataset, models: list[str], out, engine: Engine, runtimes=("auto",), device: str = "cpu",
                    batch_size: int = 16, calibration=None, log: Callable[[str], None] | None = None) -> dict | None:
    """evaluate() on Ray: the same files in `out`, and evaluate.json's data returned; None when the
    run stopped at engine.max_shards (nothing derived yet). A rerun skips the shards already written."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_out(out, dataset)
    inputs = dataset_inputs(dataset)
    failures = {i.file: i.problem for i in dataset.missing}
    statuses, plans = [], []
    with session(engine):
        for name, runtime in pairs(models, runtimes):
            job = Job(name, runtime, device=device, batch_size=batch_size, top_k=5, calibration=calibration)
            try:
                info = resolve(name).info
            except Exception as e:  # unknown model, a bad card
                statuses.append(ModelStatus(name, "unavailable", str(e).strip() or type(e).__name__, None, runtime))
                continue
            try:
                plan = run_job(job, inputs, out, engine, render, SCHEMA)
            except JobFailed as e:
                log(f"{info.name} ({runtime}): not evaluated: {e}")
                statuses.append(ModelStatus(info.name, "unavailable", str(e), info, runtime))
                continue
            label = (shard_runtime(plan, plan.shards[0]) if plan.shards else "") or runtime
            if (info.name, label) not in {(s.name, s.runtime) for s in statuses}:  # auto = one asked for
                statuses.append(ModelStatus(info.name, "evaluated", "", info, label))
            plans.append(plan)
    if not complete(plans):
        return None
    pred_path = out / "predictions.csv"
    write_results(gather(merged_csv(plans), failures) if plans else csv_line(PREDICTION_COLUMNS), PREDICTIONS_SCHEMA,
                  pred_path, out / "predictions.parquet")
    write_tables(out, summaries(dataset, statuses, read_predictions(pred_path), failures), failures)
    # the driver's fingerprint: on a cluster the actors' machines may differ
    return write_evaluate_json(out, dataset, statuses, failures, engine="ray")
