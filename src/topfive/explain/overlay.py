"""A Grad-CAM heat map drawn over the photo at the photo's own size (upright, EXIF applied).

The model saw only its crop of the photo (resize + centre crop, or TF-slim's central fraction):
the heat of its input square is put back where that square lies in the photo, as
`topfive.transforms.plan` computes it, and the rest of the photo, which the model never saw, gets
no heat and is drawn dimmed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from topfive.explain.gradcam import Explanation
from topfive.files import atomic_path
from topfive.transforms import PreprocessSpec, plan

DIMMED = 0.35  # brightness of the part of the photo outside the model's crop
HEAT_WEIGHT = 0.5  # the colour map's share inside the crop (pytorch_grad_cam's default)
FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def crop_box(photo_size: tuple[int, int], spec: PreprocessSpec) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the model's input square in photo pixels. It reaches outside
    the photo where the centre crop pads (a photo smaller than the crop)."""
    box = []
    for axis in plan(*photo_size, spec):
        scale = axis.length / axis.resized  # photo pixels per resized pixel
        box.append((axis.start + axis.offset * scale, axis.start + (axis.offset + spec.size) * scale))
    (left, right), (top, bottom) = box
    return left, top, right, bottom


def heat_on_photo(heat: np.ndarray, photo_size: tuple[int, int], spec: PreprocessSpec,
                  out_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(heat, inside): the (size, size) heat map placed on a photo of `photo_size`, drawn at
    `out_size` (default: the photo's size), and the mask of the pixels inside the model's crop."""
    w, h = out_size or photo_size
    sx, sy = w / photo_size[0], h / photo_size[1]
    left, top, right, bottom = crop_box(photo_size, spec)
    x0, y0 = round(left * sx), round(top * sy)
    bw, bh = max(1, round(right * sx) - x0), max(1, round(bottom * sy) - y0)
    resized = np.asarray(Image.fromarray(np.asarray(heat, dtype=np.float32), mode="F")
                         .resize((bw, bh), Image.Resampling.BILINEAR))
    full, inside = np.zeros((h, w), np.float32), np.zeros((h, w), bool)
    xs, ys = slice(max(x0, 0), min(x0 + bw, w)), slice(max(y0, 0), min(y0 + bh, h))
    full[ys, xs] = resized[ys.start - y0:ys.stop - y0, xs.start - x0:xs.stop - x0]
    inside[ys, xs] = True
    return np.clip(full, 0.0, 1.0), inside


def overlay_image(explanation: Explanation, max_side: int | None = None) -> Image.Image:
    """The photo with the heat map over the model's crop, at the photo's size, or shrunk to fit
    `max_side` (gallery thumbnails)."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    image = explanation.image
    if max_side and max(image.size) > max_side:
        image = image.copy()
        image.thumbnail((max_side, max_side))
    heat, inside = heat_on_photo(explanation.heat, explanation.image.size, explanation.spec, image.size)
    rgb = np.asarray(image, dtype=np.float32) / 255
    coloured = show_cam_on_image(rgb, heat, use_rgb=True, image_weight=1 - HEAT_WEIGHT)
    dimmed = (rgb * (DIMMED * 255)).astype(np.uint8)
    return Image.fromarray(np.where(inside[..., None], coloured, dimmed))


def save_image(image: Image.Image, path: str | Path) -> Path:
    """Writes `image` at `path` in the format its suffix names (.png, .jpg, .webp), in one rename."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image suffix {path.suffix!r}; use one of {', '.join(FORMATS)}")
    with atomic_path(path) as tmp:
        image.save(tmp, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return path
