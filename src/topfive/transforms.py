"""One preprocessing implementation for every model, parameterised by a `PreprocessSpec`.

torchvision weights describe theirs through `weights.transforms()` (resize the shorter side, centre
crop, scale to [0, 1], normalise); model cards add the TF-slim rule (crop a central fraction, then
resize to a square), BGR order and raw uint8 input. `spec_from_torchvision` reads a preset into a
spec, so torchvision models go through the same code, tested equal to the preset itself.

The crop/resize geometry is planned once, here (`plan_axes`, `plan`: per axis the source span, the
resized length and the crop offset); `preprocess` applies it with Pillow, and the batched tensor
decoder (decode/resample.py) applies the same plan to a whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as F  # the functions torchvision's presets call

# interpolation name -> the Pillow filter torchvision's resize hands Pillow for that mode
INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
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


# --- geometry: computed once here, used by the Pillow path below and by decode/resample.py -------


@dataclass(frozen=True)
class AxisPlan:
    """How one axis of one image maps to the model's `size` pixels: the span [start, start +
    length) of the source is resized to `resized` pixels, of which `offset` .. `offset + size`
    are kept (a centre crop; a negative offset pads with zeros, as torchvision's center_crop)."""

    start: int
    length: int
    resized: int
    offset: int


def plan_axes(widths, heights, spec: PreprocessSpec) -> tuple[np.ndarray, np.ndarray]:
    """(x, y), each a (4, N) int64 array of AxisPlan fields (start, length, resized, offset), for
    upright images of these sizes: torchvision's resize of the shorter side then center_crop, or
    TF-slim's central crop then resize. Vectorised, because the batched decoder plans a whole
    batch at once and a Python loop per image would cost milliseconds per batch."""
    w, h = np.asarray(widths, dtype=np.int64), np.asarray(heights, dtype=np.int64)
    size, zeros = spec.size, np.zeros_like(w)
    if spec.rule == "central_fraction":  # tf.image.central_crop: margin int((n - n * fraction) / 2)
        left = ((w - w * spec.fraction) / 2).astype(np.int64)
        top = ((h - h * spec.fraction) / 2).astype(np.int64)
        full = np.full_like(w, size)
        return np.stack([left, w - 2 * left, full, zeros]), np.stack([top, h - 2 * top, full, zeros])
    short, long = np.minimum(w, h), np.maximum(w, h)
    new_long = (spec.resize * long / short).astype(np.int64)  # torchvision's int(resize * long / short)
    new_w = np.where(w <= h, spec.resize, new_long)
    new_h = np.where(w <= h, new_long, spec.resize)

    def crop_offset(n: np.ndarray) -> np.ndarray:  # torchvision's center_crop; np.round rounds half to even, as round()
        return np.where(size > n, -((size - n) // 2), np.round((n - size) / 2.0).astype(np.int64))

    return np.stack([zeros, w, new_w, crop_offset(new_w)]), np.stack([zeros, h, new_h, crop_offset(new_h)])


def plan(width: int, height: int, spec: PreprocessSpec) -> tuple[AxisPlan, AxisPlan]:
    """plan_axes for one image, as (x, y) AxisPlans."""
    x, y = plan_axes([width], [height], spec)
    return AxisPlan(*map(int, x[:, 0])), AxisPlan(*map(int, y[:, 0]))


def central_box(size: tuple[int, int], fraction: float) -> tuple[int, int, int, int]:
    """tf.image.central_crop's box (left, top, right, bottom): the margin on each side is
    int((n - n * fraction) / 2), so the kept size is n - 2 * margin (TF-slim's eval crop)."""
    x, y = plan(*size, PreprocessSpec(size=1, rule="central_fraction", fraction=fraction))
    return x.start, y.start, x.start + x.length, y.start + y.length


def geometry(img: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """The plan applied with Pillow: crop the source span, resize it, crop the kept square.

    The span is cropped before resizing rather than passed as resize(box=...): Pillow's box
    resize lets the filters read pixels outside the box, TF-slim's crop does not. Each step is
    skipped when it changes nothing, as torchvision skips a resize to the same size; a final crop
    reaching outside the resized image pads zeros, as torchvision's center_crop does."""
    x, y = plan(img.width, img.height, spec)
    if (x.start, y.start, x.length, y.length) != (0, 0, img.width, img.height):
        img = img.crop((x.start, y.start, x.start + x.length, y.start + y.length))
    if (x.resized, y.resized) != img.size:
        img = img.resize((x.resized, y.resized), INTERPOLATIONS[spec.interpolation])
    if (x.offset, y.offset, spec.size, spec.size) != (0, 0, *img.size):
        img = img.crop((x.offset, y.offset, x.offset + spec.size, y.offset + spec.size))
    return img


def preprocess(img: Image.Image, spec: PreprocessSpec) -> torch.Tensor:
    """An RGB PIL image -> a CHW tensor (float32 or uint8) as the model wants it."""
    return pixels(F.pil_to_tensor(geometry(img, spec)), spec)


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
