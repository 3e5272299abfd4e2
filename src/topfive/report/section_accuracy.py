"""The sections on how right the models are: Accuracy (with per-label results and pairwise McNemar
tests) and Calibration and mistake severity."""

from __future__ import annotations

from topfive.report.defaults import NOT_AVAILABLE, SIGNIFICANCE
from topfive.report.format import fmt, pct_ci
from topfive.report.numerics import MARK, accuracy_caveats, accuracy_note
from topfive.report.results import (
    Published,
    Study,
    display,
    ece_fraction,
    gmacs,
    num,
    params_m,
)
from topfive.tables import markdown_table


def _overall(study: Study) -> list[str]:
    rows = []
    flagged = accuracy_caveats(study)
    for m in study.models:
        pub = study.published.get(m) or Published()
        g, _ = gmacs(study, m)
        if study.has_weights(m):
            row = study.summary[m]
            mark = f" {MARK}" if m in flagged else ""  # this figure may not hold on another CPU
            own = [row.get("n", ""), pct_ci(row, "top1") + mark, pct_ci(row, "top5") + mark]
        else:
            own = ["—", NOT_AVAILABLE, NOT_AVAILABLE]
        rows.append([display(m), *own, fmt(pub.acc1), fmt(pub.acc5), fmt(params_m(study, m), 2), fmt(g, 3)])
    return [
        "Top-1 and top-5 on this photo set with 95 % Wilson intervals, beside the published ImageNet-1k "
        "accuracy of the same weights (a different test set: compare within a column).", "",
        *markdown_table(["model", "n", "top-1 % [95 % CI]", "top-5 % [95 % CI]", "ImageNet Acc@1 %",
                         "ImageNet Acc@5 %", "params (M)", "GMACs"], rows),
        *accuracy_note(study),
    ]


def _per_label(study: Study) -> list[str]:
    lines = ["### Per-label accuracy", ""]
    real = study.real_models
    if not (study.per_label and real):
        return lines + ["No per-label results.", ""]
    by = {(r["model"], r["label"]): r for r in study.per_label}
    rows = []
    for label in dict.fromkeys(r["label"] for r in study.per_label):
        n = next((by[(m, label)]["n"] for m in real if (m, label) in by), "")
        cells = []
        for m in real:
            r = by.get((m, label))
            cells.append("—" if r is None else f"{num(r['top1']):.0f} / {num(r['top5']):.0f}")
        rows.append([label, n, *cells])
    lines += ["Top-1 / top-5 in percent per label (models with weights only).", ""]
    return lines + markdown_table(["label", "n", *(display(m) for m in real)], rows)


def _mcnemar(study: Study) -> list[str]:
    lines = ["### Pairwise McNemar tests", ""]
    if not study.mcnemar:
        return lines + ["Fewer than two models with weights: nothing to compare.", ""]
    rows = []
    for r in study.mcnemar:
        p = num(r["p_value"])
        mark = "**yes**" if p is not None and p < SIGNIFICANCE else "no"
        ao, bo = int(float(r["a_only"])), int(float(r["b_only"]))
        better = display(r["model_a"]) if ao > bo else display(r["model_b"]) if bo > ao else "tie"
        rows.append([display(r["model_a"]), display(r["model_b"]), r["n"], ao, bo,
                     f"{p:.3g}" if p is not None else "—", mark, better])
    lines += [
        "McNemar's exact test on the same photos: only the photos where exactly one of the two is right at "
        f"top-1 count. Significant at {SIGNIFICANCE} marked **yes**.", "",
    ]
    return lines + markdown_table(["model A", "model B", "n", "only A right", "only B right", "p",
                                   f"p < {SIGNIFICANCE}", "more often right"], rows, right_from=2, left=(6, 7))


def section_accuracy(study: Study, chart: str | None) -> list[str]:
    lines = ["## Accuracy", ""]
    if not study.models:
        return lines + ["No results.", ""]
    lines += _overall(study)
    if chart:
        lines += [f"![Accuracy vs latency]({chart})", ""]
    return lines + _per_label(study) + _mcnemar(study)


def section_calibration(study: Study, chart: str | None) -> list[str]:
    lines = ["## Calibration and mistake severity", ""]
    real = study.real_models
    if not real:
        return lines + ["No model with weights: nothing to calibrate.", ""]
    sets = study.dataset.get("label_sets", {})
    broad = max((k for k in sets if len(sets[k]) > 1), key=lambda k: len(sets[k]), default=None)
    rows = []
    for m in real:
        e = ece_fraction(study, m)
        dist = sorted(study.severity.get(m, []))
        wrong = sum(c for _, c in dist)
        rows.append([display(m), fmt(100 * e if e is not None else None), wrong if dist else "—",
                     fmt(num(study.summary[m].get("severity_mean")), 2),
                     " ".join(f"{d}:{c}" for d, c in dist) or "—"])
    lines += [
        "ECE: expected calibration error of the top-1 probability over 15 equal-width bins (0 = the probability "
        "is the hit rate). Severity: for each wrong top-1, the hypernym steps from the nearest accepted class up to "
        "the lowest WordNet ancestor it shares with the predicted class (small = a near miss, e.g. a related breed)."
        + (f" Where a label accepts many classes ({broad}: {len(sets[broad])}) the top-1 class's probability "
           "understates the chance that the top-1 is in the set, so models look under-confident there."
           if broad else ""), "",
    ]
    lines += markdown_table(["model", "ECE %", "wrong top-1", "mean severity", "distance:count"], rows, left=(4,))
    if chart:
        lines += [f"![Reliability diagram]({chart})", ""]
    return lines
