"""Decode any image file to an RGB Pillow image, with typed errors that name the file and the reason."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# Pillow's own bomb guard: > MAX_IMAGE_PIXELS warns, > 2x raises. We raise at the limit itself.
MAX_IMAGE_PIXELS = 89_478_485  # Pillow's default, ~ 9459 x 9459
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif"}

ImageSource = Union[str, os.PathLike, bytes, Image.Image]


class ImageError(Exception):
    """An input that could not be turned into an image. `source` names it, `reason` says why."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class ImageNotFound(ImageError):
    pass


class NotAnImage(ImageError):
    pass


class CorruptImage(ImageError):
    pass


class ImageTooLarge(ImageError):
    pass


def describe(source: ImageSource) -> str:
    if isinstance(source, Image.Image):
        return f"<PIL image {source.width}x{source.height}>"
    if isinstance(source, bytes):
        return f"<{len(source)} bytes>"
    return str(source)


def _open(source: ImageSource, name: str) -> Image.Image:
    if isinstance(source, bytes):
        return Image.open(io.BytesIO(source))
    path = Path(source)
    check_file(path, name)
    return Image.open(path)


def check_file(path: Path, name: str) -> None:
    """Raise the typed error for a path that cannot hold an image (missing, a directory, empty)."""
    if not path.exists():
        raise ImageNotFound(name, "no such file")
    if path.is_dir():
        raise NotAnImage(name, "is a directory")
    if path.stat().st_size == 0:
        raise NotAnImage(name, "empty file (0 bytes)")


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # Pillow's convert() clips 16/32-bit values at 255; scale the real range down instead.
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, mode="L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Transparent pixels carry arbitrary colour; show them over white as a viewer would.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_image(source: ImageSource, draft_size: int | None = None) -> Image.Image:
    """Return `source` (path, bytes or PIL image) as an upright RGB image.

    EXIF orientation is applied; palette, grey, alpha, CMYK and 16-bit images become 8-bit RGB;
    animated images give their first frame. `draft_size` lets a JPEG decode at a reduced DCT
    scale while both sides stay >= draft_size (much faster for large photos; pixels change
    slightly, so it is off unless asked for).
    """
    name = describe(source)
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open(source, name)
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise ImageTooLarge(
                    name, f"{img.width}x{img.height} pixels exceeds the limit of {MAX_IMAGE_PIXELS:,}"
                )
            if draft_size and img.format == "JPEG" and min(img.size) > 2 * draft_size:
                img.draft("RGB", (draft_size, draft_size))
            img.seek(0)
            img.load()
            # In place: the image is ours, and the default copies every upright photo (~0.6 ms each).
            ImageOps.exif_transpose(img, in_place=True)
            return _to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(name, str(e)) from e
    except UnidentifiedImageError as e:
        raise NotAnImage(name, "not a recognised image format") from e
    except FileNotFoundError as e:
        raise ImageNotFound(name, "no such file") from e
    except PermissionError as e:
        raise ImageNotFound(name, "permission denied") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CorruptImage(name, f"truncated or corrupt ({e})") from e


def find_images(paths: list[str | os.PathLike], recursive: bool = False) -> list[str]:
    """Expand directories into the image files inside (sorted); files are kept as given.

    A named file is kept whatever its suffix, so that a bad file gets its own error later.
    """
    found: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found.extend(
                str(f)
                for f in sorted(path.glob(pattern))
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
            )
        else:
            found.append(str(path))
    return found


# Truncated files must be an error, never silently half-grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
