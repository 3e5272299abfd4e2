"""A JPEG cut short that still ends in an EOI marker: found from its structure, as libjpeg only warns.

libjpeg decodes such a file "successfully": it warns ("Corrupt JPEG data: premature end of data
segment") and leaves every block it had no data for at zero coefficients, a flat grey. Pillow's JPEG
decoder discards libjpeg's warnings and torchvision 0.29's decode_jpeg prints them to stderr, so
neither tells its caller; both decoders ask `cut_short` instead, which stands in for the warning:

- The scans present must code every coefficient of every component down to its last bit. A
  progressive file cut short lacks its later scans; its scan headers show it without decoding.
- In a file of one scan (every baseline photo) a cut leaves the last block, the bottom-right corner,
  at the grey of zero coefficients. Only when that corner is grey does Pillow decode the file once
  more with its EOI replaced by `PADDING`: a whole scan is decoded before the padding is used, a cut
  one decodes the padding and then runs out of data, which Pillow reports as truncated.

Not seen (a part of one block, or the last refinement bit of some blocks, is missing): a cut inside
the last block of a baseline file or inside the last scan of a progressive one.
"""

from __future__ import annotations

import io
import mmap
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image

# In entropy-coded data 0xFF is followed by 0x00 (a stuffed 0xFF byte) or a restart marker (0xD0-0xD7);
# anything else is the next marker. Fill bytes (0xFF) may come before a marker: the match is the last one.
NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
FRAMES = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOFn; 0xC4 is DHT, 0xC8 reserved, 0xCC DAC
PROGRESSIVE_FRAMES = {0xC2, 0xC6, 0xCA, 0xCE}
NO_LENGTH = set(range(0xD0, 0xD8)) | {0x01, 0xD8}  # RSTn, TEM and SOI carry no segment
SOS, EOI = 0xDA, 0xD9

# Stuffed 0xFF bytes: data to the Huffman decoder (no marker, so it cannot stop there and fill grey).
# libjpeg reads a few bytes ahead of the bits it needs (at most 8 per refill of its 64-bit buffer), so
# a whole scan must find data after its end; 24 bytes cover its last refills. A cut scan decodes them
# as invalid codes (~34 bits per block: under one 4:2:0 MCU in all) and then suspends for more.
PADDING = b"\xff\x00" * 24

BLANK = 128  # the level of a block of zero coefficients (libjpeg's CENTERJSAMPLE), in every channel
# Luma of the corner pixel within this of BLANK counts as blank: the luma block of the last MCU is
# exactly BLANK, but the chroma upsampling may blend in a real row above it, which moves R, G and B
# by up to a few levels in opposite directions and the luma by rounding only.
BLANK_LUMA = 1.5
LUMA = (0.299, 0.587, 0.114)  # libjpeg's Y from R, G, B
COMPONENTS = {"L": 1, "RGB": 3, "YCbCr": 3, "CMYK": 4}  # Pillow's JPEG modes -> colour components


@dataclass(frozen=True)
class JpegHeader:
    width: int
    height: int
    components: int
    orientation: int  # EXIF orientation, 1 = upright
    progressive: bool = False


def read_header(data) -> JpegHeader | None:
    """Size, colour components, EXIF orientation and progressiveness of a JPEG, read by Pillow from
    its header alone (Image.open decodes no pixels); None for anything Pillow does not open as a JPEG,
    whose verdict the Pillow decoder then gives with its typed error. `data`: bytes or any buffer."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=["JPEG"]) as img:
                if img.format != "JPEG" or img.mode not in COMPONENTS or min(img.size) == 0:
                    return None
                orientation = img.getexif().get(0x0112, 1)
                return JpegHeader(img.width, img.height, COMPONENTS[img.mode],
                                  orientation if orientation in range(1, 9) else 1, bool(img.info.get("progressive")))
    except Exception:  # whatever Pillow raises on a bad header, its decoder names it as a typed error
        return None


def ends_with_eoi(data) -> bool:
    """Whether the JPEG ends in an EOI marker, ignoring zero padding after it."""
    with memoryview(data) as raw, raw.cast("B") as view:
        end = len(view)
        while end and view[end - 1] == 0:
            end -= 1
        return view[end - 2 : end] == b"\xff\xd9"


@dataclass(frozen=True)
class Scan:
    components: tuple[int, ...]
    first: int  # Ss: the first coefficient (zig-zag index) the scan codes
    last: int  # Se
    low_bit: int  # Al: the lowest bit it codes (0: the coefficients are complete after it)


@dataclass(frozen=True)
class Layout:
    """A JPEG's frame and scans, read from its markers up to its EOI."""

    progressive: bool
    components: tuple[int, ...]
    scans: tuple[Scan, ...]
    end: int | None  # offset of the EOI that ends the image; None when the data ends before one

    def missing_scans(self) -> bool:
        """Whether the scans leave a coefficient of a component uncoded or short of its last bit."""
        if not self.scans:
            return True
        if self.progressive:
            coded = {(c, k) for s in self.scans if s.low_bit == 0 for c in s.components
                     for k in range(s.first, s.last + 1)}
            return any((c, k) not in coded for c in self.components for k in range(64))
        return not set(self.components) <= {c for s in self.scans for c in s.components}


def layout(data) -> Layout | None:
    """The Layout of the JPEG in `data` (bytes or any buffer); None when its markers are not a JPEG's
    (Pillow names that error). Reads only marker segments and searches the scans for their end."""
    with memoryview(data) as raw, raw.cast("B") as view:  # released on return: a mapped file can then close
        return _layout(view)


def _layout(view: memoryview) -> Layout | None:
    progressive, components, scans, pos = False, (), [], 2
    try:
        while pos + 1 < len(view):
            if view[pos] != 0xFF or view[pos + 1] == 0xFF:  # garbage or fill before a marker: skip, as libjpeg does
                found = NEXT_MARKER.search(view, pos + 1)
                if found is None:
                    break
                pos = found.start()
                continue
            marker = view[pos + 1]
            if marker == EOI:
                return Layout(progressive, components, tuple(scans), pos)
            if marker in NO_LENGTH:
                pos += 2
                continue
            body = view[pos + 4 : pos + 2 + (view[pos + 2] << 8 | view[pos + 3])]
            pos += 2 + len(body) + 2
            if marker in FRAMES:
                progressive = marker in PROGRESSIVE_FRAMES
                components = tuple(body[6 + 3 * k] for k in range(body[5]))
            elif marker == SOS:
                n = body[0]
                scans.append(Scan(tuple(body[1 + 2 * k] for k in range(n)), body[1 + 2 * n], body[2 + 2 * n],
                                  body[3 + 2 * n] & 15))
                found = NEXT_MARKER.search(view, pos)
                if found is None:
                    break
                pos = found.start()
    except IndexError:  # a segment cut short: the scans it would have led to are missing
        pass
    return Layout(progressive, components, tuple(scans), None) if scans or components else None


def blank(pixel) -> bool:
    """Whether a decoded pixel (a grey level or an RGB triple) is the grey of a block without data."""
    if isinstance(pixel, (int, float)):
        return abs(pixel - BLANK) <= BLANK_LUMA
    if len(pixel) != 3:
        return True  # CMYK and the like: no cheap test, so the structure is always checked
    return abs(sum(w * v for w, v in zip(LUMA, pixel)) - BLANK) <= BLANK_LUMA


def scan_cut_short(data, end: int) -> bool:
    """Whether the single scan of the JPEG whose EOI is at `end` lacks data (see the module docstring)."""
    with memoryview(data) as view:
        cut = bytes(view[:end]) + PADDING
    try:
        with Image.open(io.BytesIO(cut), formats=["JPEG"]) as img:
            img.load()
    except OSError:  # "image file is truncated": the scan wanted more than the file and the padding
        return True
    return False


def cut_short(data, progressive: bool, last_pixel=None) -> str | None:
    """Why the JPEG in `data` is not whole, or None. `progressive`: as its frame header says.
    `last_pixel`: its decoded bottom-right pixel, in the stored orientation; None before decoding, when
    only a progressive file's scans are checked (the check that needs no pixels)."""
    grey = last_pixel is not None and blank(last_pixel)
    if not (progressive or grey):
        return None
    found = layout(data)
    if found is None:
        return None
    if found.missing_scans():
        return "truncated: scans are missing (the file was cut short)"
    if grey and len(found.scans) == 1 and found.end is not None and scan_cut_short(data, found.end):
        return "truncated: the image data stops before its last block (the file was cut short)"
    return None


@contextmanager
def contents(source: str | os.PathLike | bytes):
    """The bytes of a bytes source, or a file's contents mapped, not read: a file may hold far more
    than its image (data after its end), which these checks never look at."""
    if isinstance(source, bytes):
        yield source
        return
    with open(source, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        yield mapped


def decoded_cut_short(source: str | os.PathLike | bytes, img: Image.Image) -> str | None:
    """cut_short for a JPEG Pillow has decoded from `source` (a path or bytes). The file is looked at
    again only for a progressive JPEG or when the last pixel is the grey of a block without data."""
    progressive = bool(img.info.get("progressive"))
    pixel = img.getpixel((img.width - 1, img.height - 1))
    if not (progressive or blank(pixel)):
        return None
    with contents(source) as data:
        return cut_short(data, progressive, pixel)
