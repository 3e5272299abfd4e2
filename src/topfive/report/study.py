"""The comparative study as one command: evaluate + bench result files -> report/REPORT.md + PNG charts.

`write_report` renders purely from the result files (`results.load_study` reads them), so it can
be run and tested alone; `run_study` first runs (or reuses) the evaluate and bench stages as
`topfive` subprocesses; `update_readme` copies the report into a marked section of a README.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from topfive.files import DATA_DIR
from topfive.report import charts, gallery
from topfive.report.results import (  # noqa: F401  (load_study, Study, published: part of this module's API)
    Published,
    Study,
    _calibration_bins,
    _num,
    _read_json,
    _truthy,
    display,
    ece_fraction,
    gmacs,
    load_study,
    mcnemar_p,
    memory_growth,
    pareto_front,
    params_m,
    pre_share,
    published,
    short,
    weights_mib,
)

# --- defaults of the study: change them here ------------------------------------------------

DEFAULT_MODELS = (
    "alexnet", "googlenet", "resnet50",  # the seed's architectures (architecture only when offline)
    "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
)
DEFAULT_OUT = "report"
DEFAULT_DATA = DATA_DIR / "eval_manifest.csv"  # committed by the eval stage
_SHARED = Path(__file__).resolve().parents[2].parent / "shared"  # ../shared beside the repo checkout
DEFAULT_MIRRORS = (Path("../shared/eval"), _SHARED / "eval")  # first existing one is used
DEFAULT_CARD_DIRS = (Path("../shared/models"), _SHARED / "models")  # model cards, once cards.py exists

EVAL_FILES = ("summary.csv", "predictions.csv", "evaluate.json")
BENCH_FILES = ("bench.json", "bench.csv")
SIGNIFICANCE = 0.05
REPORT_START, REPORT_END = "<!-- report:start -->", "<!-- report:end -->"
NOT_AVAILABLE = "weights not available here"


def default_mirror() -> Path | None:
    return next((p for p in DEFAULT_MIRRORS if p.is_dir()), None)


def default_models() -> list[str]:
    """The seed's architectures + EfficientNet-Lite, plus the shared model cards when the card
    loader (topfive.models.cards) is installed and a card folder is here."""
    import importlib.util

    models = list(DEFAULT_MODELS)
    if importlib.util.find_spec("topfive.models.cards") is not None:
        folder = next((p for p in DEFAULT_CARD_DIRS if p.is_dir()), None)
        if folder is not None:
            models += sorted(str(p) for p in folder.glob("*.json"))
    return models


# --- formatting ---------------------------------------------------------------------------


def _f(x: float | None, digits: int = 1, unit: str = "") -> str:
    return "—" if x is None else f"{x:.{digits}f}{unit}"


def _pct_ci(row: dict, key: str) -> str:
    v, lo, hi = _num(row.get(key)), _num(row.get(f"{key}_low")), _num(row.get(f"{key}_high"))
    if v is None:
        return "—"
    return f"{v:.1f} [{lo:.1f}–{hi:.1f}]" if lo is not None and hi is not None else f"{v:.1f}"


# --- Markdown -------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list], right_from: int = 1, left: tuple[int, ...] = ()) -> list[str]:
    align = ["---" if i < right_from or i in left else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines + [""]


def _ranges(indices: list[int]) -> str:
    idx, out, i = sorted(indices), [], 0
    while i < len(idx):
        j = i
        while j + 1 < len(idx) and idx[j + 1] == idx[j] + 1:
            j += 1
        out.append(str(idx[i]) if i == j else f"{idx[i]}–{idx[j]}")
        i = j + 1
    return ", ".join(out)


def _class_names() -> list[str]:
    from topfive.imagenet import classes

    return [c.name for c in classes()]


def _label_mapping(indices: list[int], names: list[str], limit: int = 4) -> str:
    shown = ", ".join(f"{names[i]} ({i})" for i in sorted(indices)[:limit])
    if len(indices) <= limit:
        return shown
    return f"{len(indices)} classes, indices {_ranges(indices)}: {shown}, …"


def conclusions(study: Study) -> list[str]:
    """Plain-words findings computed from the figures."""
    out: list[str] = []
    real = study.real_models
    n = study.dataset.get("n_images")
    if real:
        ranked = sorted(real, key=lambda m: _num(study.summary[m]["top1"]), reverse=True)
        best = ranked[0]
        row = study.summary[best]
        tied = [m for m in ranked if _num(study.summary[m]["top1"]) == _num(row["top1"])]
        if len(tied) > 1:
            out.append(
                f"**Most accurate on this photo set** ({row.get('n') or n} photos): a tie between "
                + ", ".join(f"**{m}**" for m in tied) + f" at top-1 {_pct_ci(row, 'top1')} %."
            )
        else:
            out.append(
                f"**Most accurate on this photo set** ({row.get('n') or n} photos): **{best}**, top-1 "
                f"{_pct_ci(row, 'top1')} %, top-5 {_pct_ci(row, 'top5')} %."
            )
        sig, not_sig = [], []
        lead = "Its lead is" if len(tied) == 1 else f"The lead of {best} is"
        for other in ranked[len(tied):]:
            p, _ = mcnemar_p(study, best, other)
            if p is None:
                continue
            (sig if p < SIGNIFICANCE else not_sig).append(f"{other} (p = {p:.3g})")
        if sig:
            out.append(f"{lead} significant (McNemar's exact test, p < {SIGNIFICANCE}) over " + ", ".join(sig) + ".")
        if not_sig:
            out.append(
                f"{lead} **not** significant over " + ", ".join(not_sig)
                + ": on this many photos these models cannot be told apart."
            )
        gaps = []
        for m in real:
            pub = (study.published.get(m) or Published()).acc1
            if pub is not None:
                gaps.append(_num(study.summary[m]["top1"]) - pub)
        if gaps:
            direction = "higher" if min(gaps) > 0 else "lower" if max(gaps) < 0 else "higher for some, lower for others"
            sets = study.dataset.get("label_sets", {})
            broad = max(sets, key=lambda k: len(sets[k]), default=None)
            example = (f" (e.g. any of {len(sets[broad])} classes counts for `{broad}`)"
                       if broad and len(sets[broad]) > 1 else "")
            out.append(
                f"Top-1 on this set is {direction} than the published ImageNet-1k Acc@1 "
                f"({min(gaps):+.1f} to {max(gaps):+.1f} points): the photos and their accepted class sets{example} "
                "differ from ImageNet's validation set, so compare models within a column, not across the two."
            )
        cal = [(ece_fraction(study, m), m) for m in real if ece_fraction(study, m) is not None]
        if cal:
            e, m = min(cal)
            out.append(f"**Best calibrated**: {m} (ECE {100 * e:.1f} %).")
        sev = [(_num(study.summary[m].get("severity_mean")), m) for m in real]
        sev = [(s, m) for s, m in sev if s is not None]
        if sev:
            s, m = min(sev)
            out.append(f"**Mildest mistakes**: {m} (mean severity of a wrong top-1, in WordNet steps up to the ancestor it shares with the label: {s:.1f}).")
    elif study.summary:
        out.append("No model had weights here, so no accuracy on the photo set could be measured.")
    lat = [(_num(study.bench[m].get("latency_ms_median")), m) for m in study.bench]
    lat = [(v, m) for v, m in lat if v is not None]
    if lat:
        v, m = min(lat)
        device = study.environment.get("device", "")
        threads = study.environment.get("threads", "")
        out.append(
            f"**Fastest at batch 1**: {m}, {v:.1f} ms median on {device or 'the device'}"
            + (f" with {threads} threads" if threads else "") + "."
        )
        sizes = study.batch_sizes()
        if sizes:
            bs = sizes[-1]
            tp = [(study.throughput(m, bs), m) for m in study.bench]
            tp = [(t, m) for t, m in tp if t is not None]
            if tp:
                t, m = max(tp)
                out.append(f"**Highest throughput** at batch {bs}: {m}, {t:.0f} images/s.")
    front = pareto_front(study)
    timed = [m for m in study.real_models if _num(study.bench.get(m, {}).get("latency_ms_median")) is not None]
    if len(front) >= 2:
        dominated = [m for m in timed if m not in front]
        out.append(
            "**Accuracy–latency trade-off**: "
            + ", ".join(f"{m} ({_num(study.summary[m]['top1']):.1f} %, "
                        f"{_num(study.bench[m]['latency_ms_median']):.1f} ms)" for m in front)
            + (" are each the most accurate for their speed; " + ", ".join(dominated)
               + (" is" if len(dominated) == 1 else " are") + " both slower and less accurate than one of them."
               if dominated
               else ": each buys its accuracy with latency, none is both slower and less accurate than another.")
        )
    par = [(params_m(study, m), m) for m in study.models]
    par = [(p, m) for p, m in par if p is not None]
    if par:
        p, m = min(par)
        out.append(f"**Smallest**: {m}, {p:.2f} M parameters" + (
            f", {weights_mib(study, m):.1f} MiB of weights." if weights_mib(study, m) is not None else "."))
    mem = [(memory_growth(study.bench[m])[1], m) for m in study.bench]
    mem = [(v, m) for v, m in mem if v is not None]
    if mem:
        v, m = min(mem)
        out.append(f"**Least memory while running**: {m}, peak RSS growth {v:.0f} MiB over the process baseline.")
    cuda = [(_num(study.bench[m].get("cuda_peak_mib")), m) for m in study.bench]
    cuda = [(v, m) for v, m in cuda if v is not None]
    if cuda:
        v, m = min(cuda)
        out.append(f"**Least GPU memory**: {m}, CUDA peak {v:.0f} MiB.")
    missing = [m for m in study.models if not study.has_weights(m)]
    if missing:
        out.append(
            "Without weights here (" + ", ".join(missing) + "): only their architecture was measured "
            "(speed, memory, size); their accuracy is the published figure, not ours."
        )
    wide = [m for m in study.bench if _wide(study.bench[m])]
    if wide:
        out.append("Timing spread between repeated runs was wide for " + ", ".join(wide) + "; read those speeds with care.")
    return [f"- {line}" for line in out] + [""]


def _fact(key, value) -> str:
    """One source or licence entry of evaluate.json, whatever its shape: a count, a text, a record."""
    if value in ("", None):
        return str(key)
    if isinstance(value, dict) and "n" in value:  # evaluate's {repo@commit: {repo, commit, dataset, n}}
        commit = str(value.get("commit", ""))
        commit = commit[:7] if re.fullmatch(r"[0-9a-f]{7,40}", commit) else ""
        where = (value.get("repo") or "") + (f"@{commit}" if commit else "")
        name = value.get("dataset") or key
        return f"{name} ({value['n']}" + (f"; {where}" if where and where not in str(name) else "") + ")"
    if isinstance(value, dict):
        return f"{key} (" + ", ".join(f"{k}: {v}" for k, v in value.items()) + ")"
    if isinstance(value, list):
        return f"{key} ({len(value)})"
    return f"{key} ({value})" if isinstance(value, (int, float)) else f"{key}: {value}"


def _section_setup(study: Study, names: list[str]) -> list[str]:
    env = study.environment
    lines = ["## Set-up", ""]
    if env:
        keys = [("cpu", "CPU"), ("threads", "threads"), ("device", "device"), ("dtype", "dtype"),
                ("memory_format", "memory format"), ("torch", "torch"), ("torchvision", "torchvision"),
                ("python", "Python"), ("platform", "platform")]
        lines += _table(["", ""], [[label, env.get(key, "—")] for key, label in keys], right_from=99)
    else:
        lines += ["Speed and memory were not measured (no bench results).", ""]
    ds = study.dataset
    lines += ["### Photo set", ""]
    if ds:
        failed = ds.get("n_failed") or 0
        lines.append(
            f"`{ds.get('path', '?')}`: {ds.get('n_images', '?')} photos read"
            + (f", {failed} unreadable (listed below, excluded from n)." if failed else ", none unreadable.")
        )
        lines.append("")
        labels = ds.get("labels", {})
        sets = ds.get("label_sets", {})
        rows = [[label, count, _label_mapping(sets.get(label, []), names) if sets.get(label) else "—"]
                for label, count in labels.items()]
        lines += ["Photos per label and the ImageNet-1k classes each label accepts (a prediction is right at top-k "
                  "if any of its k classes is in the set):", ""]
        lines += _table(["label", "n", "accepted ImageNet-1k classes"], rows, left=(2,))
        for key, title in (("sources", "Sources"), ("licences", "Licences")):
            value = ds.get(key)
            if value:
                items = value.items() if isinstance(value, dict) else ((v, "") for v in value)
                lines.append(f"{title}: " + "; ".join(_fact(k, v) for k, v in items) + ".")
                lines.append("")
    else:
        lines += ["Accuracy was not measured (no evaluate results).", ""]
    if study.failures:
        lines += [f"Unreadable photos ({len(study.failures)}):", ""]
        lines += [f"- `{f.get('file')}`: {f.get('error', '')} — {f.get('reason', '')}" for f in study.failures[:20]]
        if len(study.failures) > 20:
            lines.append(f"- … and {len(study.failures) - 20} more (see failures.csv)")
        lines.append("")
    status = [s for s in study.model_status if s.get("reason")]
    if status:
        lines += ["Models that could not be evaluated:", ""]
        lines += [f"- {s['name']}: {s.get('status', '')} — {s['reason']}" for s in status]
        lines.append("")
    return lines


def _section_accuracy(study: Study, chart: str | None) -> list[str]:
    lines = ["## Accuracy", ""]
    if not study.models:
        return lines + ["No results.", ""]
    rows = []
    for m in study.models:
        pub = study.published.get(m) or Published()
        g, _ = gmacs(study, m)
        if study.has_weights(m):
            row = study.summary[m]
            own = [row.get("n", ""), _pct_ci(row, "top1"), _pct_ci(row, "top5")]
        else:
            own = ["—", NOT_AVAILABLE, NOT_AVAILABLE]
        rows.append([m, *own, _f(pub.acc1), _f(pub.acc5), _f(params_m(study, m), 2), _f(g, 3)])
    lines += [
        "Top-1 and top-5 on this photo set with 95 % Wilson intervals, beside the published ImageNet-1k "
        "accuracy of the same weights (a different test set: compare within a column).", "",
    ]
    lines += _table(["model", "n", "top-1 % [95 % CI]", "top-5 % [95 % CI]", "ImageNet Acc@1 %",
                     "ImageNet Acc@5 %", "params (M)", "GMACs"], rows)
    if chart:
        lines += [f"![Accuracy vs latency]({chart})", ""]
    real = study.real_models
    if study.per_label and real:
        by = {(r["model"], r["label"]): r for r in study.per_label}
        labels = list(dict.fromkeys(r["label"] for r in study.per_label))
        rows = []
        for label in labels:
            n = next((by[(m, label)]["n"] for m in real if (m, label) in by), "")
            cells = []
            for m in real:
                r = by.get((m, label))
                cells.append("—" if r is None else f"{_num(r['top1']):.0f} / {_num(r['top5']):.0f}")
            rows.append([label, n, *cells])
        lines += ["### Per-label accuracy", "", "Top-1 / top-5 in percent per label (models with weights only).", ""]
        lines += _table(["label", "n", *real], rows)
    else:
        lines += ["### Per-label accuracy", "", "No per-label results.", ""]
    lines += ["### Pairwise McNemar tests", ""]
    if study.mcnemar:
        rows = []
        for r in study.mcnemar:
            p = _num(r["p_value"])
            mark = "**yes**" if p is not None and p < SIGNIFICANCE else "no"
            ao, bo = int(float(r["a_only"])), int(float(r["b_only"]))
            better = r["model_a"] if ao > bo else r["model_b"] if bo > ao else "tie"
            rows.append([r["model_a"], r["model_b"], r["n"], ao, bo, f"{p:.3g}" if p is not None else "—", mark, better])
        lines += [
            "McNemar's exact test on the same photos: only the photos where exactly one of the two is right at "
            f"top-1 count. Significant at {SIGNIFICANCE} marked **yes**.", "",
        ]
        lines += _table(["model A", "model B", "n", "only A right", "only B right", "p", f"p < {SIGNIFICANCE}",
                         "more often right"], rows, right_from=2, left=(6, 7))
    else:
        lines += ["Fewer than two models with weights: nothing to compare.", ""]
    return lines


def _wide(row: dict) -> bool:
    """bench says in spread_note when its repeated runs differ widely."""
    return "wide" in str(row.get("spread_note", "")).lower()


def _section_speed(study: Study, chart: str | None) -> list[str]:
    lines = ["## Speed", ""]
    if not study.bench:
        return lines + ["Not measured (no bench results).", ""]
    sizes = study.batch_sizes()
    rows = []
    for m, r in study.bench.items():
        lo, hi = _num(r.get("latency_ms_min")), _num(r.get("latency_ms_max"))
        spread = _num(r.get("spread_pct"))
        rows.append([
            m, r.get("weights", ""), (study.published.get(m) or Published()).runtime or "—",
            _f(_num(r.get("latency_ms_median")), 2), _f(_num(r.get("latency_ms_p90")), 2),
            f"{_f(lo, 2)}–{_f(hi, 2)}", r.get("latency_runs", ""),
            *[_f(study.throughput(m, bs)) for bs in sizes],
            _f(_num(r.get("decode_ms")), 2), _f(_num(r.get("preprocess_ms")), 2),
            _f(_num(r.get("end_to_end_img_s"))), _f(pre_share(r), 0, " %"),
            (_f(spread, 1, " %") + (" (wide)" if _wide(r) else "")) if spread is not None else "—",
        ])
    env = study.environment
    lines += [
        f"On {env.get('device', '?')} ({env.get('cpu', '?')}), {env.get('threads', '?')} threads, "
        f"{env.get('dtype', '?')}; each model in its own fresh process. Latency: batch 1 after warm-up; "
        "throughput: model only; end to end: decode + preprocess + model from the photo files. Each model runs "
        "as `evaluate` ran it: torchvision and EfficientNet-Lite models in eager PyTorch fp32 (the reference "
        "path; `classify --backend onnx` is several times faster, see the README's performance section), model "
        "cards in their own runtime.", "",
    ]
    lines += _table(["model", "weights", "runtime", "latency median (ms)", "p90 (ms)", "min–max (ms)", "runs",
                     *[f"img/s bs {bs}" for bs in sizes], "decode (ms)", "preprocess (ms)",
                     "end to end (img/s)", "decode+preprocess share", "spread over repeats"], rows, right_from=3)
    notes = [f"- {m}: {r['spread_note']}" for m, r in study.bench.items() if r.get("spread_note")]
    errors = [f"- {m}: {r['error']}" for m, r in study.bench.items() if r.get("error")]
    lines += notes + errors + ([""] if notes or errors else [])
    if chart:
        lines += [f"![Throughput per model]({chart})", ""]
    return lines


def _section_memory(study: Study, chart: str | None) -> list[str]:
    lines = ["## Memory, size and compute", ""]
    if not study.bench:
        return lines + ["Not measured (no bench results).", ""]
    cuda = any(_num(r.get("cuda_peak_mib")) is not None for r in study.bench.values())
    rows = []
    for m, r in study.bench.items():
        load, run, over_loaded = memory_growth(r)
        g, counter = gmacs(study, m)
        row = [m, _f(params_m(study, m), 2), _f(g, 3), counter or "—", _f(weights_mib(study, m)), _f(load), _f(run),
               _f(over_loaded)]
        if cuda:
            row.append(_f(_num(r.get("cuda_peak_mib"))))
        rows.append(row)
    lines += [
        "Weights: the weight file's bytes. Peak RSS growth: in a fresh process per model, the peak resident "
        "memory while loading, and while running (every batch size, so the largest batch dominates), minus "
        "the process's baseline after imports; \"run over "
        "loaded\": the running peak minus the resident memory once the model was loaded (what inference adds)."
        + (" CUDA peak: `torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`." if cuda else ""), "",
    ]
    lines += _table(["model", "params (M)", "GMACs", "GMACs counter", "weights (MiB)", "RSS growth load (MiB)",
                     "RSS growth run (MiB)", "run over loaded (MiB)", *(["CUDA peak (MiB)"] if cuda else [])],
                    rows, left=(3,))
    if chart:
        lines += [f"![Memory per model]({chart})", ""]
    return lines


def _section_calibration(study: Study, chart: str | None) -> list[str]:
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
        rows.append([m, _f(100 * e if e is not None else None), wrong if dist else "—",
                     _f(_num(study.summary[m].get("severity_mean")), 2),
                     " ".join(f"{d}:{c}" for d, c in dist) or "—"])
    lines += [
        "ECE: expected calibration error of the top-1 probability over 15 equal-width bins (0 = the probability "
        "is the hit rate). Severity: for each wrong top-1, the hypernym steps from the nearest accepted class up to "
        "the lowest WordNet ancestor it shares with the predicted class (small = a near miss, e.g. a related breed)."
        + (f" Where a label accepts many classes ({broad}: {len(sets[broad])}) the top-1 class's probability "
           "understates the chance that the top-1 is in the set, so models look under-confident there."
           if broad else ""), "",
    ]
    lines += _table(["model", "ECE %", "wrong top-1", "mean severity", "distance:count"], rows, left=(4,))
    if chart:
        lines += [f"![Reliability diagram]({chart})", ""]
    return lines


def _section_method(study: Study) -> list[str]:
    counters = sorted({r.get("gmacs_counter", "") for r in study.bench.values()} - {""})
    return [
        "## Method", "",
        "- **Accuracy**: each photo has a set of accepted ImageNet-1k classes (its label expanded through "
        "WordNet); top-k is right when any of the k highest classes is in the set. n counts readable photos "
        "only; the interval is the 95 % Wilson score interval. Models without weights get no accuracy here: "
        "a number from random weights would be noise.",
        "- **Significance**: McNemar's exact (binomial) test on the photos where exactly one model of a pair is "
        f"right at top-1; p < {SIGNIFICANCE} is called significant. With many pairs some will pass by chance.",
        "- **Calibration**: ECE over 15 bins of the top-1 probability; the reliability diagram plots the hit rate "
        "against the mean probability per bin. **Severity**: the height of the lowest common WordNet ancestor of a "
        "wrong top-1 and the nearest accepted class (Bertinetto et al., *Making Better Mistakes*, 2020): a horse "
        "called ox meets it at *ungulate*, 4 steps up; called Great Dane, only at *placental mammal*, 5 steps.",
        "- **Speed**: each model in a fresh process; warm-up passes first, then batch-1 latency as median and p90 "
        "over the timed runs counted in the speed table; throughput per batch size, model only; decode and "
        "preprocess timed apart on the real photos, and end-to-end images/s from the files. Each model is "
        "measured in repeated fresh processes (two by default); the figures are medians over the repeats, and "
        "their spread is reported and marked when wide.",
        "- **Memory**: weight bytes; peak resident set size (RSS) growth over the process baseline while "
        "loading and while running, each model in its own fresh process; on GPU "
        "`torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`. Summing torch.profiler's "
        "allocations is **not** memory: the profiler adds up every allocation of every operator, including "
        "buffers freed and reused a moment later, so the sum grows with the number of passes and layers "
        "(the seed's 50 passes gave GiB for ResNet-50) while the real peak growth is tens of MiB.",
        f"- **Size and compute**: parameters counted from the model; GMACs (multiply-accumulates per image) by "
        f"{', '.join(counters) or 'the counter named in the table'} (torchvision's \"GFLOPS\" are MACs).",
        "- **Published figures**: ImageNet-1k Acc@1/Acc@5 as published for the same weights (torchvision's "
        "weights metadata; timm's results for EfficientNet-Lite), not re-measured here.",
        "",
    ]


# --- gallery ----------------------------------------------------------------------------------


def _section_gallery(study: Study, out_dir: Path, roots: list[Path], names: list[str]) -> list[str]:
    lines = ["## Gallery of disagreements", ""]
    chosen = gallery.disagreements(study)
    if not chosen:
        return lines + ["No photo where the models with weights disagree at top-1 (or fewer than two such models).", ""]
    folder = out_dir / "gallery"
    gallery.ignore_folder(folder)
    for old in folder.glob("*.jpg"):  # thumbnails of an earlier report
        old.unlink()
    sets = {k: set(v) for k, v in study.dataset.get("label_sets", {}).items()}
    lines += [
        f"Photos where the models' top-1 differ ({len(chosen)} shown), with each model's top-5; ✓ marks a class "
        "in the photo's accepted set. Thumbnails are made from the local photos and are not committed.", "",
    ]
    for file, label, rows in chosen:
        lines += [f"### `{file}` — label: {label}", ""]
        src = gallery.find_photo(file, roots)
        thumb = folder / gallery.thumbnail_name(file)
        problem = "photo not found (give --mirror)" if src is None else gallery.thumbnail(src, thumb)
        lines += [f"![{label}](gallery/{thumb.name})" if problem is None else f"*(no thumbnail: {problem})*", ""]
        table = []
        for m in study.real_models:
            r = rows.get(m)
            if r is None:
                continue
            idx = [int(i) for i in r["top5_indices"].split()]
            probs = [float(p) for p in r["top5_probs"].split()]
            rnames = r["top5_names"].split("|") if r.get("top5_names") else [names[i] for i in idx]
            accepted = sets.get(label, set())
            cells = [f"{n}{' ✓' if i in accepted else ''} {p:.2f}" for i, n, p in zip(idx, rnames, probs)]
            table.append([m, "right" if _truthy(r["hit1"]) else "wrong", "; ".join(cells)])
        lines += _table(["model", "top-1", "top-5 (probability)"], table, right_from=99)
    return lines


# --- the report -----------------------------------------------------------------------------


def _charts(study: Study, out_dir: Path) -> dict[str, str]:
    """Draws the charts there is data for; returns {kind: path relative to out_dir}."""
    colour = charts.colours([short(m) for m in study.models])
    made: dict[str, str] = {}
    folder = out_dir / "charts"
    points = []
    for m in study.models:
        row = study.summary.get(m, {})
        real = study.has_weights(m)
        points.append({
            "label": short(m),
            "latency_ms": _num(study.bench.get(m, {}).get("latency_ms_median")),
            "top1": _num(row.get("top1")) if real else None,
            "low": _num(row.get("top1_low")) if real else None,
            "high": _num(row.get("top1_high")) if real else None,
            "published": (study.published.get(m) or Published()).acc1,
        })
    if any(p["latency_ms"] is not None and (p["top1"] is not None or p["published"] is not None) for p in points):
        charts.accuracy_vs_latency(points, folder / "accuracy_vs_latency.png", colour, study.dataset.get("n_images"))
        made["accuracy"] = "charts/accuracy_vs_latency.png"
    if study.bench:
        rows = []
        for m, r in study.bench.items():
            load, run, _ = memory_growth(r)
            rows.append({"label": short(m), "weights_mib": weights_mib(study, m), "load_mib": load, "run_mib": run,
                         "cuda_mib": _num(r.get("cuda_peak_mib"))})
        charts.memory(rows, folder / "memory.png")
        made["memory"] = "charts/memory.png"
        sizes = study.batch_sizes()
        rows = [{"label": short(m), "throughput": {bs: study.throughput(m, bs) for bs in sizes},
                 "end_to_end": _num(r.get("end_to_end_img_s"))} for m, r in study.bench.items()]
        charts.throughput(rows, sizes, folder / "throughput.png")
        made["throughput"] = "charts/throughput.png"
    curves = [{"label": short(m), "ece": ece_fraction(study, m), "bins": _calibration_bins(study, m)}
              for m in study.real_models if study.calibration.get(m)]
    if curves:
        charts.reliability(curves, folder / "reliability.png", colour)
        made["reliability"] = "charts/reliability.png"
    return made


def render(study: Study, out_dir: Path, image_roots: list[Path], made: dict[str, str], command: str = "",
           notes: list[str] | None = None) -> str:
    names = _class_names()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Comparative study: " + ", ".join(short(m) for m in study.models), "",
        f"Generated {now} by `topfive report`" + (f" (`{command}`)" if command else "")
        + ". Every figure below is computed from the result files of `topfive evaluate`"
        + (f" (`{study.eval_dir}`)" if study.eval_dir else "")
        + (f", written {study.created}," if study.created else "")
        + " and `topfive bench`" + (f" (`{study.bench_dir}`)" if study.bench_dir else "") + ".", "",
        *[line for note in notes or [] for line in (f"> {note}", "")],
        "## Conclusions", "",
        *conclusions(study),
        *_section_setup(study, names),
        *_section_accuracy(study, made.get("accuracy")),
        *_section_speed(study, made.get("throughput")),
        *_section_memory(study, made.get("memory")),
        *_section_calibration(study, made.get("reliability")),
        *_section_gallery(study, out_dir, image_roots, names),
        *_section_method(study),
    ]
    text = "\n".join(lines).rstrip() + "\n"
    for m in sorted(study.models, key=len, reverse=True):  # card paths -> their file names, everywhere
        if display(m) != m:
            text = text.replace(m, display(m))
    return text


def write_report(
    eval_dir: Path | str | None,
    bench_dir: Path | str | None,
    out_dir: Path | str = DEFAULT_OUT,
    image_roots: list[Path | str] | None = None,
    command: str = "",
    notes: list[str] | None = None,
) -> Path:
    """Render out_dir/REPORT.md, out_dir/charts/*.png and out_dir/gallery/*.jpg from the result
    files alone. image_roots: folders in which the photos' relative paths are looked up for the
    gallery (e.g. the --mirror folder)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    study = load_study(eval_dir, bench_dir)
    roots = [Path(r) for r in image_roots or []]
    ds_path = study.dataset.get("path")
    if ds_path:
        p = Path(ds_path)
        roots.append(p if p.is_dir() else p.parent)
    made = _charts(study, out)
    path = out / "REPORT.md"
    path.write_text(render(study, out, roots, made, command, notes))
    return path


# --- README section -------------------------------------------------------------------------

_LINK = re.compile(r"(!?\[[^\]]*\]\()([^)\s]+)(\))")


def readme_section(report_md: Path, readme: Path) -> str:
    """The report as a README section: headings one level down, links relative to the README,
    and no gallery (its thumbnails are not committed)."""
    text = report_md.read_text()
    gallery = re.search(r"^## Gallery of disagreements\n.*?(?=^## |\Z)", text, flags=re.M | re.S)
    if gallery:
        rel = os.path.relpath(report_md, readme.parent)
        text = text.replace(  # the link target is relative to the report; relinked below
            gallery.group(0),
            f"## Gallery of disagreements\n\nThumbnails of the photos where the models disagree are in "
            f"[{rel}]({report_md.name}) after a local run (they are not committed).\n\n",
        )

    def relink(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"^[a-z]+:|^#|^/", target):
            return m.group(0)
        return m.group(1) + os.path.relpath(report_md.parent / target, readme.parent) + m.group(3)

    text = _LINK.sub(relink, text)
    text = re.sub(r"^(#+) ", lambda m: "#" + m.group(1) + " ", text, flags=re.M)
    return text


def update_readme(readme: Path | str, report_md: Path | str) -> bool:
    """Replace the text between the report markers in readme with the report; appends the marked
    section when the markers are absent. Returns True when the markers were found."""
    readme, report_md = Path(readme), Path(report_md)
    body = readme_section(report_md, readme)
    block = f"{REPORT_START}\n<!-- generated by `topfive report --readme`; edits here are overwritten -->\n\n{body}\n{REPORT_END}"
    old = readme.read_text() if readme.is_file() else ""
    start, end = old.find(REPORT_START), old.find(REPORT_END)
    if start != -1 and end > start:
        new = old[:start] + block + old[end + len(REPORT_END):]
        found = True
    elif start != -1 or end != -1:
        raise ValueError(f"{readme}: only one of the markers {REPORT_START} / {REPORT_END} is present")
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + block + "\n"
        found = False
    readme.write_text(new)
    return found


# --- running the stages ---------------------------------------------------------------------


def _stage_args_file(out: Path) -> Path:
    return out / "study.json"


def _topfive(argv: list[str]) -> int:
    """Runs `python -m topfive ARGV` with this package on PYTHONPATH; output goes to the terminal."""
    import topfive

    src = str(Path(topfive.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    print("topfive report: running topfive " + " ".join(argv), file=sys.stderr, flush=True)
    return subprocess.run([sys.executable, "-m", "topfive", *argv], env=env).returncode


def _set_aside(folder: Path) -> None:
    """Moves earlier results to FOLDER.previous (replacing an older copy), so nothing is mixed in."""
    import shutil

    previous = folder.with_name(folder.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    folder.rename(previous)
    print(f"topfive report: earlier results moved to {previous}", file=sys.stderr)


def _photo_folder(data, mirror) -> Path | None:
    """Real photos for bench's decode/preprocess timing: the mirror, or the photo-set folder."""
    from topfive.decode.images import IMAGE_SUFFIXES

    for folder in (mirror, data if data and Path(data).is_dir() else None):
        if folder and Path(folder).is_dir():
            if any(p.suffix.lower() in IMAGE_SUFFIXES for p in Path(folder).rglob("*")):
                return Path(folder)
    return None


def _run_stages(data, models, device, out: Path, mirror=None, reuse: bool = True,
                quick: bool = False) -> tuple[Path, Path]:
    """The only place that knows how evaluate and bench are invoked. A stage is skipped when its
    result files exist, reuse is on and it was last run with the same arguments."""
    eval_dir, bench_dir = out / "eval", out / "bench"
    args_path = _stage_args_file(out)
    recorded = _read_json(args_path)
    photos = _photo_folder(data, mirror)
    stages = {
        "evaluate": (eval_dir, EVAL_FILES, ["evaluate", "--data", str(data), "--models", ",".join(models),
                                            "--out", str(eval_dir)] + (["--mirror", str(mirror)] if mirror else [])),
        "bench": (bench_dir, BENCH_FILES, ["bench", "--models", ",".join(models), "--device", device,
                                           "--out", str(bench_dir)]
                  + (["--photos", str(photos)] if photos else []) + (["--quick"] if quick else [])),
    }
    for name, (folder, files, argv) in stages.items():
        have = all((folder / f).is_file() for f in files)
        if reuse and have and recorded.get(name, argv) == argv:
            print(f"topfive report: reusing {name} results in {folder}", file=sys.stderr)
            continue
        if folder.exists() and (not reuse or recorded.get(name, argv) != argv):
            _set_aside(folder)  # a fresh run; otherwise (e.g. after a kill) the stage resumes in place
        rc = _topfive(argv)
        if not all((folder / f).is_file() for f in files):
            raise RuntimeError(f"topfive {name} exited with status {rc} and wrote no results in {folder}")
        if rc != 0:
            print(f"topfive report: {name} exited with status {rc} (some inputs failed); its results are used",
                  file=sys.stderr)
        recorded[name] = argv
        out.mkdir(parents=True, exist_ok=True)
        args_path.write_text(json.dumps(recorded, indent=1))
    return eval_dir, bench_dir


def run_study(data=None, models=None, device: str = "cpu", out: Path | str = DEFAULT_OUT, reuse: bool = True,
              mirror=None, readme: Path | str | None = None, quick: bool = False) -> Path:
    """Evaluate + bench (or reuse their files), then write the report (and the README section).
    quick: bench's few-repetition mode, to check the machinery; the report says so."""
    out = Path(out)
    data = data or DEFAULT_DATA
    if not str(data).startswith("builtin:") and not Path(data).exists():
        raise ValueError(f"{data}: no such photo set (give --data: a folder per label, a CSV or a manifest)")
    models = list(models or default_models())
    if mirror is None and data == DEFAULT_DATA:
        mirror = default_mirror()
    eval_dir, bench_dir = _run_stages(data, models, device, out, mirror=mirror, reuse=reuse, quick=quick)
    command = "topfive report " + " ".join(
        ([f"--data {data}"] if data != DEFAULT_DATA else []) + ([f"--device {device}"] if device != "cpu" else [])
        + (["--quick"] if quick else [])
    )
    notes = ["**Quick bench run** (`--quick`): few repetitions, so the speed figures only check the machinery; "
             "do not quote them."] if quick else []
    path = write_report(eval_dir, bench_dir, out, image_roots=[mirror] if mirror else [], command=command.strip(),
                        notes=notes)
    if readme:
        update_readme(readme, path)
    return path
