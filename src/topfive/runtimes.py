"""Runtimes other than eager PyTorch, behind the `Backend` interface of backends.py.

One layer for every non-PyTorch model: ONNX files described by a model card, and torchvision /
EfficientNet-Lite models exported to ONNX by the fast-inference backends, run through the same
`OnnxRuntimeBackend`. Runtimes are optional extras; a missing one is a `RuntimeMissing` error
that says what to install.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from .backends import Backend


class RuntimeMissing(ImportError):
    pass


def require(module: str, extra: str, what: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise RuntimeMissing(
            f"{what} needs the Python package `{module}`, which is not installed: "
            f"pip install 'topfive[{extra}]'"
        ) from e


def to_probabilities(scores: np.ndarray, kind: str = "logits", label_offset: int = 0) -> torch.Tensor:
    """Model outputs -> N x 1000 probabilities in ImageNet-1k order.

    `label_offset` drops leading background classes (TF-slim models output 1001 scores, background
    first). Probabilities are renormalised after the drop so each row sums to 1.
    """
    scores = torch.from_numpy(np.asarray(scores, dtype=np.float32).reshape(len(scores), -1))
    if kind == "logits":
        scores = scores[:, label_offset:]
        return scores.softmax(dim=-1)
    if kind != "probabilities":
        raise ValueError(f"unknown output kind {kind!r}")
    probs = scores[:, label_offset:].clamp_min(0)
    return probs / probs.sum(dim=-1, keepdim=True).clamp_min(1e-12)


class OnnxRuntimeBackend(Backend):
    """An ONNX model in ONNX Runtime (CPU, or CUDA where the provider exists)."""

    name = "onnx"

    def __init__(
        self,
        path: str | os.PathLike,
        output_kind: str = "logits",
        label_offset: int = 0,
        device: str = "cpu",
        threads: int | None = None,
    ):
        ort = require("onnxruntime", "onnx", "ONNX models")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(str(path), options, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.output_kind = output_kind
        self.label_offset = label_offset

    def raw(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        scores = self.raw(np.ascontiguousarray(batch.cpu().numpy()))
        return to_probabilities(scores, self.output_kind, self.label_offset)
