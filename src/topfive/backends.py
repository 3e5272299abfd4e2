"""Backends turn a preprocessed batch into class probabilities (N x 1000, ImageNet-1k order).

Every model, whatever runs it, is used through `probabilities(batch)`, so prediction, evaluation
and benchmarks treat a torchvision model, an ONNX file and a TFLite file alike.
"""

from __future__ import annotations

import torch


class Backend:
    name = "base"

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class TorchBackend(Backend):
    """Eager PyTorch: the reference path (fp32, no tricks)."""

    name = "eager"

    def __init__(self, model: torch.nn.Module, device: str = "cpu"):
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    @torch.inference_mode()
    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        logits = self.model(batch.to(self.device, non_blocking=True))
        return logits.float().softmax(dim=-1).cpu()
