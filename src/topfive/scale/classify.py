"""`topfive classify --engine ray`: the local path's CSV (topfive.output), written as shards and merged
into OUT/predictions.csv and OUT/predictions.parquet (the same rows, typed)."""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from topfive.output import PREDICTION_COLUMNS, render_predictions
from topfive.scale.jobs import complete, resolved, run_job
from topfive.scale.ray_engine import Engine, Job, JobFailed, import_ray, session
from topfive.scale.shards import merge_csv, merge_parquet
from topfive.scale.sources import classify_inputs

SCHEMA = dict(zip(PREDICTION_COLUMNS, ["str", "str", "int", "int", "str", "str", "float", "str"]))


@dataclass
class ClassifyRun:
    n_inputs: int
    models: int  # models that ran
    broken: list[str] = field(default_factory=list)  # models that could not be loaded or run
    failures: list[tuple[str, str]] = field(default_factory=list)  # (source, reason), as the local path reports them
    complete: bool = True  # False after a run stopped at engine.max_shards: nothing merged yet
    csv: Path | None = None
    parquet: Path | None = None


def render(results, inputs, runtime) -> str:
    return render_predictions(results, "csv")


def failures_in(path: Path) -> list[tuple[str, str]]:
    """(source, reason) of each failed row of the merged CSV: its error field is "<error>: <reason>"."""
    with open(path, newline="", encoding="utf-8") as f:
        return [(r["source"], r["error"].partition(": ")[2]) for r in csv.DictReader(f) if r["error"]]


def classify_on_ray(paths: list[str], models: list[str], out, engine: Engine, recursive: bool = False,
                    log: Callable[[str], None] | None = None, **job_options) -> ClassifyRun:
    """Classify `paths` (files, folders, globs, CSVs or manifests) with each of `models` on Ray;
    job_options are Job's fields (runtime, device, batch_size, top_k, decode, ...). ValueError when
    the paths hold no image. A rerun into the same `out` skips the shards already written."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    import_ray()  # EngineMissing before anything is listed or written
    inputs = classify_inputs(paths, recursive=recursive)
    if not inputs:
        raise ValueError("no image files found in " + ", ".join(map(str, paths)))
    out = Path(out)
    plans, broken = [], []
    with session(engine):
        for name in models:
            try:
                plans.append(run_job(Job(name, **job_options), resolved(name), inputs, out, engine, render, SCHEMA))
            except JobFailed as e:
                log(f"topfive: {name}: {e}")
                broken.append(name)
    run = ClassifyRun(len(inputs), len(plans), broken, complete=complete(plans))
    if not plans or not run.complete:
        return run
    run.csv, run.parquet = out / "predictions.csv", out / "predictions.parquet"
    merge_csv(plans, run.csv)
    merge_parquet(plans, run.parquet, SCHEMA)
    run.failures = failures_in(run.csv)
    return run
