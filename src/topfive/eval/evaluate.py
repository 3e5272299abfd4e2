"""Evaluate models on a labelled photo set and write the result files.

`evaluate(dataset, models, out)` runs `Classifier.iter_predict` for each model over the readable
photos, appends one row per (model, photo) to predictions.csv as soon as it is computed (a whole
line, flushed and fsynced), and then derives every other file from predictions.csv. A rerun with
the same `out` skips the (model, file) pairs already there, so a killed run resumes; a trailing
half-written line (a kill during a write) is dropped first. `out` remembers the set it belongs to
(`.dataset-fingerprint`): resuming into a folder made for another set is an error.

Result files in `out` (CSV with a header; percentages are 0..100; fractions are 0..1):

- predictions.csv: model,file,label,n_accepted,top5_indices,top5_names,top5_probs,hit1,hit5
  One row per (model, readable photo). `file` is the photo's name in the set (the manifest's or
  CSV's `file`, or `<label folder>/<name>`); `n_accepted` the size of its accepted class set;
  top5_indices and top5_probs space-separated (probabilities to 6 decimals), top5_names
  '|'-separated, all best first; hit1/hit5 are 0/1 (a top-k class is in the accepted set).
- summary.csv: model,top1,top1_err,top5,top5_err,param_count,img_size,crop_pct,interpolation,n,
  top1_low,top1_high,top5_low,top5_high,ece,severity_mean,weights
  One row per requested model, in the order given. top1/top5 and their errors in percent (timm's
  columns and meanings); param_count in millions; img_size, crop_pct, interpolation of the model's
  preprocessing; n = photos evaluated; *_low/*_high = 95 % Wilson interval in percent; ece = the
  expected calibration error of the top-1 probability as a fraction 0..1 (15 bins, calibration.csv);
  severity_mean = mean mistake severity of the wrong top-1 predictions (severity.csv); weights =
  "real", or "not available: <reason>" for a model that could not be loaded: its accuracy fields
  are empty (never figures from random weights).
- per_label.csv: model,label,n,top1,top5 (percent).
- mcnemar.csv: model_a,model_b,n,both_right,a_only,b_only,both_wrong,p_value
  Top-1, each unordered pair of evaluated models once (in the order given), on the photos both have;
  a_only = right for model_a only; p_value = McNemar's exact two-sided test (binomial, scipy).
- calibration.csv: model,bin,lower,upper,count,mean_confidence,accuracy
  15 equal-width bins of the top-1 probability (lower < p <= upper; bin 0 also takes 0); accuracy is
  the top-1 hit rate in the bin (fraction); mean_confidence and accuracy are empty for empty bins.
- severity.csv: model,distance,count
  For each wrong top-1: its severity, the height of the lowest common WordNet ancestor of the
  predicted class and the nearest accepted class (hypernym steps up from the accepted class, see
  wordnet.lca_height; lower is a better mistake); counts per value.
- failures.csv: file,error,reason
  Photos that could not be had or read (missing, checksum, download, decode errors), each once;
  they are excluded from every n.
- evaluate.json: {"dataset": {"path", "n_images" (photos listed in the set, readable or not),
  "n_failed" (rows of failures.csv), "labels": {label: photos listed}, "label_sets": {label:
  [accepted indices]}, "sources": {key: {...}}, "licences": {licence: photos}}, "models": [{"name",
  "status": "evaluated" | "unavailable", "reason"}], "created": ISO 8601 UTC time}
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from topfive.eval import metrics
from topfive.eval.datasets import Dataset, Item
from topfive.eval.summaries import ModelStatus, summaries, write_tables
from topfive.files import atomic_write

PREDICTION_COLUMNS = ["model", "file", "label", "n_accepted", "top5_indices", "top5_names", "top5_probs", "hit1", "hit5"]
FINGERPRINT_FILE = ".dataset-fingerprint"


class ResumeError(RuntimeError):
    """`out` holds results that cannot be continued (another set, another file format)."""


def _csv_line(values: list) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(values)
    return buf.getvalue()


def read_predictions(path: Path) -> list[dict]:
    """Rows of predictions.csv; a trailing partial line (a killed write) is cut off the file first."""
    if not path.is_file():
        return []
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
            f.flush()
            os.fsync(f.fileno())
        data = data[:cut]
    if not data:
        return []
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""))
        header = next(reader, None)
        if header != PREDICTION_COLUMNS:
            raise ResumeError(f"{path}: not a topfive predictions file (header {header}); use another --out")
        rows = []
        for values in reader:
            problem = _damage(values)
            if problem:
                raise ResumeError(f"{path}, line {reader.line_num}: a damaged row ({problem}): {values!r}; "
                                  "remove it or use another --out")
            rows.append(dict(zip(PREDICTION_COLUMNS, values)))
    except (UnicodeDecodeError, csv.Error) as e:
        raise ResumeError(f"{path}: not a readable predictions file ({e}); use another --out") from None
    return rows


def _damage(values: list[str]) -> str:
    """What makes a complete row unusable ('' if nothing): every later table parses these fields,
    so a bad one is caught here, before any model runs, not in the summaries after them."""
    if len(values) != len(PREDICTION_COLUMNS):
        return f"{len(values)} fields, not {len(PREDICTION_COLUMNS)}"
    row = dict(zip(PREDICTION_COLUMNS, values))
    if not row["model"] or not row["file"]:
        return "no model or file"
    if row["hit1"] not in ("0", "1") or row["hit5"] not in ("0", "1"):
        return "hit1 and hit5 must be 0 or 1"
    try:
        indices = [int(i) for i in row["top5_indices"].split()]
        probs = [float(p) for p in row["top5_probs"].split()]
        int(row["n_accepted"])
    except ValueError as e:
        return f"not a number: {e}"
    if not indices or len(indices) != len(probs) or not all(0 <= i < 1000 for i in indices):
        return "top5_indices must be indices 0..999, one per probability in top5_probs"
    if not all(0.0 <= p <= 1.0 for p in probs):  # also refuses nan
        return "top5_probs must be probabilities 0..1"
    return ""


class _PredictionWriter:
    """Appends whole rows to predictions.csv, each flushed and fsynced before the next."""

    def __init__(self, path: Path):
        new = not path.is_file() or path.stat().st_size == 0
        self.f = open(path, "a", newline="", encoding="utf-8")
        if new:
            self.write(PREDICTION_COLUMNS)

    def write(self, values: list) -> None:
        self.f.write(_csv_line(values))  # one write of one whole line
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        self.f.close()


def _row(model: str, item: Item, prediction) -> list:
    top = prediction.top[:5]
    indices = [c.index for c in top]
    return [
        model, item.file, item.label, len(item.accepted),
        " ".join(str(i) for i in indices),
        "|".join(c.name for c in top),
        " ".join(f"{c.probability:.6f}" for c in top),
        int(metrics.topk_hit(indices, item.accepted, 1)),
        int(metrics.topk_hit(indices, item.accepted, 5)),
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


def load_classifier(name: str, device: str, batch_size: int):
    """The one place evaluate builds a model's classifier."""
    from topfive.predict import Classifier

    return Classifier(name, device=device, batch_size=batch_size)


def _run_model(name, dataset, done, writer, failures, device, batch_size, progress, log) -> ModelStatus:
    from topfive.models import resolve
    from topfive.predict import Failure

    info = None
    try:
        info = resolve(name).info
        model = info.name
        todo = [i for i in dataset.readable if i.file not in done.get(model, set())]
        if not todo:  # every row is there from an earlier run: no need to load the weights again
            log(f"{model}: {len(dataset.readable)} photos from an earlier run, 0 now")
            return ModelStatus(model, "evaluated", "", info)
        clf = load_classifier(name, device, batch_size)
    except Exception as e:  # unknown model, weights unavailable, bad weights, missing runtime
        reason = str(e).strip() or type(e).__name__
        log(f"{name}: not evaluated: {reason}")
        return ModelStatus(info.name if info else name, "unavailable", reason, info)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(dataset.readable), initial=len(dataset.readable) - len(todo), desc=model, unit="img")
    for item, result in zip(todo, clf.iter_predict([i.path for i in todo], top_k=5)):
        if isinstance(result, Failure):
            failures.setdefault(item.file, (result.error, result.reason))
        else:
            writer.write(_row(model, item, result))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    log(f"{model}: {len(dataset.readable) - len(todo)} photos from an earlier run, {len(todo)} now")
    return ModelStatus(model, "evaluated", "", info)


def evaluate(
    dataset: Dataset,
    models: list[str],
    out: str | os.PathLike,
    device: str = "cpu",
    batch_size: int = 16,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Evaluate `models` on `dataset`, write the result files into `out`, return evaluate.json's data."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pred_path = out / "predictions.csv"
    rows = read_predictions(pred_path)
    _check_fingerprint(out, dataset, bool(rows))
    done: dict[str, set[str]] = {}
    for r in rows:
        done.setdefault(r["model"], set()).add(r["file"])

    failures = {i.file: i.problem for i in dataset.missing}
    statuses = []
    writer = _PredictionWriter(pred_path)
    try:
        for name in dict.fromkeys(models):
            statuses.append(_run_model(name, dataset, done, writer, failures, device, batch_size, progress, log))
    finally:
        writer.close()

    rows = read_predictions(pred_path)
    write_tables(out, summaries(dataset, statuses, rows, failures), failures)

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
        "models": [{"name": s.name, "status": s.status, "reason": s.reason} for s in statuses],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write(out / "evaluate.json", json.dumps(report, indent=2) + "\n", fsync=True)
    return report

