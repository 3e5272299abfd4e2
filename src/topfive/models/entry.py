"""What every model entry is: its metadata (`ModelInfo`) and the `ModelEntry` interface.

An entry describes a model and where its files are; it does not run it. Runtimes are built from
entries by `topfive.runtime`, which reads `has_module`, `build()` and, for model cards, the card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from topfive.transforms import PreprocessSpec

if TYPE_CHECKING:
    import torch


class UnknownModel(ValueError):
    """A name that no entry answers to; the message suggests close names where there are some."""


class NotATorchModel(ValueError):
    """`build()` on an entry that has no PyTorch module (a model card: ONNX, TFLite, OpenVINO IR)."""


@dataclass(frozen=True)
class ModelInfo:
    """What a model is, as plain data for listings, reports and result files.

    Figures are the published ones (torchvision's weights metadata, timm's results for
    EfficientNet-Lite) or counted from the graph for model cards; None where nobody states them,
    never estimated.
    """

    name: str  # canonical name, e.g. "resnet50:IMAGENET1K_V2"
    family: str  # "torchvision", "efficientnet_lite" or a card format ("onnx", "tflite", "openvino")
    architecture: str
    params: int | None
    gmacs: float | None  # multiply-accumulates per image (torchvision's "GFLOPS" are MACs)
    acc1: float | None  # published ImageNet-1k top-1 / top-5, percent
    acc5: float | None
    weights_file: str | None
    weights_mb: float | None
    weights_url: str | None
    preprocess: PreprocessSpec
    published_source: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return self.preprocess.size


class ModelEntry:
    """A resolvable model: its `info`, whether its weights are here, and (for PyTorch models) how to
    build its module."""

    info: ModelInfo
    has_module: bool = False  # True where build() gives a torch.nn.Module

    def weights_status(self) -> str:
        """'cached', 'packaged', 'local' or 'download' (not here; needs a download)."""
        raise NotImplementedError

    def build(self, pretrained: bool = True, weights_file: str | None = None) -> torch.nn.Module:
        """The model as a torch module in inference form, with its published weights (`pretrained`),
        the weights in `weights_file`, or random weights (`pretrained=False`)."""
        raise NotATorchModel(f"{self.info.name} has no PyTorch module")
