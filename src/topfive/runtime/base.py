"""What every runtime is (`Runtime`, `GraphRuntime`), and the helpers the runtimes share.

A runtime turns a preprocessed batch into N x 1000 probabilities in ImageNet-1k order, so
prediction, evaluation and benchmarks treat a torchvision model, an ONNX file and a TFLite file
alike. Runtimes other than PyTorch are optional extras: a missing one is a `RuntimeMissing` error
that says what to install.

What a runtime hands back is checked, never passed on on trust: exactly 1000 columns
(`OutputSizeError` otherwise, so a wrong class count cannot shift every label), every row finite
(`NonFiniteOutput`, so broken weights cannot print NaN as an answer). Every runtime may be shared
between threads: those whose engine holds per-call state (LiteRT's interpreter, OpenVINO's infer
request) serialise or separate it themselves.
"""

from __future__ import annotations

import importlib
import os

import numpy as np
import torch

CLASSES = 1000  # ImageNet-1k: what every runtime returns, whatever the model's own output


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


class OutputSizeError(ValueError):
    """A model whose output is not the 1000 ImageNet-1k classes (after any background class).

    `model`: its name; `got`: the scores per image it gave; `expected`: the scores it should give."""

    def __init__(self, model: str, got: int, expected: int = CLASSES):
        super().__init__(
            f"{model} outputs {got} scores per image where {expected} were expected: topfive reads the "
            f"{CLASSES} ImageNet-1k classes, and any other count would put every label on the wrong class"
        )
        self.model, self.got, self.expected = model, got, expected


class NonFiniteOutput(RuntimeError):
    """Rows of a batch whose probabilities are NaN or infinite (broken weights, an overflow).

    Raised for the whole batch, since the runtime answers per batch, but it says which images:
    `rows` (positions in the batch, ascending), `batch_size`, `model` (its name), `reason` (one
    line for each such image's failure) and `probabilities` (the N x 1000 tensor: the rows not in
    `rows` are good answers)."""

    reason = "the model's output for this image is not finite (NaN or infinity): broken weights or an overflow"

    def __init__(self, model: str, rows: list[int], probabilities: torch.Tensor):
        self.model, self.rows, self.probabilities = model, tuple(rows), probabilities
        self.batch_size = len(probabilities)
        super().__init__(
            f"{model}: the output for {len(self.rows)} of the batch's {self.batch_size} images "
            f"(rows {list(self.rows)}) is not finite (NaN or infinity): broken weights or an overflow"
        )


def checked(probs: torch.Tensor, model: str = "the model") -> torch.Tensor:
    """`probs` (N x 1000), once it is known to have 1000 columns and finite rows; else the error."""
    if probs.ndim != 2 or probs.shape[1] != CLASSES:
        raise OutputSizeError(model, int(probs[0].numel()) if len(probs) else 0)
    finite = torch.isfinite(probs).all(dim=-1)
    if not bool(finite.all()):
        raise NonFiniteOutput(model, (~finite).nonzero().flatten().tolist(), probs)
    return probs


def to_probabilities(
    scores: np.ndarray, kind: str = "logits", label_offset: int = 0, model: str = "the model"
) -> torch.Tensor:
    """Model outputs -> N x 1000 probabilities in ImageNet-1k order, checked (`checked`).

    `label_offset` drops leading background classes (TF-slim models output 1001 scores, background
    first). Probabilities are renormalised after the drop so each row sums to 1.
    """
    scores = torch.from_numpy(np.asarray(scores, dtype=np.float32).reshape(len(scores), -1))
    if scores.shape[1] != label_offset + CLASSES:
        raise OutputSizeError(model, scores.shape[1], label_offset + CLASSES)
    if kind == "logits":
        return checked(scores[:, label_offset:].softmax(dim=-1), model)
    if kind != "probabilities":
        raise ValueError(f"unknown output kind {kind!r}")
    probs = scores[:, label_offset:].clamp_min(0)  # clamp keeps NaN, so checked() still sees it
    return checked(probs / probs.sum(dim=-1, keepdim=True).clamp_min(1e-12), model)


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
    model = "the model"  # its name, for errors; make_runtime sets it

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        """N x 1000 float32 probabilities on the CPU, ImageNet-1k order."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self.precision} on {self.device}>"


class GraphRuntime(Runtime):
    """A model graph in a runtime other than PyTorch (ONNX Runtime, OpenVINO, LiteRT).

    Subclasses set what the graph takes and gives -- `input_name`, `input_shape` (-1 for a dynamic
    dimension), `input_dtype` (numpy name), `output_names`, `output_shape` -- so a model card can
    be checked against any of them alike (graph_check.py); `output_kind` and `label_offset` from
    the card (a zoo export gives logits, offset 0); for integer outputs `quantization` = (scale,
    zero point); and implement `raw` on numpy batches.
    """

    output_kind = "logits"
    label_offset = 0
    quantization: tuple[float, float] | None = None
    input_name: str = ""
    input_shape: list[int]
    input_dtype: str = "float32"
    output_names: list[str]
    output_shape: list[int] | tuple[int, ...] = ()  # the first output's, -1 for a dynamic dimension
    path = None  # the model file it runs

    @property
    def output_size(self) -> int | None:
        """Scores per image, where the graph's static output shape says; None where it does not."""
        dims = self.output_shape[1:]
        if not dims or any(d < 0 for d in dims):
            return None
        return int(np.prod(dims))

    def size_error(self, got: int) -> Exception:
        """The error for an output of `got` scores per image (a card's check puts one naming its field)."""
        return OutputSizeError(self.model, got, self.label_offset + CLASSES)

    def raw(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """Real-valued outputs: raw ones, dequantized where the model outputs integers."""
        raw = self.raw(batch)
        return dequantize(raw, *self.quantization) if self.quantization else raw

    def probabilities(self, batch: torch.Tensor) -> torch.Tensor:
        scores = self.scores(np.ascontiguousarray(batch.cpu().numpy()))
        scores = scores.reshape(len(scores), -1)
        # checked on every run, not only at load: graphs with a dynamic output shape show it only here
        if scores.shape[1] != self.label_offset + CLASSES:
            raise self.size_error(scores.shape[1])
        return to_probabilities(scores, self.output_kind, self.label_offset, self.model)
