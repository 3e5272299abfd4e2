"""The report's conclusions: plain-words findings computed from the figures, never written by hand."""

from __future__ import annotations

from topfive.report.defaults import SIGNIFICANCE
from topfive.report.format import pct_ci
from topfive.report.numerics import MARK, accuracy_caveats, grouped
from topfive.report.results import (
    Published,
    Study,
    display,
    ece_fraction,
    mcnemar_p,
    memory_growth,
    num,
    params_m,
    pareto_front,
    weights_mib,
)
from topfive.report.section_runtimes import runtime_findings


def wide(row: dict) -> bool:
    """bench says in spread_note when its repeated runs differ widely, or one run's interval is wide."""
    return "wide" in str(row.get("spread_note", "")).lower()


def _names(models: list[str]) -> str:
    return ", ".join(display(m) for m in models)


def _accuracy(study: Study) -> list[str]:
    out: list[str] = []
    real = study.real_models
    n = study.dataset.get("n_images")
    top1 = {m: num(study.summary[m]["top1"]) for m in real}
    ranked = sorted(real, key=lambda m: top1[m], reverse=True)
    best = ranked[0]
    row = study.summary[best]
    tied = [m for m in ranked if top1[m] == top1[best]]
    if len(tied) > 1:
        out.append(
            f"**Most accurate on this photo set** ({row.get('n') or n} photos): a tie between "
            + ", ".join(f"**{display(m)}**" for m in tied) + f" at top-1 {pct_ci(row, 'top1')} %."
        )
    else:
        out.append(
            f"**Most accurate on this photo set** ({row.get('n') or n} photos): **{display(best)}**, top-1 "
            f"{pct_ci(row, 'top1')} %, top-5 {pct_ci(row, 'top5')} %."
        )
    sig, not_sig = [], []
    lead = "Its lead is" if len(tied) == 1 else f"The lead of {display(best)} is"
    for other in ranked[len(tied):]:
        p, _ = mcnemar_p(study, best, other)
        if p is None:
            continue
        (sig if p < SIGNIFICANCE else not_sig).append(f"{display(other)} (p = {p:.3g})")
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
            gaps.append(top1[m] - pub)
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
        out.append(f"**Best calibrated**: {display(m)} (ECE {100 * e:.1f} %).")
    sev = [(num(study.summary[m].get("severity_mean")), m) for m in real]
    sev = [(s, m) for s, m in sev if s is not None]
    if sev:
        s, m = min(sev)
        out.append(f"**Mildest mistakes**: {display(m)} (mean severity of a wrong top-1, in WordNet steps up to the "
                   f"ancestor it shares with the label: {s:.1f}).")
    return out


def _speed(study: Study) -> list[str]:
    out: list[str] = []
    lat = [(num(study.bench[m].get("latency_ms_median")), m) for m in study.bench]
    lat = [(v, m) for v, m in lat if v is not None]
    if lat:
        v, m = min(lat)
        device = study.environment.get("device", "")
        threads = study.environment.get("threads", "")
        out.append(
            f"**Fastest at batch 1**: {display(m)}, {v:.1f} ms median on {device or 'the device'}"
            + (f" with {threads} threads" if threads else "") + "."
        )
        sizes = study.batch_sizes()
        if sizes:
            bs = sizes[-1]
            tp = [(study.throughput(m, bs), m) for m in study.bench]
            tp = [(t, m) for t, m in tp if t is not None]
            if tp:
                t, m = max(tp)
                out.append(f"**Highest throughput** at batch {bs}: {display(m)}, {t:.0f} images/s.")
    front = pareto_front(study)
    timed = [m for m in study.real_models if num(study.bench.get(m, {}).get("latency_ms_median")) is not None]
    if len(front) >= 2:
        dominated = [m for m in timed if m not in front]
        out.append(
            "**Accuracy–latency trade-off**: "
            + ", ".join(f"{display(m)} ({num(study.summary[m]['top1']):.1f} %, "
                        f"{num(study.bench[m]['latency_ms_median']):.1f} ms)" for m in front)
            + (" are each the most accurate for their speed; " + _names(dominated)
               + (" is" if len(dominated) == 1 else " are") + " both slower and less accurate than one of them."
               if dominated
               else ": each buys its accuracy with latency, none is both slower and less accurate than another.")
        )
    return out


def _size(study: Study) -> list[str]:
    out: list[str] = []
    par = [(params_m(study, m), m) for m in study.models]
    par = [(p, m) for p, m in par if p is not None]
    if par:
        p, m = min(par)
        mib = weights_mib(study, m)
        out.append(f"**Smallest**: {display(m)}, {p:.2f} M parameters"
                   + (f", {mib:.1f} MiB of weights." if mib is not None else "."))
    mem = [(memory_growth(study.bench[m])[1], m) for m in study.bench]
    mem = [(v, m) for v, m in mem if v is not None]
    if mem:
        v, m = min(mem)
        out.append(f"**Least memory while running**: {display(m)}, peak RSS growth {v:.0f} MiB over the process "
                   "baseline.")
    cuda = [(num(study.bench[m].get("cuda_peak_mib")), m) for m in study.bench]
    cuda = [(v, m) for v, m in cuda if v is not None]
    if cuda:
        v, m = min(cuda)
        out.append(f"**Least GPU memory**: {display(m)}, CUDA peak {v:.0f} MiB.")
    return out


def conclusions(study: Study) -> list[str]:
    """The Conclusions section's bullet lines (a blank line after them)."""
    out: list[str] = []
    if study.real_models:
        out += _accuracy(study)
        flagged = accuracy_caveats(study)
        if flagged:
            out.append(f"**Depends on the CPU**: the accuracy of {grouped(flagged)} may differ by several points "
                       f"on another machine (marked {MARK} in the accuracy table).")
    elif study.summary:
        out.append("No model had weights here, so no accuracy on the photo set could be measured.")
    out += _speed(study) + _size(study) + runtime_findings(study)
    missing = [m for m in study.models if not study.has_weights(m)]
    if missing:
        out.append(
            "Without weights here (" + _names(missing) + "): only their architecture was measured "
            "(speed, memory, size); their accuracy is the published figure, not ours."
        )
    spread = [m for m in study.bench if wide(study.bench[m])]
    if spread:
        out.append("Timings were uncertain (repeated runs differed, or a run's 95 % interval was wide) for "
                   + _names(spread) + "; read those speeds with care.")
    return [f"- {line}" for line in out] + [""]
