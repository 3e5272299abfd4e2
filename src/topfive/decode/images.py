"""Decode any image file to an RGB Pillow image, with typed errors that name the file and the reason."""

from __future__ import annotations

import errno
import io
import os
import re
import stat
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from topfive.decode.jpeg import decoded_cut_short

# Pillow's own bomb guard: > MAX_IMAGE_PIXELS warns, > 2x raises. We raise at the limit itself.
MAX_IMAGE_PIXELS = 89_478_485  # Pillow's default, ~ 9459 x 9459; the README says "89.5 megapixels"
PIXEL_LIMIT = f"{MAX_IMAGE_PIXELS / 1e6:.1f} megapixels"  # the limit as messages and the README state it
MAX_ASPECT_RATIO = 100
"""The longest an image may be, as a multiple of its other side; longer ones are ImageTooLarge.

Resizing the shorter side to the model's input makes the longer side this many times that input: a
1 x 60000 strip would ask for a 256 x 15,360,000 image (~15 GB) to keep a 224-pixel square of it.
The Pillow decoder resamples long images on the crop's window only (decode/pillow.py), but not with
"nearest" interpolation, which at 100:1 makes at most ~100 squares; and there the centre crop sees 1 %
of the image, which is no photo any more. Real panoramas stay well below (5:1 to 10:1)."""
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".jfif"}
# The formats the README promises, as Pillow names them (MPO, a JPEG with more frames, is opened as
# JPEG). Pillow is asked to try no other plugin: the rest (EPS through Ghostscript, ICO, PCX, ...) is
# parsing code no photo needs, run on whatever a file's bytes say it is.
FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
JPEG_FORMATS = ("JPEG", "MPO")

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


class ImageUnreadable(ImageError):
    """A path that may well exist but cannot be inspected or read: permission denied, or another
    system error that is not "no such file" (that one is ImageNotFound)."""

    @classmethod
    def from_os_error(cls, source: str, error: OSError) -> ImageUnreadable:
        reason = "permission denied" if isinstance(error, PermissionError) else (error.strerror or str(error))
        return cls(source, reason.lower())


def describe(source: ImageSource) -> str:
    if isinstance(source, Image.Image):
        return f"<PIL image {source.width}x{source.height}>"
    if isinstance(source, bytes):
        return f"<{len(source)} bytes>"
    return str(source)


def _open(source: ImageSource, name: str) -> Image.Image:
    if isinstance(source, bytes):
        return Image.open(io.BytesIO(source), formats=FORMATS)
    check_file(source, name)
    return Image.open(Path(source), formats=FORMATS)


def check_file(path: str | os.PathLike, name: str) -> None:
    """Raise the typed error for a path that cannot hold an image: empty, missing, a directory, not a
    regular file, an empty file. From its status alone: a FIFO is never opened (reading one blocks until
    someone writes) nor a device (/dev/zero never ends)."""
    if os.fspath(path) == "":  # Path("") is ".", which would be reported as a directory
        raise ImageNotFound(name, "empty path")
    try:
        status = os.stat(path)
    except OSError as e:
        if isinstance(e, (FileNotFoundError, NotADirectoryError)) or e.errno == errno.ELOOP:
            raise ImageNotFound(name, "no such file") from e
        raise ImageUnreadable.from_os_error(name, e) from e
    if stat.S_ISDIR(status.st_mode):
        raise NotAnImage(name, "is a directory")
    if not stat.S_ISREG(status.st_mode):
        raise NotAnImage(name, "not a regular file")
    if status.st_size == 0:
        raise NotAnImage(name, "empty file (0 bytes)")


def check_size(name: str, width: int, height: int) -> None:
    """ImageTooLarge beyond MAX_IMAGE_PIXELS or MAX_ASPECT_RATIO, CorruptImage without pixels: from the
    header, before any pixel is decoded."""
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(name, f"{width}x{height} pixels exceeds the limit of {PIXEL_LIMIT}")
    if min(width, height) < 1:
        raise CorruptImage(name, f"{width}x{height}: the image has no pixels")
    if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
        raise ImageTooLarge(name, f"{width}x{height} exceeds the limit of {MAX_ASPECT_RATIO}:1 on the aspect ratio")


def bomb_reason(error: Exception) -> str:
    """Pillow's decompression-bomb message restated with the limit the README states: Pillow's own names
    its limit in pixels, and past twice the limit that of its error, twice ours."""
    found = re.search(r"\((\d+) pixels\)", str(error))
    size = f"{int(found.group(1)):,} pixels" if found else "the image"
    return f"{size} exceeds the limit of {PIXEL_LIMIT}"


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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(source, Image.Image):  # the same limits; a lazily loaded one may be truncated
                check_size(name, source.width, source.height)
                return _to_rgb(ImageOps.exif_transpose(source))
            img = _open(source, name)
            check_size(name, img.width, img.height)
            if draft_size and img.format == "JPEG" and min(img.size) > 2 * draft_size:
                img.draft("RGB", (draft_size, draft_size))
            img.seek(0)
            img.load()
            if img.format in JPEG_FORMATS and (reason := decoded_cut_short(source, img)):
                raise CorruptImage(name, reason)
            # In place: the image is ours, and the default copies every upright photo (~0.6 ms each).
            ImageOps.exif_transpose(img, in_place=True)
            return _to_rgb(img)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLarge(name, bomb_reason(e)) from e
    except UnidentifiedImageError as e:
        raise NotAnImage(name, "not a recognised image format (supported: JPEG, PNG, WebP, BMP, TIFF, GIF)") from e
    except FileNotFoundError as e:
        raise ImageNotFound(name, "no such file") from e
    except PermissionError as e:
        raise ImageUnreadable.from_os_error(name, e) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise CorruptImage(name, f"truncated or corrupt ({e})") from e


def find_images(
    paths: list[str | os.PathLike], recursive: bool = False, problems: dict[str, str] | None = None
) -> list[str]:
    """Expand directories into the image files inside (sorted); files are kept as given.

    A named file is kept whatever its suffix, so that a bad file gets its own error later. So is what
    cannot be inspected (a named path that cannot be stat'ed, a folder or, with `recursive`, a
    sub-folder that cannot be listed, an image in it that cannot be stat'ed): one unreadable path never
    stops the others, and none vanishes in silence. When `problems` is a dict, each of those paths is
    put there with its reason ("permission denied", ...), for the caller to report as ImageUnreadable.
    """
    # What pathlib's is_file/is_dir take for "not there" (a dangling link, a link loop): skipped, as ever.
    gone = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)
    found: list[str] = []

    def keep(path: Path, error: OSError | None) -> None:
        found.append(str(path))
        if error is not None and problems is not None:
            problems[str(path)] = ImageUnreadable.from_os_error(str(path), error).reason

    for p in paths:
        path = Path(p)
        try:
            folder = path.is_dir()  # False for a missing path; raises for e.g. a parent without search permission
        except OSError as e:
            keep(path, e)
            continue
        if not folder:
            keep(path, None)
            continue
        inside: list[tuple[Path, OSError | None]] = []
        pending = [path]
        while pending:  # a stack, not recursion: a deep tree cannot exhaust Python's stack
            current = pending.pop()
            try:
                with os.scandir(current) as entries:
                    listed = list(entries)
            except OSError as e:
                if e.errno not in gone:
                    inside.append((current, e))
                continue
            for entry in listed:
                child = current / entry.name
                image = child.suffix.lower() in IMAGE_SUFFIXES
                try:
                    # Linked folders are not entered (as glob's ** does not), so a link loop cannot hang.
                    if entry.is_dir(follow_symlinks=False):
                        if recursive:
                            pending.append(child)
                    elif image and entry.is_file():
                        inside.append((child, None))
                except OSError as e:
                    if image and e.errno not in gone:
                        inside.append((child, e))
        for child, error in sorted(inside, key=lambda t: t[0]):
            keep(child, error)
    return found


# Truncated files must be an error, never silently half-grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False
