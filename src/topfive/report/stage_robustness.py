"""The study's robustness stage: the models with real weights here scored on corrupted copies of a
fixed subset of the photos (topfive.eval.robustness), into OUT/robustness; report.study runs or
reuses it like its other stages.

Each model once, on auto (a model the study runs on several runtimes is one architecture here), the
first as the baseline of the corruption errors. Models whose weights would need a download are left
out before anything loads: a study offline would otherwise wait on each download to fail."""

from __future__ import annotations

import sys
from pathlib import Path

from topfive.report.defaults import ROBUSTNESS_CORRUPTIONS, ROBUSTNESS_PHOTOS
from topfive.report.progress import StageProgress

ROBUSTNESS_FILES = ("robustness.json", "robustness_summary.csv", "robustness.csv")  # the first records the machine


def robustness_models(models: list[str]) -> list[str]:
    """The study's models without their runtime pins, once each, where their weights are here."""
    from topfive.models import resolve
    from topfive.runtime.axis import split_pin

    chosen = []
    for name in dict.fromkeys(split_pin(m)[0] for m in models):
        try:
            if resolve(name).weights_status() != "download":
                chosen.append(name)
        except Exception:  # an unknown name or a broken card: evaluate's rows say why
            continue
    return chosen


def robustness_argv(data, models: list[str], folder: Path, mirror=None) -> list[str]:
    """The `topfive evaluate --corruptions ...` command line the stage is equivalent to (it writes
    these files, beside a clean evaluation of the set, which the study's evaluate stage makes)."""
    return (["evaluate", "--data", str(data), "--models", ",".join(models), "--out", str(folder),
             "--corruptions", ROBUSTNESS_CORRUPTIONS, "--corruption-photos", str(ROBUSTNESS_PHOTOS)]
            + (["--mirror", str(mirror)] if mirror else []))


def robustness_stage(data, models: list[str], folder: Path, mirror=None, later: float = 0.0) -> list[str]:
    """The stage itself; returns what could not be used (the result files say which and why)."""
    from topfive.eval.corruptions import parse_corruptions
    from topfive.eval.datasets import load_dataset
    from topfive.eval.robustness import robustness

    dataset = load_dataset(data, mirror=mirror, progress=sys.stderr.isatty())
    report = robustness(dataset, models, folder, parse_corruptions(ROBUSTNESS_CORRUPTIONS), photos=ROBUSTNESS_PHOTOS,
                        log=StageProgress("robustness", len(models), later=later))
    problems = [f"{m['name']} not run on corrupted photos" for m in report["models"] if m["status"] != "evaluated"]
    return problems + [f"{f['file']}: {f['reason']}" for f in report["failures"]]
