"""`CardEntry`: a model described by a card, as a model entry (metadata, files, weights status).

Card models are graphs with their own runtimes (ONNX Runtime, OpenVINO, LiteRT); they have no
PyTorch module. `topfive.runtime` runs them from `card`, `model_path()` and `weights_path()`.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from topfive.models.cards.fetch import ModelFileError, fetch_file, find_file
from topfive.models.cards.schema import Card
from topfive.models.entry import ModelEntry, ModelInfo, NotATorchModel
from topfive.models.graphstats import graph_stats


class CardEntry(ModelEntry):
    """A model described by a card: ONNX, TFLite or OpenVINO IR."""

    has_module = False

    def __init__(self, card: Card):
        self.card = card

    @cached_property
    def info(self) -> ModelInfo:
        card = self.card
        params = gmacs = None
        counted = "unknown (model file not here)"
        if self.weights_status() == "local":
            params, gmacs, counted = graph_stats(card.format, find_file(card.model, card), card.model.sha256)
        size = sum(ref.size_bytes or 0 for ref in card.files)
        return ModelInfo(
            name=card.name,
            family=card.format,
            architecture=card.architecture,
            params=params,
            gmacs=gmacs,
            acc1=None,
            acc5=None,
            weights_file=card.model.file,
            weights_mb=size / 2**20 if size else None,
            weights_url=card.model.url,
            preprocess=card.preprocess,
            published_source=f"model card {card.path}",
            extra={
                "card": str(card.path),
                "licence": card.licence,
                "source": card.source,
                "params_method": counted,
                "output": f"{card.output_kind}, {card.num_classes} classes, label offset {card.label_offset}",
            },
        )

    def weights_status(self) -> str:
        try:
            return "local" if all(find_file(ref, self.card) for ref in self.card.files) else "download"
        except ModelFileError:
            return "download"

    def build(self, pretrained=True, weights_file=None):
        raise NotATorchModel(
            f"{self.card.name} is a {self.card.format} model; it has no PyTorch module (topfive.runtime runs it)"
        )

    def model_path(self) -> Path:
        """The verified model file (the .onnx, .tflite or IR .xml), downloaded if need be."""
        return fetch_file(self.card.model, self.card)

    def weights_path(self) -> Path | None:
        """The verified weights file of an OpenVINO IR (its .bin); None for formats without one."""
        return fetch_file(self.card.weights, self.card) if self.card.weights else None
