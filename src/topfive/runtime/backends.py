"""Backends turn a preprocessed batch into class probabilities (N x 1000, ImageNet-1k order).

Every model, whatever runs it, is used through `probabilities(batch)`, so prediction, evaluation
and benchmarks treat a torchvision model, an ONNX file and a TFLite file alike.

A zoo model (torchvision or EfficientNet-Lite) can run on one of several backends, picked by name
with `make_backend` (or `Classifier(..., backend=...)`, `topfive classify --backend`):

- `eager`: PyTorch eager, fp32, channels_last. (The reference path, eager NCHW, is what a
  Classifier without `backend=` runs: `entry.load_backend()`.)
- `compile`: torch.compile (inductor), channels_last; fp16 autocast on CUDA (bf16 measured 98.2 %
  top-1 agreement on Lite0, fp16 100 %: docs/performance.md).
- `onnx`: the model exported to ONNX once (cached, see export.py) and run by ONNX Runtime.
- `int8`: that ONNX model statically quantised to int8 (QDQ, per-channel), calibrated on photos.
- `auto`: `onnx` on CPU where onnxruntime is installed (measured 2-6x faster than eager on a 2-core
  CPU, same top-1; docs/performance.md), else `eager`. If the export fails (an unusual model), it
  warns and runs eager.
"""

from __future__ import annotations

import contextlib
import os

import torch

BACKENDS = ("auto", "eager", "compile", "onnx", "int8")
DEFAULT_BACKEND = "eager"  # the library's default: the reference path; the CLI defaults to "auto"


class Backend:
    name = "base"

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class TorchBackend(Backend):
    """Eager PyTorch: the reference path (fp32, no tricks) unless `channels_last` is asked for."""

    name = "eager"

    def __init__(self, model: torch.nn.Module, device: str = "cpu", channels_last: bool = False):
        self.device = torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.eval().to(self.device, memory_format=self.memory_format)

    def _input(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.to(self.device, non_blocking=True).contiguous(memory_format=self.memory_format)

    @torch.inference_mode()
    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        logits = self.model(self._input(batch))
        return logits.float().softmax(dim=-1).cpu()


class CompiledBackend(TorchBackend):
    """torch.compile with inductor, channels_last. The first batch of each new shape compiles
    (tens of seconds on a small CPU); later batches reuse the compiled code.

    On CUDA the forward runs under autocast at `amp` (not run in this project's CI: no GPU there).
    The default is fp16, not bf16: on an H200, EfficientNet-Lite0 in bf16 kept the fp32 top-1 on
    98.2 % of the photo set (under the 99 % bar), in fp16 on 100 %, and eager ResNet-50 ran 7 %
    faster in fp16 than in bf16 (benchmarks/gpu.py)."""

    name = "compile"

    def __init__(self, model: torch.nn.Module, device: str = "cpu", mode: str | None = None,
                 amp: torch.dtype = torch.float16):
        from topfive.runtime.export import prepare_for_export

        super().__init__(prepare_for_export(model), device=device, channels_last=True)
        self.compiled = torch.compile(self.model, mode=mode, dynamic=False)
        self.amp = amp

    @torch.inference_mode()
    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        autocast = (
            torch.autocast("cuda", dtype=self.amp)
            if self.device.type == "cuda"
            else contextlib.nullcontext()
        )
        with autocast:
            logits = self.compiled(self._input(batch))
        return logits.float().softmax(dim=-1).cpu()


def weights_tag(weights_file: str | os.PathLike | None, pretrained: bool = True) -> str:
    """What the exported file's weights are, for its cache name."""
    from topfive.runtime.export import file_tag

    if weights_file:
        return file_tag(weights_file)
    return "published" if pretrained else "random"


def make_backend(
    entry,
    backend: str = DEFAULT_BACKEND,
    device: str = "cpu",
    weights_file: str | None = None,
    threads: int | None = None,
    calibration=None,
    model: torch.nn.Module | None = None,
    tag: str | None = None,
) -> Backend:
    """A backend of the given kind for a zoo entry (see the module docstring).

    `model` may pass an already-built module (benchmarks use random-weight architectures); then
    `tag` names its weights in the export cache (e.g. "random-seed0"). `calibration` (a folder or a
    list of photos) is needed for `int8` only.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if entry.info.family not in ("torchvision", "efficientnet_lite"):
        if backend == "auto":
            return entry.load_backend(device=device, weights_file=weights_file)
        raise ValueError(f"backend {backend!r} applies to torchvision and EfficientNet-Lite models only")
    if backend == "auto":
        return _auto(entry, device, weights_file, threads, model, tag)
    if backend == "int8" and calibration is None:
        raise ValueError(
            "the int8 backend needs calibration photos (a folder of typical images, "
            "e.g. --calibration ../shared/eval/images)"
        )
    if model is None:
        model = entry.build(pretrained=True, weights_file=weights_file)
        tag = weights_tag(weights_file)
    if backend == "eager":
        # channels_last: 1.1x (ResNet-50) to 1.4x (Lite0) faster on CPU, same top-1 on all 569 photos
        return TorchBackend(model, device=device, channels_last=True)
    if backend == "compile":
        return CompiledBackend(model, device=device)

    from topfive.runtime.export import export_onnx, quantize_int8
    from topfive.runtime.runtimes import OnnxRuntimeBackend, require

    require("onnxruntime", "onnx", f"the {backend} backend")
    spec = entry.info.preprocess
    path = export_onnx(model, entry.info.name, spec.size, tag or "unnamed")
    if backend == "int8":
        path = quantize_int8(path, spec, calibration)
    onnx_backend = OnnxRuntimeBackend(path, output_kind="logits", label_offset=0, device=device, threads=threads)
    onnx_backend.name = backend
    onnx_backend.path = path
    return onnx_backend


def _auto(entry, device, weights_file, threads, model, tag) -> Backend:
    import importlib.util
    import warnings

    if model is None:
        model = entry.build(pretrained=True, weights_file=weights_file)
        tag = weights_tag(weights_file)
    if not device.startswith("cpu") or importlib.util.find_spec("onnxruntime") is None:
        return make_backend(entry, "eager", device, weights_file, threads, model=model, tag=tag)
    try:
        return make_backend(entry, "onnx", device, weights_file, threads, model=model, tag=tag)
    except Exception as e:  # an export or runtime failure: the reference path still works
        warnings.warn(f"{entry.info.name}: ONNX export/run failed ({type(e).__name__}: {e}); running eager PyTorch")
        return TorchBackend(model, device=device, channels_last=True)
