"""`RuntimeRequest`: what make_runtime was asked for, handed to a runtime's builder.

It also builds the shared inputs once -- the zoo model's module (and the tag that names its
weights in the export cache), its ONNX export, a card's files -- so auto's tuning candidates and its
torch fallback reuse what was already built.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from topfive.runtime.export import export_onnx, module_tag, weights_tag


@dataclass
class RuntimeRequest:
    entry: Any  # a topfive.models ModelEntry: a zoo model (has_module) or a model card (CardEntry)
    kind: str  # a vocabulary word; "auto" until registry.auto resolves it
    device: str = "cpu"
    threads: int | None = None
    calibration: str | os.PathLike | Sequence | None = None
    weights_file: str | os.PathLike | None = None
    module: torch.nn.Module | None = None
    tag: str | None = None
    options: dict = field(default_factory=dict)  # the runtime's own keywords (torch: channels_last, amp)
    built_here: bool = False  # the module was built from the entry's weights, not passed in

    @property
    def model_name(self) -> str:
        return self.entry.info.name

    @property
    def is_card(self) -> bool:
        return not self.entry.has_module

    @property
    def card(self):
        return self.entry.card

    def torch_module(self) -> torch.nn.Module:
        """The zoo model's module: the one passed in, else built with its weights (once)."""
        if self.module is None:
            self.module = self.entry.build(pretrained=True, weights_file=self.weights_file)
            self.built_here = True
        return self.module

    def weights_tag(self) -> str:
        """What names the module's weights in the export cache: the tag given, else "published" or
        the weights file's hash for a module built here, else the state dict's hash."""
        module = self.torch_module()
        if self.tag is None:  # hashed only here: the torch runtimes export nothing and need no tag
            self.tag = weights_tag(self.weights_file) if self.built_here else module_tag(module)
        return self.tag

    def onnx_export(self) -> Path:
        """The zoo model exported to ONNX (cached)."""
        return export_onnx(self.torch_module(), self.model_name, self.entry.info.preprocess.size, self.weights_tag())

    def graph_options(self) -> dict:
        """The keywords of a graph runtime: the card's output (a zoo export gives logits, offset 0),
        device, threads and the runtime's own options."""
        if not self.is_card:
            kind, offset = "logits", 0
        else:
            kind, offset = self.card.output_kind, self.card.label_offset
        return dict(output_kind=kind, label_offset=offset, device=self.device, threads=self.threads, **self.options)
