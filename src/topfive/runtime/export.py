"""Zoo models exported to ONNX (fp32) once, cached in `topfive.files.cache_dir("onnx")`.

A file's name carries everything that decides its content: model name, input size, a weights tag,
the opset, the torch version and the export format, so a stale or foreign file is never picked up
by mistake. The weights tag is "published" for a model's published weights, a content hash of the
weights file for `--weights-file`, and a content hash of the state dict for a module passed in
without a tag. Files are written through `atomic_path`: an interrupted export leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from pathlib import Path

import torch

from topfive.files import atomic_path, cache_dir, sha256_file

# Bump when the export itself changes (graph preparation, exporter options), so old files are not reused.
EXPORT_FORMAT = 2
DEFAULT_OPSET = 17


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)


def file_tag(path: str | os.PathLike) -> str:
    """A short content hash of a weights file, so a different file gets a different export."""
    return "sha" + sha256_file(path)[:12]


def module_tag(module: torch.nn.Module) -> str:
    """A short content hash of a module's state dict (names, dtypes, shapes and values), so two
    modules passed in without a tag share an export only when their weights are the same."""
    h = hashlib.sha256(type(module).__name__.encode())
    for key, value in sorted(module.state_dict().items()):
        value = value.detach().cpu().contiguous()
        h.update(f"{key}:{value.dtype}:{tuple(value.shape)}\n".encode())
        h.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
    return "state" + h.hexdigest()[:12]


def weights_tag(weights_file: str | os.PathLike | None) -> str:
    """What an entry's module built with its weights holds, for its export's cache name."""
    return file_tag(weights_file) if weights_file else "published"


def onnx_path(name: str, size: int, weights_tag: str = "published", opset: int = DEFAULT_OPSET) -> Path:
    torch_version = torch.__version__.split("+")[0]
    return cache_dir("onnx") / (
        f"{slug(name)}-{size}px-{slug(weights_tag)}-opset{opset}-torch{torch_version}-f{EXPORT_FORMAT}.onnx"
    )


def prepare_for_export(model: torch.nn.Module) -> torch.nn.Module:
    """Make a model traceable: swap efficientnet_lite_pytorch's MemoryEfficientSwish (a custom
    autograd Function that the exporter and torch.compile cannot see through) for plain Swish.

    Only the modules that are MemoryEfficientSwish are swapped. The package's own
    `set_swish(memory_efficient=False)` must not be used: it sets *every* activation to Swish,
    and EfficientNet-Lite's activations are ReLU6, so it silently turns Lite into another model.
    """
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if type(child).__name__ == "MemoryEfficientSwish":
                from efficientnet_lite_pytorch.utils import Swish

                setattr(parent, child_name, Swish())
    return model.eval()


def export_onnx(
    model: torch.nn.Module, name: str, size: int, weights_tag: str, opset: int = DEFAULT_OPSET
) -> Path:
    """The ONNX file for `model` (N x 3 x size x size float input "input", dynamic N; output
    "logits"), exported on first use and reused after."""
    path = onnx_path(name, size, weights_tag, opset)
    if path.is_file():
        return path
    model = prepare_for_export(model).cpu()
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # The TorchScript-based exporter needs no extra package (the dynamo one needs onnxscript)
        # and handles every zoo CNN; torch marks it deprecated.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.zeros(1, 3, size, size),),
            str(tmp),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
        )
    return path
