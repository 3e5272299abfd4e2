"""The figures of a robustness run, from the rows of robustness.csv: top-1 per kind and severity
with Wilson intervals, the drop from clean accuracy, and the corruption error against a baseline.

Corruption error (Hendrycks & Dietterich 2019): for a kind, CE = the sum over its severities of the
model's top-1 error divided by the same sum for the baseline model; mCE = the mean of CE over the
kinds, both x 100 (the baseline scores 100). A kind where the baseline made no error has no CE, and
then there is no mCE either (a mean over fewer kinds would not compare with one over all).
"""

from __future__ import annotations

from dataclasses import dataclass

from topfive.eval import metrics
from topfive.eval.corruptions import CLEAN

ALL = "all"  # the kind and severity of the rows that aggregate
SUMMARY_COLUMNS = ["model", "runtime", "kind", "severity", "n", "top1", "top1_low", "top1_high", "drop", "ce"]


@dataclass(frozen=True)
class Score:
    hits: int
    n: int

    @property
    def top1(self) -> float | None:
        return self.hits / self.n if self.n else None

    @property
    def error(self) -> float | None:
        return None if self.n == 0 else 1 - self.hits / self.n


def tally(rows: list[dict], key: tuple[str, str], cells: list[tuple[str, int]], files: set[str]) -> dict:
    """{(kind, severity): Score} of one (model, runtime) over `files`."""
    counts = {cell: [0, 0] for cell in cells}
    for r in rows:
        cell = (r["kind"], int(r["severity"]))
        if (r["model"], r["runtime"]) == key and cell in counts and r["file"] in files:
            counts[cell][0] += r["hit1"] == "1"
            counts[cell][1] += 1
    return {cell: Score(*c) for cell, c in counts.items()}


def corruption_errors(model: dict, baseline: dict) -> tuple[dict[str, float | None], float | None]:
    """({kind: CE x 100}, mCE x 100) from {(kind, severity): Score} of a model and of the baseline,
    over the severities both have photos for; clean cells are ignored."""
    kinds = dict.fromkeys(k for k, _ in model if k != CLEAN)
    ce: dict[str, float | None] = {}
    for kind in kinds:
        shared = [cell for cell in model if cell[0] == kind and model[cell].n and cell in baseline and baseline[cell].n]
        ours = sum(model[c].error for c in shared)
        theirs = sum(baseline[c].error for c in shared)
        ce[kind] = 100 * ours / theirs if shared and theirs > 0 else None
    values = list(ce.values())
    mce = sum(values) / len(values) if values and all(v is not None for v in values) else None
    return ce, mce


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _pct(x: float | None, digits: int = 2) -> str:
    return "" if x is None else f"{100 * x:.{digits}f}"


def model_figures(scores: dict, baseline: dict | None) -> dict:
    """Clean top-1, mean corrupted top-1, the drop, per-kind mean/drop/CE and the mCE (fractions;
    CE and mCE x 100) of one model's {(kind, severity): Score}."""
    clean = scores.get((CLEAN, 0), Score(0, 0)).top1
    kinds = dict.fromkeys(k for k, _ in scores if k != CLEAN)
    ce, mce = corruption_errors(scores, baseline) if baseline else ({k: None for k in kinds}, None)
    per_kind = {}
    for kind in kinds:
        mean = _mean([s.top1 for (k, _), s in scores.items() if k == kind])
        per_kind[kind] = {"top1": mean, "drop": None if None in (clean, mean) else clean - mean, "ce": ce[kind]}
    corrupted = _mean([s.top1 for (k, _), s in scores.items() if k != CLEAN])
    return {"clean_top1": clean, "corrupted_top1": corrupted,
            "drop": None if None in (clean, corrupted) else clean - corrupted, "mce": mce, "kinds": per_kind}


def summary_rows(key: tuple[str, str], scores: dict, figures: dict) -> list[list]:
    """robustness_summary.csv's rows of one model: a row per (kind, severity) (clean first, at
    severity 0) with its interval and drop, a row per kind (severity `all`: the mean over its
    severities, the drop and CE) and one for every kind (`all`, `all`: the mean, drop and mCE)."""
    model, runtime = key
    clean = figures["clean_top1"]
    rows = []
    for (kind, severity), s in scores.items():
        low, high = metrics.wilson_interval(s.hits, s.n) if s.n else (None, None)
        drop = None if kind == CLEAN or None in (clean, s.top1) else clean - s.top1
        rows.append([model, runtime, kind, severity, s.n, _pct(s.top1), _pct(low), _pct(high), _pct(drop), ""])
    for kind, f in figures["kinds"].items():
        n = sum(s.n for (k, _), s in scores.items() if k == kind)
        ce = "" if f["ce"] is None else f"{f['ce']:.2f}"
        rows.append([model, runtime, kind, ALL, n, _pct(f["top1"]), "", "", _pct(f["drop"]), ce])
    n = sum(s.n for (k, _), s in scores.items() if k != CLEAN)
    mce = "" if figures["mce"] is None else f"{figures['mce']:.2f}"
    rows.append([model, runtime, ALL, ALL, n, _pct(figures["corrupted_top1"]), "", "", _pct(figures["drop"]), mce])
    return rows
