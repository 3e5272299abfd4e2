"""The comparative study as one call: run (or reuse) the evaluate and bench stages through the
library, then write the report and, when asked, its README section.

A stage is skipped when its result files are there, it was last run with the same arguments and on
a machine with the same fingerprint: OUT/study.json records, per stage, the `topfive` command line
the stage is equivalent to (models, runtimes, photo set and settings), and the stage's own result
file (evaluate.json, bench.json) the machine fingerprint (CPU and its ISA features, cores, memory, OS,
Python, the runtime packages' versions, GPU). A stage run with other arguments or on another machine
starts afresh (earlier results set aside as FOLDER.previous) and says why; one whose files are
incomplete (a killed run) resumes in place.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from topfive.files import atomic_write
from topfive.machine import differences, fingerprint, fingerprint_key
from topfive.report.defaults import (
    BENCH_BATCH_SIZES,
    BENCH_REPEATS,
    ROBUSTNESS_FOLDER,
    DEFAULT_DATA,
    DEFAULT_OUT,
    default_card_dir,
    default_mirror,
    default_models,
    study_runs,
)
from topfive.report.progress import StageProgress, expected_seconds
from topfive.report.format import shown_path, shown_text
from topfive.report.readme import update_readme
from topfive.report.render import write_report
from topfive.report.results import read_json
from topfive.report.stage_robustness import ROBUSTNESS_FILES, robustness_argv, robustness_models, robustness_stage

EVAL_FILES = ("summary.csv", "predictions.csv", "evaluate.json")
BENCH_FILES = ("bench.json", "bench.csv")
STAGE_RECORD = "study.json"
SPEEDS = "seconds_per_run"  # study.json's record of each stage's pace here, for the time left next time
# the result file of each stage that records its machine
FINGERPRINT_FILES = ("evaluate.json", "bench.json", ROBUSTNESS_FILES[0])
NO_FINGERPRINT = "no machine fingerprint recorded"


def _say(line: str) -> None:
    print(f"topfive report: {line}", file=sys.stderr, flush=True)


def evaluate_stage(data, models: list[str], out: Path, mirror=None, later: float = 0.0) -> list[str]:
    """`topfive evaluate --data DATA --models MODELS --out OUT [--mirror MIRROR]`, in this process.
    Returns what could not be used (photos, models); the result files say which and why."""
    from topfive.eval.datasets import load_dataset
    from topfive.eval.evaluate import evaluate

    progress = sys.stderr.isatty()
    dataset = load_dataset(data, mirror=mirror, progress=progress)
    result = evaluate(dataset, models, out, progress=progress, calibration=photo_folder(data, mirror),
                      log=StageProgress("evaluate", len(models), later=later))
    problems = []
    failed = result["dataset"]["n_failed"]
    if failed:
        problems.append(f"{failed} of {result['dataset']['n_images']} photos unreadable, "
                        f"see {shown_path(out / 'failures.csv')}")
    problems += [f"{m['name']} on {m['runtime']} not evaluated" for m in result["models"] if m["status"] != "evaluated"]
    return problems


def bench_stage(models: list[str], device: str, out: Path, photos=None, quick: bool = False,
                later: float = 0.0) -> list[str]:
    """`topfive bench --models MODELS --device DEVICE --out OUT [--photos DIR] [--quick]`: each
    model measured in fresh worker processes. Returns the models that could not be measured."""
    from topfive.bench import run_bench, write_results

    sizes = list(BENCH_BATCH_SIZES)
    environment, rows = run_bench(models, device=device, batch_sizes=sizes, photos=photos, quick=quick,
                                  repeats=BENCH_REPEATS, calibration=photos,
                                  progress=StageProgress("bench", len(models), later=later))
    write_results(out, environment, rows, sizes)
    return [f"{r['model']} not measured" for r in rows if r.get("error")]


@dataclass
class Stage:
    name: str
    folder: Path
    files: tuple[str, ...]
    argv: list[str]  # the equivalent `topfive` command line: recorded, and compared to decide on reuse
    runs: int  # models (x runtimes) it runs: for the time left
    run: Callable[[float], list[str]]  # runs the stage, told the seconds expected after it; returns what failed

    def complete(self) -> bool:
        return all((self.folder / f).is_file() for f in self.files)

    def machine_changes(self, current: dict) -> list[str]:
        """How the machine that wrote the results differs from `current` ([] when it is the same).
        The threads compared are the recorded ones: they are a setting of the stage (in its argv
        where chosen), not a property of the machine."""
        record = next(f for f in self.files if f in FINGERPRINT_FILES)
        try:
            recorded = read_json(self.folder / record).get("fingerprint")
        except ValueError:  # a damaged file: nothing in it can be trusted, measure again
            return [f"{record} unreadable"]
        if not recorded:
            return [NO_FINGERPRINT]
        return differences(recorded, dict(current, threads=recorded.get("threads")))


def photo_folder(data, mirror) -> Path | None:
    """Real photos for bench's decode/preprocess timing: the mirror, or the photo-set folder."""
    from topfive.decode.images import IMAGE_SUFFIXES

    for folder in (mirror, data if data and Path(data).is_dir() else None):
        if folder and Path(folder).is_dir():
            if any(p.suffix.lower() in IMAGE_SUFFIXES for p in Path(folder).rglob("*")):
                return Path(folder)
    return None


def stages(data, models: list[str], device: str, out: Path, mirror=None, quick: bool = False) -> list[Stage]:
    """The stages of a study (evaluate, bench, and robustness where a model has its weights here):
    the only place that knows how they are invoked."""
    eval_dir, bench_dir, robust_dir = out / "eval", out / "bench", out / ROBUSTNESS_FOLDER
    photos = photo_folder(data, mirror)
    names = ",".join(models)
    # int8 is calibrated on the photo folder, in both stages alike (so they share one quantised file)
    calibration = ["--calibration", str(photos)] if photos and any(m.endswith("@int8") for m in models) else []
    found = [
        Stage("evaluate", eval_dir, EVAL_FILES,
              ["evaluate", "--data", str(data), "--models", names, "--out", str(eval_dir)]
              + (["--mirror", str(mirror)] if mirror else []) + calibration, len(models),
              lambda later: evaluate_stage(data, models, eval_dir, mirror=mirror, later=later)),
        Stage("bench", bench_dir, BENCH_FILES,
              ["bench", "--models", names, "--device", device, "--out", str(bench_dir),
               "--repeats", str(BENCH_REPEATS)]
              + (["--photos", str(photos)] if photos else []) + (["--quick"] if quick else []) + calibration,
              len(models), lambda later: bench_stage(models, device, bench_dir, photos=photos, quick=quick, later=later)),
    ]
    robust = robustness_models(models)
    if robust:
        found.append(Stage("robustness", robust_dir, ROBUSTNESS_FILES, robustness_argv(data, robust, robust_dir, mirror),
                           len(robust), lambda later: robustness_stage(data, robust, robust_dir, mirror=mirror,
                                                                      later=later)))
    return found


def _set_aside(folder: Path) -> None:
    """Moves earlier results to FOLDER.previous (replacing an older copy), so nothing is mixed in."""
    previous = folder.with_name(folder.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    folder.rename(previous)
    _say(f"earlier results moved to {shown_path(previous)}")


def argv_changes(old: list[str], new: list[str]) -> list[str]:
    """How two stage command lines differ, option by option ("--models: a -> a,b")."""
    def options(argv: list[str]) -> dict[str, str]:
        out, key = {"command": argv[0] if argv else ""}, None
        for word in argv[1:]:
            if word.startswith("--"):
                key = word
                out[key] = ""  # a flag, unless a value follows
            elif key is not None:
                out[key] = word
        return out

    a, b = options(old), options(new)
    return [f"{k}: {a.get(k, '-') or 'set'} -> {b.get(k, '-') or 'set'}"
            for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]


def rerun_reason(stage: Stage, recorded_argv: list[str] | None, current: dict, reuse: bool) -> str:
    """Why the stage's stored results cannot be reused ("" when they can)."""
    if not reuse:
        return "--no-reuse"
    if recorded_argv is not None and recorded_argv != stage.argv:
        return "other arguments: " + "; ".join(argv_changes(recorded_argv, stage.argv))
    if not stage.complete():
        return ""  # nothing finished to reuse: the stage resumes in place
    return "; ".join(stage.machine_changes(current))


def run_stages(data, models: list[str], device: str, out: Path, mirror=None, reuse: bool = True,
               quick: bool = False) -> tuple[Path, Path]:
    """Runs or reuses each stage; returns (evaluate's folder, bench's folder). A stage that is not
    part of this study (robustness, when no model has its weights here) has its old folder set aside."""
    record_path = out / STAGE_RECORD
    recorded = read_json(record_path)
    speeds = recorded.get(SPEEDS, {})  # seconds per run, as this machine last ran each stage
    current = fingerprint()  # once: it asks nvidia-smi
    plan = stages(data, models, device, out, mirror=mirror, quick=quick)
    reasons = [rerun_reason(stage, recorded.get(stage.name), current, reuse) for stage in plan]
    todo = {stage.name: 0 if not reason and stage.complete() else stage.runs for stage, reason in zip(plan, reasons)}
    if speeds.get("fingerprint") != fingerprint_key(current):
        speeds = {}
    for k, (stage, reason) in enumerate(zip(plan, reasons)):
        if not todo[stage.name]:
            _say(f"reusing {stage.name} results in {shown_path(stage.folder)}")
            continue
        if reason and stage.folder.exists():
            _say(f"re-running {stage.name}: {shown_text(reason)}")
            _set_aside(stage.folder)  # a fresh run; otherwise (e.g. after a kill) the stage resumes in place
        _say("running " + " ".join(["topfive", *stage.argv]))
        later = expected_seconds({s.name: todo[s.name] for s in plan[k + 1:]}, speeds)
        started = time.monotonic()
        problems = stage.run(later)
        if not stage.complete():
            raise RuntimeError(f"{stage.name} wrote no results in {shown_path(stage.folder)}")
        if problems:
            _say(f"{stage.name}: some inputs failed ({'; '.join(problems)}); its results are used")
        recorded[stage.name] = stage.argv
        speeds = {**speeds, "fingerprint": fingerprint_key(current),
                  stage.name: (time.monotonic() - started) / max(1, stage.runs)}
        atomic_write(record_path, json.dumps({**recorded, SPEEDS: speeds}, indent=1))
    robust_dir = out / ROBUSTNESS_FOLDER
    if "robustness" not in todo and robust_dir.exists():
        _set_aside(robust_dir)  # another study's results must not appear in this report
    return out / "eval", out / "bench"


def _command(data, device: str, quick: bool, mirror, cards, runtimes=None) -> str:
    """The `topfive report` command line the report says it was made with."""
    parts = ["topfive report"] + ([f"--runtime {','.join(runtimes)}"] if runtimes else [])
    if str(data) != DEFAULT_DATA:
        parts.append(f"--data {shown_path(data)}")
    if mirror:
        parts.append(f"--mirror {shown_path(mirror)}")
    if cards:
        parts.append(f"--cards {shown_path(cards)}")
    if device != "cpu":
        parts.append(f"--device {device}")
    if quick:
        parts.append("--quick")
    return " ".join(parts)


def run_study(data=None, models=None, device: str = "cpu", out: Path | str = DEFAULT_OUT, reuse: bool = True,
              mirror=None, readme: Path | str | None = None, quick: bool = False, cards=None,
              runtimes: list[str] | None = None) -> Path:
    """Evaluate + bench (or reuse their files), then write the report (and the README section).

    mirror: a local copy of the photo set (default: $TOPFIVE_EVAL_DIR when set). models: default
    the study set, plus the model cards of `cards` (default: $TOPFIVE_MODELS_DIR when set).
    runtimes: every model on each of them it can run; default auto, and in the default study
    EfficientNet-Lite0 across runtimes as well (defaults.study_runs).
    quick: bench's few-repetition mode, to check the machinery; the report says so."""
    out = Path(out)
    data = data or DEFAULT_DATA
    if not str(data).startswith("builtin:") and not Path(data).exists():
        raise ValueError(f"{data}: no such photo set (give --data: a folder per label, a CSV or a manifest)")
    given = bool(models)
    if models:
        models, cards = list(models), None
    else:
        cards = cards if cards is not None else default_card_dir()
        models = default_models(cards)
    mirror = mirror if mirror is not None else default_mirror()
    models = study_runs(models, runtimes, comparison=not (given or runtimes),
                        calibration=photo_folder(data, mirror) is not None)
    eval_dir, bench_dir = run_stages(data, models, device, out, mirror=mirror, reuse=reuse, quick=quick)
    notes = ["**Quick bench run** (`--quick`): few repetitions, so the speed figures only check the machinery; "
             "do not quote them."] if quick else []
    path = write_report(eval_dir, bench_dir, out, image_roots=[mirror] if mirror else [],
                        command=_command(data, device, quick, mirror, cards, runtimes), notes=notes)
    if readme:
        update_readme(readme, path)
    return path
