"""Evaluate models on a labelled photo set and write the result files.

`evaluate(dataset, models, out, runtimes=["auto"])` runs `Classifier.iter_predict` for each model on
each runtime over the readable photos, appends one row per (model, runtime, photo) to predictions.csv as soon as it is computed (a whole
line, flushed and fsynced), and then derives every other file from predictions.csv. A rerun with
the same `out` skips the (model, runtime, file) rows already there, so a killed run resumes; a
trailing half-written line (a kill during a write) is dropped first. `out` remembers the set it belongs to
(`.dataset-fingerprint`): resuming into a folder made for another set is an error.

Result files in `out` (CSV with a header; percentages are 0..100; fractions are 0..1):

Every model runs on each runtime asked for (`runtimes`, or its `NAME@RUNTIME` pin: topfive.runtime.axis),
and every table has a row per (model, runtime): `runtime` is the runtime that ran the rows, for "auto"
the one it resolved to (e.g. onnxruntime); for a model that could not be loaded, the one asked for.
It is the last column of each table, so that readers of the older files (without it) keep working.

- predictions.csv: model,file,label,n_accepted,top5_indices,top5_names,top5_probs,hit1,hit5,runtime
  One row per (model, runtime, readable photo). `file` is the photo's name in the set (the manifest's or
  CSV's `file`, or `<label folder>/<name>`); `n_accepted` the size of its accepted class set;
  top5_indices and top5_probs space-separated (probabilities to 6 decimals), top5_names
  '|'-separated, all best first; hit1/hit5 are 0/1 (a top-k class is in the accepted set).
  A file written before the runtime column (LEGACY_COLUMNS) is still read and resumed: it is rewritten
  once with the column, its rows marked "auto" (what an older topfive ran, without recording what auto
  resolved to), and a model that has such rows goes on under "auto" when auto is asked for.
- summary.csv: model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation,n,
  top1_low,top1_high,top5_low,top5_high,ece,severity_mean,weights,runtime
  One row per requested (model, runtime), in the order given (one that auto resolved to a runtime
  also asked for by name is listed once). top1/top5 and their errors in percent (timm's
  columns and meanings); param_count in millions; img_size, crop_pct, interpolation of the model's
  preprocessing; n = photos evaluated; *_low/*_high = 95 % Wilson interval in percent; ece = the
  expected calibration error of the top-1 probability as a fraction 0..1 (15 bins, calibration.csv);
  severity_mean = mean mistake severity of the wrong top-1 predictions (severity.csv); weights =
  "real", or "not available: <reason>" for a model that could not be loaded: its accuracy fields
  are empty (never figures from random weights).
- per_label.csv: model,label,n,top1,top5,runtime (percent).
- mcnemar.csv: model_a,model_b,n,both_right,a_only,b_only,both_wrong,p_value,runtime_a,runtime_b
  Top-1, each unordered pair of evaluated (model, runtime) rows once (in the order given), on the
  photos both have;
  a_only = right for model_a only; p_value = McNemar's exact two-sided test (binomial, scipy).
- calibration.csv: model,bin,lower,upper,count,mean_confidence,accuracy,runtime
  15 equal-width bins of the top-1 probability (lower < p <= upper; bin 0 also takes 0); accuracy is
  the top-1 hit rate in the bin (fraction); mean_confidence and accuracy are empty for empty bins.
- severity.csv: model,distance,count,runtime
  For each wrong top-1: its severity, the height of the lowest common WordNet ancestor of the
  predicted class and the nearest accepted class (hypernym steps up from the accepted class, see
  wordnet.lca_height; lower is a better mistake); counts per value.
- failures.csv: file,error,reason
  Photos that could not be had or read (missing, checksum, download, decode errors), each once;
  they are excluded from every n.
- evaluate.json: {"dataset": {"path", "n_images" (photos listed in the set, readable or not),
  "n_failed" (rows of failures.csv), "labels": {label: photos listed}, "label_sets": {label:
  [accepted indices]}, "sources": {key: {...}}, "licences": {licence: photos}}, "models": [{"name",
  "runtime", "status": "evaluated" | "unavailable", "reason"}], "created": ISO 8601 UTC time, "fingerprint":
  topfive.machine.fingerprint() of the machine that wrote it (threads: null, each runtime's default)}
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from topfive.eval import metrics
from topfive.eval.datasets import Dataset, Item
from topfive.eval.predictions import (  # noqa: F401  (PREDICTION_COLUMNS, ResumeError: public here too)
    LEGACY_RUNTIME,
    PREDICTION_COLUMNS,
    PredictionWriter,
    ResumeError,
    migrate,
    read_predictions,
)
from topfive.eval.summaries import ModelStatus, summaries, write_tables
from topfive.files import atomic_write
from topfive.machine import fingerprint as machine_fingerprint
from topfive.runtime.axis import pairs

FINGERPRINT_FILE = ".dataset-fingerprint"


def prediction_row(model: str, runtime: str, item: Item, prediction) -> list:
    """A row of predictions.csv (PREDICTION_COLUMNS) for one photo's Prediction."""
    top = prediction.top[:5]
    indices = [c.index for c in top]
    return [
        model, item.file, item.label, len(item.accepted),
        " ".join(str(i) for i in indices),
        "|".join(c.name for c in top),
        " ".join(f"{c.probability:.6f}" for c in top),
        int(metrics.topk_hit(indices, item.accepted, 1)),
        int(metrics.topk_hit(indices, item.accepted, 5)),
        runtime,
    ]


def _check_fingerprint(out: Path, dataset: Dataset, has_rows: bool) -> None:
    marker = out / FINGERPRINT_FILE
    fingerprint = dataset.fingerprint()
    if marker.is_file():
        if marker.read_text(errors="replace").strip() != fingerprint and has_rows:  # garbage is another set
            raise ResumeError(
                f"{out} holds results for another photo set (or other labels); use a new --out, "
                "or remove predictions.csv to start over"
            )
    elif has_rows:
        raise ResumeError(f"{out}/predictions.csv exists but {FINGERPRINT_FILE} does not; use a new --out")
    atomic_write(marker, fingerprint + "\n")


def load_classifier(name: str, device: str, batch_size: int, runtime: str = "auto", calibration=None):
    """The one place evaluate builds a model's classifier."""
    from topfive.predict import Classifier

    return Classifier(name, runtime=runtime, device=device, batch_size=batch_size, calibration=calibration)


def _run_model(name, runtime, dataset, done, writer, failures, options, progress, log) -> ModelStatus:
    from topfive.models import resolve
    from topfive.predict import Failure

    info, label = None, runtime
    try:
        info = resolve(name).info
        model = info.name
        if runtime == "auto" and (model, LEGACY_RUNTIME) not in done:
            label = None  # the rows are those of the runtime auto resolves to: known once it is loaded
        todo = [i for i in dataset.readable if i.file not in done.get((model, label), set())]
        if label and not todo:  # every row is there from an earlier run: no need to load the weights again
            log(f"{model} ({label}): {len(dataset.readable)} photos from an earlier run, 0 now")
            return ModelStatus(model, "evaluated", "", info, label)
        clf = load_classifier(name, options["device"], options["batch_size"], runtime, options["calibration"])
        if label is None:
            label = getattr(clf.runtime, "name", runtime)
            todo = [i for i in dataset.readable if i.file not in done.get((model, label), set())]
    except Exception as e:  # unknown model, weights unavailable, bad weights, missing runtime
        reason = str(e).strip() or type(e).__name__
        log(f"{name} ({runtime}): not evaluated: {reason}")
        return ModelStatus(info.name if info else name, "unavailable", reason, info, runtime)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(dataset.readable), initial=len(dataset.readable) - len(todo), desc=f"{model} ({label})",
                   unit="img")
    for item, result in zip(todo, clf.iter_predict([i.path for i in todo], top_k=5)):
        if isinstance(result, Failure):
            failures.setdefault(item.file, (result.error, result.reason))
        else:
            writer.write(prediction_row(model, label, item, result))
            done.setdefault((model, label), set()).add(item.file)  # auto may resolve to a runtime asked for later
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    log(f"{model} ({label}): {len(dataset.readable) - len(todo)} photos from an earlier run, {len(todo)} now")
    return ModelStatus(model, "evaluated", "", info, label)


def evaluate(
    dataset: Dataset,
    models: list[str],
    out: str | os.PathLike,
    device: str = "cpu",
    batch_size: int = 16,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
    runtimes: list[str] | tuple[str, ...] = ("auto",),
    calibration=None,
) -> dict:
    """Evaluate each of `models` on each of `runtimes` (a `NAME@RUNTIME` model on its own runtime
    only) on `dataset`, write the result files into `out`, return evaluate.json's data.
    `calibration`: the photos int8 is calibrated on (a folder or a list of files)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pred_path = out / "predictions.csv"
    rows = read_predictions(pred_path)
    _check_fingerprint(out, dataset, bool(rows))
    migrate(pred_path, rows)
    done: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        done.setdefault((r["model"], r["runtime"]), set()).add(r["file"])

    failures = {i.file: i.problem for i in dataset.missing}
    statuses = []
    writer = PredictionWriter(pred_path)
    try:
        options = {"device": device, "batch_size": batch_size, "calibration": calibration}
        for name, runtime in pairs(models, runtimes):
            status = _run_model(name, runtime, dataset, done, writer, failures, options, progress, log)
            if (status.name, status.runtime) not in {(s.name, s.runtime) for s in statuses}:  # auto = one asked for
                statuses.append(status)
    finally:
        writer.close()

    rows = read_predictions(pred_path)
    write_tables(out, summaries(dataset, statuses, rows, failures), failures)

    return write_evaluate_json(out, dataset, statuses, failures)


def write_evaluate_json(out: Path, dataset: Dataset, statuses: list, failures: dict, **extra) -> dict:
    """Writes OUT/evaluate.json (the set, each model's status, the machine) and returns its data;
    `extra` fields are added (e.g. the engine that computed the rows)."""
    report = {
        "dataset": {
            "path": dataset.path,
            "n_images": len(dataset.items),
            "n_failed": len(failures),
            "labels": dataset.labels,
            "label_sets": dataset.label_sets,
            "sources": dataset.sources,
            "licences": dataset.licences,
        },
        "models": [{"name": s.name, "runtime": s.runtime, "status": s.status, "reason": s.reason} for s in statuses],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        # int8 and bf16 results depend on the CPU's instructions: the report flags them by this, and
        # `topfive report` reuses these files only on a machine with the same fingerprint
        "fingerprint": machine_fingerprint(),
        **extra,
    }
    atomic_write(out / "evaluate.json", json.dumps(report, indent=2) + "\n", fsync=True)
    return report

