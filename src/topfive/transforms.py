"""One preprocessing implementation for every model, parameterised by a `PreprocessSpec`.

torchvision weights describe theirs through `weights.transforms()` (resize the shorter side, centre
crop, scale to [0, 1], normalise); model cards add the TF-slim rule (crop a central fraction, then
resize to a square), BGR order and raw uint8 input. `spec_from_torchvision` reads a preset into a
spec, so torchvision models go through the same code, tested equal to the preset itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F  # the functions torchvision's presets call

INTERPOLATIONS = {
    "nearest": InterpolationMode.NEAREST,
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
}


@dataclass(frozen=True)
class PreprocessSpec:
    size: int  # the square the model sees
    rule: str = "shorter_side"  # or "central_fraction"
    resize: int | None = None  # shorter_side: resize the shorter side to this, then crop `size`
    fraction: float | None = None  # central_fraction: keep this fraction of width and height
    interpolation: str = "bilinear"
    scale: float = 1 / 255  # value = (pixel * scale - mean) / std, pixel in 0..255
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channels: str = "RGB"  # or "BGR"
    dtype: str = "float32"  # or "uint8": raw 0..255 pixels
    layout: str = "NCHW"  # or "NHWC"; applied when a batch is stacked

    def __post_init__(self):
        if self.rule not in ("shorter_side", "central_fraction"):
            raise ValueError(f"unknown crop rule {self.rule!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"unknown interpolation {self.interpolation!r}")
        if self.channels not in ("RGB", "BGR") or self.dtype not in ("float32", "uint8"):
            raise ValueError(f"unsupported pixels {self.channels}/{self.dtype}")
        if self.layout not in ("NCHW", "NHWC"):
            raise ValueError(f"unknown layout {self.layout!r}")

    @property
    def crop_pct(self) -> float:
        if self.rule == "central_fraction":
            return float(self.fraction)
        return self.size / self.resize

    def describe(self) -> str:
        if self.rule == "shorter_side":
            geometry = f"resize {self.resize} ({self.interpolation}), centre crop {self.size}"
        else:
            geometry = f"central {self.fraction:.1%} crop, resize {self.size}x{self.size} ({self.interpolation})"
        if self.dtype == "uint8":
            return f"{geometry}, {self.channels} uint8 0..255"
        return f"{geometry}, {self.channels} (p*{self.scale:.4g}-mean)/std, mean={self.mean}, std={self.std}"


def spec_from_torchvision(preset) -> PreprocessSpec:
    """Read torchvision's `ImageClassification` preset (what `weights.transforms()` returns)."""
    resize = preset.resize_size[0]
    crop = preset.crop_size[0]
    return PreprocessSpec(
        size=crop,
        resize=resize,
        interpolation=preset.interpolation.value,
        mean=tuple(preset.mean),
        std=tuple(preset.std),
    )


def _geometry(img: Image.Image, spec: PreprocessSpec) -> Image.Image:
    mode = INTERPOLATIONS[spec.interpolation]
    if spec.rule == "shorter_side":
        img = F.resize(img, [spec.resize], interpolation=mode, antialias=True)
        return F.center_crop(img, [spec.size])
    img = img.crop(central_box(img.size, spec.fraction))
    return F.resize(img, [spec.size, spec.size], interpolation=mode, antialias=True)


def central_box(size: tuple[int, int], fraction: float) -> tuple[int, int, int, int]:
    """tf.image.central_crop's box (left, top, right, bottom): the margin on each side is
    int((n - n * fraction) / 2), so the kept size is n - 2 * margin (TF-slim's eval crop)."""
    w, h = size
    left, top = int((w - w * fraction) / 2), int((h - h * fraction) / 2)
    return left, top, w - left, h - top


def preprocess(img: Image.Image, spec: PreprocessSpec) -> torch.Tensor:
    """An RGB PIL image -> a CHW tensor (float32 or uint8) as the model wants it."""
    return pixels(F.pil_to_tensor(_geometry(img, spec)), spec)


def pixels(x: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """uint8 RGB pixels (..., 3, H, W), geometry done -> channel order, dtype and values the model wants."""
    if spec.channels == "BGR":
        x = x.flip(-3)
    if spec.dtype == "uint8":
        return x
    if abs(spec.scale - 1 / 255) < 1e-12:
        x = F.convert_image_dtype(x, torch.float32)  # bit-identical to torchvision's presets
    else:
        x = x.to(torch.float32) * spec.scale
    return F.normalize(x, list(spec.mean), list(spec.std))  # in the output channel order


def stack(tensors: list[torch.Tensor], spec: PreprocessSpec) -> torch.Tensor:
    return to_layout(torch.stack(tensors), spec)


def to_layout(batch: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """An NCHW batch in the spec's layout."""
    if spec.layout == "NHWC":
        batch = batch.permute(0, 2, 3, 1).contiguous()
    return batch
