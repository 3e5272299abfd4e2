"""What the bench times: a model (zoo name, card path or python: hook) on a runtime.

On `torch` (and `compile`) a zoo model, or a `python:` hook's torch module, runs around the module
built here, so its params, GMACs and weight bytes are known. On the other runtimes it goes through
`make_runtime(entry, runtime, module=...)` like any use of the model, with the same module (so a
model whose weights are not here is timed on its architecture there too); model cards run on the
runtime asked for, "auto" being their format's. "auto" for a zoo model is what `topfive classify`
runs; for a hook's module, and with --amp or --channels-last (options of the torch runtime), torch.
Whether an entry is a torch model is what it says (`has_module`), never guessed from what its build
raises: a bug in a build is the row's error.
"""

from __future__ import annotations

from dataclasses import dataclass

from topfive.bench.memory import release_free_memory

AMP = {"bf16": "bfloat16", "fp16": "float16"}
MODULE_RUNTIMES = ("torch", "compile")  # they run the module itself: params and GMACs are counted on it


@dataclass
class Loaded:
    """What was loaded: the runtime that is timed, and the torch module inside it where there is
    one (then params, GMACs and weight bytes are known)."""

    name: str
    spec: object  # topfive.transforms.PreprocessSpec
    weights: str  # "real" | "architecture only" | "user code"
    runtime: object  # anything with probabilities(batch)
    module: object = None  # torch.nn.Module or None
    entry: object = None  # the ModelEntry, None for a python: hook's own module or runtime
    note: str = ""


def python_hook(name: str):
    """`python:package.module:function` -> what the function returns: an nn.Module, a ModelEntry or
    a ready runtime (anything with `probabilities(batch)`). For tests and for measuring one's own
    model; the module must be importable (PYTHONPATH is passed on to the worker)."""
    import importlib

    _, module_name, function = name.split(":", 2)
    return getattr(importlib.import_module(module_name), function)()


def user_module_entry(name: str, module, spec):
    """A ModelEntry around a python: hook's own torch module, so it runs on the same runtime as a
    zoo model."""
    from topfive.models import ModelEntry, ModelInfo

    class UserModule(ModelEntry):
        has_module = True

        def __init__(self):
            self.info = ModelInfo(
                name=name, family="user code", architecture=type(module).__name__, params=None, gmacs=None,
                acc1=None, acc5=None, weights_file=None, weights_mb=None, weights_url=None, preprocess=spec,
            )

        def weights_status(self):
            return "local"

        def build(self, pretrained=True, weights_file=None):
            return module

    return UserModule()


def build_module(entry):
    """(module, weights label, note): the published weights where they are here, else the
    architecture with random weights. Asking first avoids building the model twice (a torchvision
    build makes the architecture before it looks for the weights)."""
    from topfive.models.weights import WeightsUnavailable

    try:
        status = entry.weights_status()
    except NotImplementedError:
        status = None
    if status == "download":
        weights, note = "architecture only", f"weights for {entry.info.name} are not here (they need a download)"
    else:
        try:
            return entry.build(pretrained=True), "real", ""
        except WeightsUnavailable as e:
            weights, note = "architecture only", str(e)
    release_free_memory()  # outside the except block: its traceback no longer pins a first build
    return entry.build(pretrained=False), weights, note


def load(name: str, device: str = "cpu", threads: int | None = None, channels_last: bool = False,
         amp: str | None = None, runtime: str = "auto", calibration=None) -> Loaded:
    """The model `name` (a zoo name, a card path or a python: hook) on `runtime` (calibration: the
    photos int8 is calibrated on)."""
    import torch

    from topfive.models import ModelEntry, resolve
    from topfive.runtime import make_runtime
    from topfive.transforms import PreprocessSpec

    target = python_hook(name) if name.startswith("python:") else resolve(name)
    if not isinstance(target, ModelEntry):
        spec = getattr(target, "preprocess_spec", None) or PreprocessSpec(size=224, resize=256)
        if not isinstance(target, torch.nn.Module):
            return Loaded(name, spec, "user code", runtime=target)
        entry, label = user_module_entry(name, target, spec), "user code"
    else:
        entry, label = target, None
    spec = entry.info.preprocess
    if not entry.has_module:
        timed = make_runtime(entry, runtime, device=device, threads=threads)
        return Loaded(entry.info.name, spec, "real", timed, entry=entry)
    if runtime == "auto" and (label or amp or channels_last):
        runtime = "torch"
    if runtime not in MODULE_RUNTIMES + ("auto",) and (amp or channels_last):
        raise ValueError(f"--amp and --channels-last are options of the torch runtime, not of {runtime}")
    module, weights, note = build_module(entry)
    amp_dtype = getattr(torch, AMP[amp]) if amp else None
    if runtime in MODULE_RUNTIMES:
        options = {"amp": amp_dtype} if amp else {}
        if runtime == "torch":
            options["channels_last"] = channels_last
        timed = make_runtime(entry, runtime, device=device, threads=threads, module=module, **options)
        return Loaded(entry.info.name, spec, label or weights, timed, module=timed.module,
                      entry=None if label else entry, note=note)
    # the tag names the weights in the export cache: random ones must never pass for the published
    tag = None if label else "published" if weights == "real" else "random"
    timed = make_runtime(entry, runtime, device=device, threads=threads, calibration=calibration, module=module,
                         tag=tag)
    module = getattr(timed, "module", None)  # auto may have fallen back to torch around it
    return Loaded(entry.info.name, spec, label or weights, timed, module=module, entry=None if label else entry,
                  note=note)


def build_untimed(name: str, device: str, threads: int | None, runtime: str, calibration=None,
            torch_options: bool = False) -> str:
    """Builds a zoo model on a graph runtime once, untimed, and returns the runtime to time: what
    auto resolved to, else `runtime`. Run before the baseline, so that the one-off work of a first
    use (the ONNX export, int8 calibration, auto's measurement of the runtimes) and the runtime
    package's imports fall in no figure, in every repeat alike. Cards, hooks and the module
    runtimes do no such work: nothing is built for them."""
    if runtime in MODULE_RUNTIMES or name.startswith("python:") or (runtime == "auto" and torch_options):
        return runtime
    from topfive.models import resolve

    if not resolve(name).has_module:
        return runtime
    loaded = load(name, device, threads, runtime=runtime, calibration=calibration)
    kind = getattr(loaded.runtime, "name", runtime)
    del loaded
    release_free_memory()
    return kind
