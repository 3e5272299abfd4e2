"""What every runtime is (`Runtime`, `GraphRuntime`), and the helpers the runtimes share.

A runtime turns a preprocessed batch into N x 1000 probabilities in ImageNet-1k order, so
prediction, evaluation and benchmarks treat a torchvision model, an ONNX file and a TFLite file
alike. Runtimes other than PyTorch are optional extras: a missing one is a `RuntimeMissing` error
that says what to install.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import torch


class RuntimeMissing(ImportError):
    """An optional runtime package that is not installed; the message says what to pip install."""


def require(module: str, extra: str, what: str):
    """Import `module`, or raise RuntimeMissing naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RuntimeMissing(
            f"{what} needs the Python package `{module}`, which is not installed: "
            f"pip install 'topfive[{extra}]'"
        ) from e


def cpu_only(device: str, what: str) -> None:
    if not str(device).startswith("cpu"):
        raise ValueError(f"{what} runs on the CPU here; device {device!r} is not supported for it")


def all_cores() -> int:
    """The cores this process may run on (what ONNX Runtime, OpenVINO and torch use by default)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def to_probabilities(scores: np.ndarray, kind: str = "logits", label_offset: int = 0) -> torch.Tensor:
    """Model outputs -> N x 1000 probabilities in ImageNet-1k order.

    `label_offset` drops leading background classes (TF-slim models output 1001 scores, background
    first). Probabilities are renormalised after the drop so each row sums to 1.
    """
    scores = torch.from_numpy(np.asarray(scores, dtype=np.float32).reshape(len(scores), -1))
    if kind == "logits":
        return scores[:, label_offset:].softmax(dim=-1)
    if kind != "probabilities":
        raise ValueError(f"unknown output kind {kind!r}")
    probs = scores[:, label_offset:].clamp_min(0)
    return probs / probs.sum(dim=-1, keepdim=True).clamp_min(1e-12)


def dequantize(values: np.ndarray, scale: float, zero_point: float) -> np.ndarray:
    """A quantized tensor -> real values: (q - zero_point) * scale."""
    return (np.asarray(values, dtype=np.float32) - np.float32(zero_point)) * np.float32(scale)


def run_in_slices(run, batch: np.ndarray, fixed_batch: int | None) -> np.ndarray:
    """Call `run` on the whole batch, or slice by slice where the model takes a fixed batch size."""
    if not fixed_batch or len(batch) == fixed_batch:
        return run(batch)
    if len(batch) % fixed_batch:
        raise ValueError(f"this model takes batches of exactly {fixed_batch}, got {len(batch)}")
    return np.concatenate([run(batch[i : i + fixed_batch]) for i in range(0, len(batch), fixed_batch)])


class Runtime:
    """A loaded model. `name` is a word of the runtime vocabulary (topfive.runtime.RUNTIMES),
    `precision` what the arithmetic runs in ("fp32", "int8", "fp16 autocast", ...), `device` a
    device string ("cpu", "cuda:0")."""

    name = "base"
    precision = "fp32"
    device = "cpu"

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """N x 1000 float32 probabilities on the CPU, ImageNet-1k order."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.precision} on {self.device}>"


class GraphRuntime(Runtime):
    """A model graph in a runtime other than PyTorch (ONNX Runtime, OpenVINO, LiteRT).

    Subclasses set what the graph takes and gives -- `input_name`, `input_shape` (-1 for a dynamic
    dimension), `input_dtype` (numpy name), `output_names` -- so a model card can be checked
    against any of them alike (graph_check.py); `output_kind` and `label_offset` from the card (a
    zoo export gives logits, offset 0); for integer outputs `quantization` = (scale, zero point);
    and implement `raw` on numpy batches.
    """

    output_kind = "logits"
    label_offset = 0
    quantization: tuple[float, float] | None = None
    input_name: str = ""
    input_shape: list[int]
    input_dtype: str = "float32"
    output_names: list[str]
    path = None  # the model file it runs

    def raw(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """Real-valued outputs: raw ones, dequantized where the model outputs integers."""
        raw = self.raw(batch)
        return dequantize(raw, *self.quantization) if self.quantization else raw

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        scores = self.scores(np.ascontiguousarray(batch.cpu().numpy()))
        return to_probabilities(scores, self.output_kind, self.label_offset)
