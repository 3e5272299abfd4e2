"""The Runtimes section: one model across the runtimes it ran on, against a reference runtime.

Generated from the result files alone: the top-1 agreement and McNemar's test are computed here
from predictions.csv (the photos both runtimes have), speed and memory come from bench's rows.
The reference is torch where the model ran on it (a zoo model as trained, in fp32), else the first
runtime listed. A model appears here only where the study ran it on more than one runtime; the
architecture tables show each model once (report.rows says on which runtime).
"""

from __future__ import annotations

from topfive.eval.metrics import mcnemar
from topfive.report.defaults import SIGNIFICANCE
from topfive.report.format import fmt, pct_ci
from topfive.report.numerics import MARK, caveat
from topfive.report.results import Published, Study, display, memory_growth, num, runtime_name, truthy
from topfive.report.rows import split_key
from topfive.tables import markdown_table

REFERENCE = "torch"


def reference_of(keys: list[str]) -> str:
    """The key the others are compared with: torch where there is one, else the first."""
    return next((k for k in keys if split_key(k)[1] == REFERENCE), keys[0])


def by_file(study: Study, key: str) -> dict[str, dict]:
    return {r["file"]: r for r in study.predictions if r["model"] == key}


def top1(row: dict) -> str:
    indices = row["top5_indices"].split()
    return indices[0] if indices else ""


def compare(ref: dict[str, dict], other: dict[str, dict]) -> tuple[float | None, object]:
    """(top-1 agreement in percent, McNemar on top-1 hits) over the photos both have; (None, None)
    when they share none."""
    common = sorted(ref.keys() & other.keys())
    if not common:
        return None, None
    agree = 100 * sum(top1(ref[f]) == top1(other[f]) for f in common) / len(common)
    test = mcnemar([truthy(ref[f]["hit1"]) for f in common], [truthy(other[f]["hit1"]) for f in common])
    return agree, test


def throughput(row: dict, bs: int | None) -> float | None:
    """images/s at batch size `bs` from a bench row (bench.csv's column, else bench.json's dict)."""
    if bs is None:
        return None
    value = num(row.get(f"throughput_bs{bs}"))
    return value if value is not None else num((row.get("throughput_img_s") or {}).get(str(bs)))


def versus_reference(study: Study, keys: list[str]) -> tuple[str, dict[str, tuple[float, object]]]:
    """(the reference's key, {key: (top-1 agreement %, McNemar)}) for a model's rows on several
    runtimes; a row without predictions to compare is left out."""
    ref = reference_of(keys)
    ref_files = by_file(study, ref)
    out = {}
    for key in keys:
        if key != ref:
            agree, test = compare(ref_files, by_file(study, key))
            if test is not None:
                out[key] = (agree, test)
    return ref, out


def _rows(study: Study, keys: list[str], ref: str, results: dict, bs: int | None) -> tuple[list[list], dict]:
    rows, flagged = [], {}
    fp = study.fingerprints.get("evaluate")
    for key in keys:
        runtime = split_key(key)[1]
        s = study.rows.all_summary.get(key, {})
        b = study.rows.all_bench.get(key, {})
        real = s.get("weights", "").strip() == "real" and num(s.get("top1")) is not None
        accuracy = pct_ci(s, "top1") if real else "—"
        why = caveat(s, study.published.get(key) or Published(), fp) if real else ""
        if why:
            accuracy += f" {MARK}"
            flagged[runtime] = why
        if key == ref:
            versus = ["reference", "—", "—", "—"]
        elif key not in results:
            versus = ["—"] * 4
        else:
            agree, test = results[key]
            mark = " **(significant)**" if test.p_value < SIGNIFICANCE else ""
            versus = [fmt(agree, 1, " %"), test.a_only, test.b_only, f"{test.p_value:.3g}{mark}"]
        _, run, _ = memory_growth(b)
        rows.append([
            runtime, runtime_name(runtime), b.get("precision") or "—", s.get("n") or "—", accuracy, *versus,
            fmt(num(b.get("latency_ms_median")), 2), fmt(throughput(b, bs)), fmt(run),
        ])
    return rows, flagged


def finding(model: str, ref: str, results: dict) -> str:
    """One generated sentence: the runtime that departs most from the reference ("" if none)."""
    if not results:
        return ""
    key, (agree, test) = min(results.items(), key=lambda item: item[1][0])
    runtime, reference = split_key(key)[1], split_key(ref)[1]
    verdict = (f"a significant difference in top-1 accuracy (McNemar p = {test.p_value:.3g})"
               if test.p_value < SIGNIFICANCE else f"no significant difference in accuracy (p = {test.p_value:.3g})")
    return (f"On {display(model)}, {runtime} departs most from {reference}: the same top-1 class on "
            f"{agree:.1f} % of {test.n} photos, {verdict}.")


def runtime_findings(study: Study) -> list[str]:
    """The Conclusions' sentences on the models that ran on several runtimes."""
    out = []
    for model, keys in study.rows.groups.items():
        text = finding(model, *versus_reference(study, keys))
        if text:
            out.append(f"**Across runtimes**: {text}")
    return out


def section_runtimes(study: Study) -> list[str]:
    groups = study.rows.groups
    if not groups:
        return []  # every model ran on one runtime: the speed table names it
    sizes = study.batch_sizes()
    bs = sizes[-1] if sizes else None
    lines = [
        "## Runtimes", "",
        "The same model on several runtimes. Top-1 agreement: the share of the photos on which a runtime gives "
        "the reference's top-1 class (the reference is torch, the model as trained in fp32, where it ran there). "
        f"McNemar's exact test compares top-1 accuracy with the reference on the same photos (significant at "
        f"{SIGNIFICANCE}); \"only ref right\" and \"only this right\" are its discordant photos. Speed and "
        "memory: bench, each runtime in its own fresh process. The other tables compare architectures on one "
        "runtime each, the one most models share (in full precision between equals): "
        + ", ".join(f"{display(split_key(m)[0])} on {split_key(m)[1]}" for m in study.models
                    if split_key(m)[0] in groups) + ".", "",
    ]
    for model, keys in groups.items():
        ref, results = versus_reference(study, keys)
        rows, flagged = _rows(study, keys, ref, results, bs)
        lines += [f"### {display(model)} across runtimes", ""]
        lines += markdown_table(
            ["runtime", "what runs it", "precision", "n", "top-1 % [95 % CI]",
             f"top-1 agreement with {split_key(ref)[1]}", "only ref right", "only this right", "McNemar p",
             "latency median (ms)", f"img/s bs {bs}" if bs else "img/s", "RSS growth run (MiB)"],
            rows, right_from=3, left=(8,))
        if flagged:
            lines += [f"{MARK} Depends on the CPU: " + "; ".join(f"{r} ({why})" for r, why in flagged.items())
                      + ". See Method.", ""]
        text = finding(model, ref, results)
        lines += [text, ""] if text else []
    return lines
