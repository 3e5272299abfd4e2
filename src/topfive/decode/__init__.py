"""Decoding: image sources -> one preprocessed batch, through one interface.

    decoder = make_decoder("pillow" | "tensor" | "dali", spec, device="cpu", draft=False, pool=None)
    batch, errors = decoder(sources)   # batch: torch.Tensor or None; errors: per source ImageError or None

"pillow" (decode/pillow.py) is the reference: Pillow decodes and preprocesses image by image.
"tensor" (decode/tensor.py) decodes JPEGs with torchvision on the device and resizes the whole
batch at once, with Pillow's pixels. "dali" (decode/dali.py, the `gpu` extra) runs NVIDIA DALI's
decode and resize pipeline (the GPU's JPEG decoder on CUDA), with DALI's resampling. All follow the
one geometry in topfive.transforms.

Submodules are imported on first use, so that `topfive.decode.images` stays light.
"""

from __future__ import annotations

from importlib import import_module

DECODERS = ("pillow", "tensor", "dali")

_EXPORTS = {
    "Decoder": "base",
    "default_workers": "base",
    "PillowDecoder": "pillow",
    "draft_size": "pillow",
    "TensorDecoder": "tensor",
    "DaliDecoder": "dali",
}


def check_decoder(kind: str, draft: bool = False) -> None:
    """ValueError unless `kind` names a decoder that can take these options."""
    if kind not in DECODERS:
        raise ValueError(f"decode must be one of {', '.join(map(repr, DECODERS))}, not {kind!r}")
    if draft and kind != "pillow":
        raise ValueError(f"draft decoding is Pillow's; it does not combine with decode={kind!r}")
    if kind == "dali":  # a missing optional package is said when the Classifier is made, not at its first batch
        from topfive.decode.dali import require_dali

        require_dali()


def make_decoder(kind: str, spec, device="cpu", draft: bool = False, pool=None, workers: int | None = None):
    """A Decoder of `kind` for `spec`. `device`: where the batch is made (the tensor decoder also
    decodes there: nvjpeg on CUDA). `draft`: Pillow's reduced-scale JPEG decoding (pillow only).
    `pool`: an Executor for the per-file work (the Pillow decoder gives it a task per image, the
    tensor decoder `workers` tasks, default default_workers(), as reading a file is quick)."""
    check_decoder(kind, draft)
    if kind == "pillow":
        from topfive.decode.pillow import PillowDecoder

        return PillowDecoder(spec, device=device, draft=draft, pool=pool)
    if kind == "dali":
        from topfive.decode.dali import DaliDecoder

        return DaliDecoder(spec, device=device, pool=pool, workers=workers)
    from topfive.decode.tensor import TensorDecoder

    return TensorDecoder(spec, device=device, pool=pool, workers=workers)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DECODERS", "check_decoder", "make_decoder"] + list(_EXPORTS)
