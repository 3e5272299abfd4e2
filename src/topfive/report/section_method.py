"""The Method section: how each figure of the report was measured."""

from __future__ import annotations

from topfive.report.defaults import SIGNIFICANCE
from topfive.report.numerics import method_note
from topfive.report.results import Study


def repeats_text(study: Study) -> str:
    counts = sorted({len(r.get("runs") or []) for r in study.bench.values()} - {0})
    if counts == [1]:
        return ("Each model was measured in one fresh process (the study's setting, to keep it fast; "
                "`topfive bench --repeats N` measures N processes and reports their spread).")
    return ("Each model was measured in " + "/".join(map(str, counts)) + " fresh processes; the figures are "
            "medians over them, and their spread is reported and marked when wide.")


def section_method(study: Study) -> list[str]:
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
        "preprocess timed apart on the real photos, and end-to-end images/s from the files. Each timing runs "
        "until the distribution-free 95 % confidence interval of its median (from the order statistics of the "
        "timed runs) is within 3 % of it, or for at most 2 s; the speed table gives that interval. "
        + repeats_text(study),
        "- **Memory**: weight bytes; peak resident set size (RSS) growth over the process baseline while "
        "loading and while running, each model in its own fresh process; on GPU "
        "`torch.cuda.max_memory_allocated` after `reset_peak_memory_stats`. Summing torch.profiler's "
        "allocations is **not** memory: the profiler adds up every allocation of every operator, including "
        "buffers freed and reused a moment later, so the sum grows with the number of passes and layers "
        "(for ResNet-50, 50 passes add up to GiB) while the real peak growth is tens of MiB.",
        f"- **Size and compute**: parameters counted from the model; GMACs (multiply-accumulates per image) by "
        f"{', '.join(counters) or 'the counter named in the table'} (torchvision's \"GFLOPS\" are MACs).",
        "- **Published figures**: ImageNet-1k Acc@1/Acc@5 as published for the same weights (torchvision's "
        "weights metadata; timm's results for EfficientNet-Lite), not re-measured here.",
        method_note(study),
        "",
    ]
