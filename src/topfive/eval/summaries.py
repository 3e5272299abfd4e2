"""The tables derived from predictions.csv: summary, per label, McNemar pairs, calibration bins,
mistake severity (their columns are described in evaluate.py), and writing them."""

from __future__ import annotations

import csv
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

from topfive.eval import metrics
from topfive.eval.datasets import Dataset
from topfive.eval.wordnet import distance_to_set
from topfive.files import atomic_write

SUMMARY_COLUMNS = [
    "model", "top1", "top1_err", "top5", "top5_err", "param_count", "img_size", "crop_pct", "interpolation",
    "n", "top1_low", "top1_high", "top5_low", "top5_high", "ece", "severity_mean", "weights", "runtime",
]
# runtime last in each table: a reader of the files from before it (by position) keeps working
PER_LABEL_COLUMNS = ["model", "label", "n", "top1", "top5", "runtime"]
MCNEMAR_COLUMNS = ["model_a", "model_b", "n", "both_right", "a_only", "b_only", "both_wrong", "p_value",
                   "runtime_a", "runtime_b"]
CALIBRATION_COLUMNS = ["model", "bin", "lower", "upper", "count", "mean_confidence", "accuracy", "runtime"]
SEVERITY_COLUMNS = ["model", "distance", "count", "runtime"]
FAILURE_COLUMNS = ["file", "error", "reason"]
TABLES = {  # file -> (columns, key in summaries())
    "summary.csv": (SUMMARY_COLUMNS, "summary"),
    "per_label.csv": (PER_LABEL_COLUMNS, "per_label"),
    "mcnemar.csv": (MCNEMAR_COLUMNS, "mcnemar"),
    "calibration.csv": (CALIBRATION_COLUMNS, "calibration"),
    "severity.csv": (SEVERITY_COLUMNS, "severity"),
}


@dataclass
class ModelStatus:
    name: str
    status: str  # "evaluated" or "unavailable"
    reason: str = ""
    info: object = None  # the model's ModelInfo when the name resolved
    runtime: str = ""  # what ran its rows (auto resolved), or the runtime asked for when it could not load


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """One CSV file with a header, replaced in one rename (a reader never sees half of it)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write(path, buf.getvalue(), fsync=True)


def _pct(x: float) -> str:
    return f"{100 * x:.3f}"


def summaries(dataset: Dataset, statuses: list[ModelStatus], rows: list[dict], failures: dict) -> dict[str, list[list]]:
    items = {i.file: i for i in dataset.items}
    evaluated = [(s.name, s.runtime) for s in statuses if s.status == "evaluated"]
    by_model: dict[tuple[str, str], dict[str, dict]] = {m: {} for m in evaluated}
    for r in rows:
        key = (r["model"], r["runtime"])
        if key in by_model and r["file"] in items and r["file"] not in failures:
            by_model[key].setdefault(r["file"], r)

    out = {k: [] for k in ("summary", "per_label", "mcnemar", "calibration", "severity")}
    for s in statuses:
        info = s.info
        meta = [
            f"{info.params / 1e6:.2f}" if info and info.params else "",
            info.preprocess.size if info else "",
            f"{info.preprocess.crop_pct:.3f}" if info else "",
            info.preprocess.interpolation if info else "",
        ]
        if s.status != "evaluated":
            out["summary"].append([s.name, "", "", "", ""] + meta + [""] * 7 + [f"not available: {s.reason}",
                                                                               s.runtime])
            continue
        got = list(by_model[(s.name, s.runtime)].values())
        n = len(got)
        h1 = sum(int(r["hit1"]) for r in got)
        h5 = sum(int(r["hit5"]) for r in got)
        lo1, hi1 = metrics.wilson_interval(h1, n)
        lo5, hi5 = metrics.wilson_interval(h5, n)
        conf = [float(r["top5_probs"].split()[0]) for r in got]
        ece, bins = metrics.calibration(conf, [r["hit1"] == "1" for r in got])
        distances = [
            distance_to_set(int(r["top5_indices"].split()[0]), items[r["file"]].accepted)
            for r in got if r["hit1"] == "0"
        ]
        sev_mean, sev_counts = metrics.severity(distances)
        if n:
            acc = [_pct(h1 / n), _pct(1 - h1 / n), _pct(h5 / n), _pct(1 - h5 / n)]
            ci = [_pct(lo1), _pct(hi1), _pct(lo5), _pct(hi5), f"{ece:.4f}"]
        else:
            acc, ci = [""] * 4, [""] * 5
        sev = f"{sev_mean:.3f}" if distances else ""
        out["summary"].append([s.name] + acc + meta + [n] + ci + [sev, "real", s.runtime])

        labels: dict[str, list[dict]] = {}
        for r in got:
            labels.setdefault(r["label"], []).append(r)
        for label, lr in sorted(labels.items()):
            k = len(lr)
            out["per_label"].append([s.name, label, k, _pct(sum(int(r["hit1"]) for r in lr) / k),
                                     _pct(sum(int(r["hit5"]) for r in lr) / k), s.runtime])
        for b in bins:
            out["calibration"].append([
                s.name, b.bin, f"{b.lower:.6f}", f"{b.upper:.6f}", b.count,
                "" if b.mean_confidence is None else f"{b.mean_confidence:.6f}",
                "" if b.accuracy is None else f"{b.accuracy:.6f}", s.runtime,
            ])
        for d, c in sev_counts.items():
            out["severity"].append([s.name, d, c, s.runtime])

    for a, b in itertools.combinations(evaluated, 2):
        common = sorted(by_model[a].keys() & by_model[b].keys())
        t = metrics.mcnemar([by_model[a][f]["hit1"] == "1" for f in common], [by_model[b][f]["hit1"] == "1" for f in common])
        out["mcnemar"].append([a[0], b[0], t.n, t.both_right, t.a_only, t.b_only, t.both_wrong, f"{t.p_value:.6g}",
                               a[1], b[1]])
    return out


def write_tables(out: Path, tables: dict[str, list[list]], failures: dict[str, tuple[str, str]]) -> None:
    """failures.csv and the derived tables into `out`."""
    write_csv(out / "failures.csv", FAILURE_COLUMNS, [[f, e, r] for f, (e, r) in sorted(failures.items())])
    for name, (columns, key) in TABLES.items():
        write_csv(out / name, columns, tables[key])
