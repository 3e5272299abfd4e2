"""The "torch" runtime: a torch.nn.Module run eagerly, fp32, channels_last by default.

channels_last ran 1.1x (ResNet-50) to 1.4x (EfficientNet-Lite0) faster than NCHW on CPU with the
same top-1 on all 569 photos of the eval set (docs/performance.md). `channels_last=False` gives
plain NCHW; `amp` (a torch dtype) runs the forward under autocast, as `topfive bench --amp` does.

Safe to share between threads: an eval-mode module in inference mode keeps no state between calls,
and autocast is a per-thread setting.
"""

from __future__ import annotations

import contextlib

import torch

from topfive.runtime.base import Runtime, checked


def set_torch_threads(threads: int | None) -> None:
    """torch's intra-op threads, only when asked: by default torch keeps its own (all cores)."""
    if threads:
        torch.set_num_threads(int(threads))


def precision_of(amp: torch.dtype | None) -> str:
    return {None: "fp32", torch.float16: "fp16 autocast", torch.bfloat16: "bf16 autocast"}.get(
        amp, f"{str(amp).replace('torch.', '')} autocast"
    )


class TorchRuntime(Runtime):
    """Eager PyTorch. `.module` is the nn.Module (on `.torch_device`, in inference mode)."""

    name = "torch"
    precision = "fp32"  # with `amp`, the autocast dtype instead (set in __init__)

    def __init__(
        self,
        module: torch.nn.Module,
        device: str = "cpu",
        threads: int | None = None,
        channels_last: bool = True,
        amp: torch.dtype | None = None,
    ):
        set_torch_threads(threads)
        self.torch_device = torch.device(device)
        self.device = str(self.torch_device)
        self.channels_last = channels_last
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.module = module.eval().to(self.torch_device, memory_format=self.memory_format)
        self.amp = amp
        self.precision = precision_of(amp)

    def input(self, batch: torch.Tensor) -> torch.Tensor:
        """The batch on the model's device, in its memory format."""
        return batch.to(self.torch_device, non_blocking=True).contiguous(memory_format=self.memory_format)

    def autocast(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.torch_device.type, dtype=self.amp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    @torch.inference_mode()
    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            logits = self.forward(self.input(batch))
        return checked(logits.float().softmax(dim=-1).cpu(), self.model)


def build(request) -> TorchRuntime:
    return TorchRuntime(request.torch_module(), device=request.device, threads=request.threads, **request.options)
