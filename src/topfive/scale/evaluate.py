"""`topfive evaluate --engine ray`: predictions.csv's rows computed on Ray, shard by shard, then the
local path's own summary code (topfive.eval.summaries) on them, so every result file reads as the
local path's: predictions.csv, summary.csv, per_label.csv, mcnemar.csv, calibration.csv,
severity.csv, failures.csv and evaluate.json (with "engine": "ray"), plus predictions.parquet.

A shard holds predictions.csv's columns and then failures.csv's error and reason, empty on a
predicted row; the rows of a photo that could not be decoded have only file, label and those two.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import IO, Callable, Iterator

from topfive.eval.datasets import Dataset
from topfive.eval.evaluate import FINGERPRINT_FILE, prediction_row, write_evaluate_json
from topfive.eval.predictions import PREDICTION_COLUMNS, ResumeError, csv_line, read_predictions
from topfive.eval.summaries import ModelStatus, summaries, write_tables
from topfive.files import atomic_write
from topfive.predict import Failure
from topfive.runtime.axis import pairs
from topfive.scale.jobs import complete, resolved, run_job
from topfive.scale.ray_engine import Engine, Job, JobFailed, import_ray, session
from topfive.scale.shards import merge_csv, merge_parquet
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


def predicted(failures: dict) -> Callable[[IO[str]], Iterator[str]]:
    """A shard file -> predictions.csv's lines of its predicted rows; its failures go into `failures`."""
    def rows(f: IO[str]) -> Iterator[str]:
        for r in csv.DictReader(f):
            if r["error"]:
                failures.setdefault(r["file"], (r["error"], r["reason"]))
            else:
                yield csv_line([r[c] for c in PREDICTION_COLUMNS])
    return rows


def evaluate_on_ray(dataset: Dataset, models: list[str], out, engine: Engine, runtimes=("auto",), device: str = "cpu",
                    batch_size: int = 16, calibration=None, log: Callable[[str], None] | None = None) -> dict | None:
    """evaluate() on Ray: the same files in `out`, and evaluate.json's data returned; None when the
    run stopped at engine.max_shards (nothing derived yet). A rerun skips the shards already written.
    EngineMissing (before `out` is touched) or EngineUnavailable when Ray cannot be had."""
    import pyarrow.compute as pc

    log = log or (lambda msg: print(msg, file=sys.stderr))
    import_ray()  # EngineMissing before --out is made or marked
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    check_out(out, dataset)
    inputs = dataset_inputs(dataset)
    failures = {i.file: i.problem for i in dataset.missing}
    statuses, plans = [], []
    with session(engine):
        for name, runtime in pairs(models, runtimes):
            try:
                entry = resolved(name)
            except JobFailed as e:  # unknown model, a bad card
                statuses.append(ModelStatus(name, "unavailable", str(e), None, runtime))
                continue
            info = entry.info
            job = Job(name, runtime, device=device, batch_size=batch_size, top_k=5, calibration=calibration)
            try:
                plan = run_job(job, entry, inputs, out, engine, render, SCHEMA)
            except JobFailed as e:
                log(f"{info.name} ({runtime}): not evaluated: {e}")
                statuses.append(ModelStatus(info.name, "unavailable", str(e), info, runtime))
                continue
            label = plan.runtime or runtime
            if (info.name, label) in {(s.name, s.runtime) for s in statuses}:
                continue  # auto ran a runtime also asked for: the same rows again
            statuses.append(ModelStatus(info.name, "evaluated", "", info, label))
            plans.append(plan)
    if not complete(plans):
        return None
    pred_path = out / "predictions.csv"
    merge_csv(plans, pred_path, predicted(failures), header=csv_line(PREDICTION_COLUMNS))
    merge_parquet(plans, out / "predictions.parquet", PREDICTIONS_SCHEMA, where=lambda t: pc.equal(t["error"], ""))
    write_tables(out, summaries(dataset, statuses, read_predictions(pred_path), failures), failures)
    # the driver's fingerprint: on a cluster the actors' machines may differ
    return write_evaluate_json(out, dataset, statuses, failures, engine="ray")
