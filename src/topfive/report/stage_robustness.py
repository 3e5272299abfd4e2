"""The study's robustness stage: the models with real weights here scored on corrupted copies of a
fixed subset of the photos (topfive.eval.robustness), into OUT/robustness.

Each model once, on auto (a model the study runs on several runtimes is one architecture here), the
first as the baseline of the corruption errors. Models whose weights would need a download are left
out before anything loads: a study offline would otherwise wait on each download to fail."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from topfive.files import atomic_write
from topfive.report.defaults import ROBUSTNESS_CORRUPTIONS, ROBUSTNESS_FOLDER, ROBUSTNESS_PHOTOS
from topfive.report.format import shown_path, shown_text
from topfive.report.progress import StageProgress

FILES = ("robustness.json", "robustness_summary.csv", "robustness.csv")  # the first records the machine
RECORD = "stage.json"  # the command line the folder's results were made with


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


def run_robustness(data, models: list[str], folder: Path, mirror=None) -> list[str]:
    """The stage itself; returns what could not be used (the result files say which and why)."""
    from topfive.eval.corruptions import parse_corruptions
    from topfive.eval.datasets import load_dataset
    from topfive.eval.robustness import robustness

    dataset = load_dataset(data, mirror=mirror, progress=sys.stderr.isatty())
    report = robustness(dataset, models, folder, parse_corruptions(ROBUSTNESS_CORRUPTIONS), photos=ROBUSTNESS_PHOTOS,
                        log=StageProgress("robustness", len(models)))
    problems = [f"{m['name']} not run on corrupted photos" for m in report["models"] if m["status"] != "evaluated"]
    return problems + [f"{f['file']}: {f['reason']}" for f in report["failures"]]


def rerun_reason(folder: Path, argv: list[str], reuse: bool) -> str:
    """Why the folder's results cannot be reused ("" when they can, or when an unfinished run is to
    resume in place)."""
    from topfive.machine import differences, fingerprint
    from topfive.report.results import read_json

    if not reuse:
        return "--no-reuse"
    recorded = read_json(folder / RECORD).get("argv") if (folder / RECORD).is_file() else None
    if recorded is not None and recorded != argv:
        return "other arguments: " + " ".join(recorded) + " -> " + " ".join(argv)
    if not all((folder / f).is_file() for f in FILES):
        return ""
    measured = read_json(folder / FILES[0]).get("fingerprint")
    if not measured:
        return "no machine fingerprint recorded"
    return "; ".join(differences(measured, dict(fingerprint(), threads=measured.get("threads"))))


def _set_aside(folder: Path) -> None:
    previous = folder.with_name(folder.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    folder.rename(previous)
    _say(f"earlier robustness results moved to {shown_path(previous)}")


def _say(line: str) -> None:
    print(f"topfive report: {line}", file=sys.stderr, flush=True)


def robustness_stage(data, models: list[str], out: Path, mirror=None, reuse: bool = True) -> Path | None:
    """Runs, resumes or reuses the stage in OUT/robustness, as report.study does its stages: reused
    when it ran with the same command line on a machine with the same fingerprint, else run afresh
    (earlier results set aside as robustness.previous). The command line is the equivalent
    `topfive evaluate --corruptions ...`, which writes these files (beside a clean evaluation of
    the set, which the study's evaluate stage makes). Returns the folder, None without any model."""
    folder = Path(out) / ROBUSTNESS_FOLDER
    chosen = robustness_models(models)
    if not chosen:
        if folder.exists():
            _set_aside(folder)  # results of other models must not appear in this report
        return None
    argv = ["evaluate", "--data", str(data), "--models", ",".join(chosen), "--out", str(folder),
            "--corruptions", ROBUSTNESS_CORRUPTIONS, "--corruption-photos", str(ROBUSTNESS_PHOTOS)]
    argv += ["--mirror", str(mirror)] if mirror else []
    reason = rerun_reason(folder, argv, reuse)
    if not reason and all((folder / f).is_file() for f in FILES):
        _say(f"reusing robustness results in {shown_path(folder)}")
        return folder
    if reason and folder.exists():
        _say(f"re-running robustness: {shown_text(reason)}")
        _set_aside(folder)
    _say("running " + " ".join(["topfive", *argv]))
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(folder / RECORD, json.dumps({"argv": argv}, indent=1))
    problems = run_robustness(data, chosen, folder, mirror=mirror)
    if problems:
        _say(f"robustness: some inputs failed ({'; '.join(problems)}); its results are used")
    return folder
