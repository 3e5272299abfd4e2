"""make_runtime: the one constructor of runtimes, for zoo models and model cards alike.

Each runtime is a module with a `build(request)` function and one line in REGISTRY below, which
also says what it runs: zoo (PyTorch) models, and which card formats. Modules are imported when
first used, so naming the vocabulary (the CLI's choices) loads no runtime package.
"""

from __future__ import annotations

import importlib
import logging
import os
import warnings
from dataclasses import dataclass

DEFAULT_RUNTIME = "auto"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Registered:
    module: str  # the module whose build(request) makes this runtime
    zoo: bool  # runs zoo models (torchvision, EfficientNet-Lite)
    cards: tuple[str, ...] = ()  # the model-card formats it runs


REGISTRY = {
    "torch": Registered("topfive.runtime.torch_eager", zoo=True),
    "compile": Registered("topfive.runtime.compiled", zoo=True),
    "onnxruntime": Registered("topfive.runtime.onnxruntime", zoo=True, cards=("onnx",)),
    "int8": Registered("topfive.runtime.quantize", zoo=True),
    "openvino": Registered("topfive.runtime.openvino", zoo=True, cards=("openvino", "tflite")),
    "openvino-bf16": Registered("topfive.runtime.openvino", zoo=True),  # its build() reads request.kind
    "litert": Registered("topfive.runtime.litert", zoo=False, cards=("tflite",)),
}

RUNTIMES = (*REGISTRY, "auto")
DEPRECATED = {"eager": "torch", "onnx": "onnxruntime", "tflite": "litert"}
TFLITE_RUNTIMES = ("litert", "openvino")
CARD_KINDS = {"onnx": "an ONNX", "openvino": "an OpenVINO IR", "tflite": "a TFLite"}

_warned: set[str] = set()


def canonical_runtime(name: str) -> str:
    """The vocabulary word for `name`. A deprecated spelling is mapped, with a DeprecationWarning
    the first time it is used; an unknown name is a ValueError listing the vocabulary."""
    if name in RUNTIMES:
        return name
    if name in DEPRECATED:
        new = DEPRECATED[name]
        if name not in _warned:
            _warned.add(name)
            warnings.warn(f"runtime {name!r} is deprecated; use {new!r}", DeprecationWarning, stacklevel=2)
        return new
    raise ValueError(f"unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}")


def card_runtime(fmt: str) -> str:
    """What "auto" runs a card of format `fmt` on: ONNX -> onnxruntime; IR -> openvino; TFLite ->
    litert, or openvino with $TOPFIVE_TFLITE_RUNTIME=openvino.

    LiteRT for TFLite because it is the runtime these files are deployed with: its integer kernels
    are the reference (OpenVINO's quantized outputs differ by up to 26/256 on single classes; top-1
    and top-5 on the eval photos agree within a point either way), it reports each tensor's own
    scale and zero point, and it loads in under 0.1 s where OpenVINO compiles for 1-5 s.
    """
    if fmt == "onnx":
        return "onnxruntime"
    if fmt == "openvino":
        return "openvino"
    choice = os.environ.get("TOPFIVE_TFLITE_RUNTIME") or "litert"
    if choice not in TFLITE_RUNTIMES:
        raise ValueError(f"TOPFIVE_TFLITE_RUNTIME={choice!r}: use one of {', '.join(TFLITE_RUNTIMES)}")
    return choice


def runtimes_for(entry) -> list[str]:
    """The runtimes that can run `entry` (besides auto)."""
    if entry.has_module:
        return [name for name, r in REGISTRY.items() if r.zoo]
    return [name for name, r in REGISTRY.items() if entry.card.format in r.cards]


def build(kind: str, request):
    return importlib.import_module(REGISTRY[kind].module).build(request)


def make_runtime(
    entry,
    kind: str = DEFAULT_RUNTIME,
    device: str = "cpu",
    threads: int | None = None,
    calibration=None,
    weights_file=None,
    module=None,
    tag: str | None = None,
    **options,
):
    """The runtime `kind` (a word of RUNTIMES, or a deprecated spelling) for a model entry.

    `threads`: intra-op threads, applied by every runtime (default: the runtime's own, all cores).
    `calibration`: photos (a folder or a list of files), for int8 only. `weights_file`: a state dict
    for a zoo model. `module`: an already-built torch.nn.Module to run instead of the entry's
    (benchmarks measure random-weight architectures); `tag` names its weights in the ONNX export
    cache, else a hash of its state dict does. `options`: keywords of the runtime `kind` itself
    (torch: channels_last=True, amp=None or a torch dtype; onnxruntime, int8: spin), so only with
    an explicit kind.
    """
    from topfive.runtime.request import RuntimeRequest

    kind = canonical_runtime(kind)
    name = entry.info.name
    if not entry.has_module and (weights_file or module is not None):
        raise ValueError(f"{name}: a model card names its own files; a weights file or module does not apply")
    request = RuntimeRequest(entry, kind, str(device), threads, calibration, weights_file, module, tag, options)
    if kind == "auto":
        if options:
            raise ValueError(f"runtime options ({', '.join(options)}) need an explicit runtime, not auto")
        return auto(request)
    usable = runtimes_for(entry)
    if kind not in usable:
        what = "a PyTorch model" if entry.has_module else f"{CARD_KINDS[entry.card.format]} model card"
        raise ValueError(f"{name} is {what}; runtime {kind!r} cannot run it. Use one of: {', '.join(usable)}, auto")
    return finish(request, build(kind, request))


def auto(request):
    """Cards: their format's runtime (not tuned: topfive.runtime.tune says why). Zoo models on the
    CPU: the runtime $TOPFIVE_AUTO_RUNTIME pins, else the fastest fp32 runtime measured on this
    machine (tune.tuned: cached, measured at first use); on other devices torch. If the chosen
    runtime fails on an unusual model (an export that does not go through), it warns and runs torch."""
    if request.is_card:
        request.kind = card_runtime(request.entry.card.format)
        return finish(request, build(request.kind, request))
    request.torch_module()  # weights errors surface here, not as a failed candidate
    choice = "torch"
    if request.device.startswith("cpu"):
        from topfive.runtime.tune import pinned

        choice = pinned()
        if choice is None:
            tuning = tuned_request(request)
            announce(tuning)
            if tuning.runtime is not None:  # built while measuring, and warmed up
                return tuning.runtime
            choice = tuning.choice
    if choice != "torch":
        try:
            request.kind = choice
            return finish(request, build(choice, request))
        except Exception as e:  # noqa: BLE001  (the reference path still works)
            what = "ONNX export/run" if choice == "onnxruntime" else f"ONNX export/{choice}"
            warnings.warn(f"{request.model_name}: {what} failed ({type(e).__name__}: {e}); running eager torch")
    request.kind = "torch"
    return finish(request, build("torch", request))


def tuned_request(request, seconds: float | None = None, force: bool = False):
    """topfive.runtime.tune.tuned for a request's zoo model, each candidate built from the request."""
    from topfive.runtime import tune

    request.torch_module()

    def make(kind: str):
        request.kind = kind
        return finish(request, build(kind, request))

    shape = (3, request.entry.info.preprocess.size, request.entry.info.preprocess.size)
    tuning = tune.tuned(request.model_name, make, shape, request.threads, seconds or tune.DEFAULT_SECONDS, force)
    request.kind = tuning.choice
    return tuning


def auto_choice(entry, threads: int | None = None, seconds: float | None = None, force: bool = False):
    """What `auto` runs a zoo model on here: a `topfive.runtime.tune.Tuning` (the cached one, or
    measured for `seconds` per candidate; `force` measures again). `topfive tune` prints it."""
    from topfive.runtime.request import RuntimeRequest

    if not entry.has_module:
        raise ValueError(f"{entry.info.name} is a model card: auto runs it on {card_runtime(entry.card.format)}")
    return tuned_request(RuntimeRequest(entry, "auto", "cpu", threads), seconds, force)


def announce(tuning) -> None:
    """Say once which runtime auto picked and why: at INFO when just measured (the CLI shows it on
    stderr; a library user sees nothing unless logging is configured), at DEBUG when read from the cache."""
    if tuning.cached:
        log.debug("auto runs %s on %s (cached in %s: %s)", tuning.model, tuning.choice, tuning.path, tuning.why)
    else:
        where = f"; cached in {tuning.path}" if tuning.path else ""
        log.info("auto runs %s on %s, measured on this machine: %s%s (topfive tune %s --force measures again)",
                 tuning.model, tuning.choice, tuning.why, where, tuning.model)


def finish(request, runtime):
    """The runtime, named after its model (its errors name it); a card's checked against the card
    (input name, dtype, layout, size; output name and size)."""
    runtime.model = request.model_name
    if request.is_card:
        from topfive.runtime.graph_check import check_graph

        check_graph(request.entry.card, runtime)
    return runtime
