"""A corpus of hostile and unusual inputs, written into a folder for the CLI and the fuzzer to chew on.

    good, bad = make_corpus(folder)

`good`: files every decoder must classify (real photos from ../shared/eval, copied into `folder`, and
legal but unusual images: CMYK, 16-bit, palette with transparency, animation, EXIF rotation, odd names).
`bad`: path -> the ImageError class name it must be reported with; where two verdicts are both right (a
broken header may be "not an image" or "corrupt" depending on how far a parser gets) the value names
both, separated by "|" (see `accepts`). Nothing here is committed: everything is generated, and the
photos are copied only into the temporary folder.

Some entries are not regular files (a FIFO, a symlink loop, /dev/zero behind a link): a folder scan
skips them, so a caller names them explicitly (`needs_naming`). `IGNORED` lists the names a folder
scan must skip without reporting them at all (a directory called x.jpg).
"""

from __future__ import annotations

import io
import os
import random
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

SHARED = Path(__file__).resolve().parents[2] / "shared"
PHOTOS = SHARED / "eval" / "images"

# Text that a file name smuggles after a line break: rendered output must never show it at a line start.
FORGED = "FORGED-LINE"
IGNORED = ("folder.jpg",)  # a directory with an image suffix: not an input at all
NOT_EMPTY = ("pipe.jpg", "zeros.jpg")  # not regular files: their size says nothing, "empty" would be a lie


def accepts(expected: str, error: str) -> bool:
    """Whether the error class name `error` is one of the verdicts `expected` allows ("A" or "A|B")."""
    return error in expected.split("|")


def needs_naming(path: Path, folder: Path) -> bool:
    """True for entries a scan of `folder` does not pick up (not a regular file with an image suffix
    directly inside it): the caller passes those by name."""
    from topfive.decode.images import IMAGE_SUFFIXES

    scanned = path.parent == folder and os.path.isfile(path) and path.suffix.lower() in IMAGE_SUFFIXES
    return not scanned


def real_photos(n: int) -> list[Path]:
    """n real JPEGs from the eval set (sorted, so the same ones every run), 20-150 KB each."""
    found = [p for p in sorted(PHOTOS.glob("*/*.jpg")) if 20_000 <= p.stat().st_size <= 150_000]
    if len(found) < n:
        raise FileNotFoundError(f"{PHOTOS}: fewer than {n} photos of 20-150 KB")
    step = len(found) // n
    return [found[k * step] for k in range(n)]


# --- hand-made containers ------------------------------------------------------------------------


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, raw: bytes, depth: int = 8, colour: int = 0, extra: bytes = b"") -> bytes:
    """A PNG from its IHDR fields and the raw (filtered) scanlines, `extra` chunks before IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + extra
            + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))


def png_16bit_rgb(rgb: np.ndarray) -> bytes:
    """48-bit RGB (Pillow cannot write it): each 8-bit value v becomes v * 257, big-endian."""
    h, w, _ = rgb.shape
    wide = (rgb.astype(">u2") * 257).reshape(h, w * 3)
    raw = b"".join(b"\0" + row.tobytes() for row in wide)
    return png(w, h, raw, depth=16, colour=2)


def png_ztxt_bomb(mb: int = 64) -> bytes:
    """A tiny valid image whose zTXt chunk inflates to `mb` MB (Pillow stops at MAX_TEXT_CHUNK)."""
    comp = zlib.compressobj(9)
    block = b"\0" * (1 << 20)
    body = b"".join(comp.compress(block) for _ in range(mb)) + comp.flush()
    ztxt = png_chunk(b"zTXt", b"Comment\0\0" + body)
    return png(8, 8, b"".join(b"\0" + bytes(range(8)) for _ in range(8)), extra=ztxt)


def png_big_text(mb: int = 2) -> bytes:
    """A tiny image carrying `mb` MB of plain tEXt: legal, and the text must not matter."""
    text = png_chunk(b"tEXt", b"Comment\0" + b"A" * (mb << 20))
    return png(32, 32, b"".join(b"\0" + bytes(range(0, 256, 8)) for _ in range(32)), extra=text)


def gif_screen_bomb() -> bytes:
    """A GIF whose logical screen is 65535 x 65535 holding one 1 x 1 image."""
    header = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    image = b"," + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return header + image + b";"


def bmp_header_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A BMP header for width x height, 24 bits, and a few bytes of pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    head = b"BM" + struct.pack("<IHHI", 14 + 40 + 12, 0, 0, 54)
    return head + info + b"\0" * 12


def jpeg_markers(data: bytes) -> list[tuple[int, int]]:
    """(offset, marker) of each JPEG marker segment up to the first SOS."""
    out, pos = [], 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        out.append((pos, marker))
        if marker == 0xDA:
            break
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return out


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """The JPEG with its SOF frame header claiming width x height (the scan is left as it was)."""
    for pos, marker in jpeg_markers(data):
        if marker in (0xC0, 0xC1, 0xC2):
            sof = bytearray(data)
            sof[pos + 5 : pos + 9] = struct.pack(">HH", height, width)
            return bytes(sof)
    raise ValueError("no SOF marker")


def jpeg_scan_start(data: bytes) -> int:
    """Offset of the first byte of entropy-coded data (just after the first SOS segment)."""
    pos, marker = jpeg_markers(data)[-1]
    assert marker == 0xDA, "no SOS marker"
    return pos + 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]


def jpeg_insert_app1(data: bytes, body: bytes) -> bytes:
    """The JPEG with an extra APP1 segment right after SOI."""
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + data[2:]


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


# --- the corpus ----------------------------------------------------------------------------------


def make_corpus(folder: str | os.PathLike) -> tuple[list[Path], dict[Path, str]]:
    """Write the corpus into `folder` (created if needed); return (good files, {bad path: error class})."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    good: list[Path] = []
    bad: dict[Path, str] = {}
    rng = random.Random(16)

    def put(name: str | bytes, data: bytes, expect: str | None = None) -> Path:
        path = folder / (os.fsdecode(name) if isinstance(name, bytes) else name)
        path.write_bytes(data)
        (good.append(path) if expect is None else bad.__setitem__(path, expect))
        return path

    photos = real_photos(3)
    for k, src in enumerate(photos):
        good.append(Path(shutil.copyfile(src, folder / f"photo{k}.jpg")))
    photo_bytes = photos[0].read_bytes()
    photo = ImageOps.exif_transpose(Image.open(photos[0])).convert("RGB")
    small = photo.resize((96, 64))
    baseline = encode(photo, "JPEG", quality=90)  # the eval photos are progressive; this one is not
    progressive = encode(photo, "JPEG", quality=90, progressive=True)

    # Legal but unusual: every one of these must be classified.
    put("jpeg_named.png", photo_bytes)
    put("UPPER.JPG", baseline)
    put("café_猫_🐱.jpg", baseline)
    put(f"newline\n{FORGED}.jpg", baseline)
    put(f"return\r{FORGED}.jpg", baseline)
    put('comma,"quote";semi.jpg', baseline)
    put("n" * 240 + ".jpg", baseline)
    (folder / "link_to_photo.jpg").symlink_to(folder / "photo0.jpg")
    good.append(folder / "link_to_photo.jpg")
    put("cmyk.jpg", encode(photo.convert("CMYK"), "JPEG", quality=90))
    put("grey.jpg", encode(photo.convert("L"), "JPEG", quality=90))
    for orientation in (6, 3, 9):  # 9 is out of range: to be ignored, not trusted
        exif = Image.Exif()
        exif[0x0112] = orientation
        put(f"exif_orientation_{orientation}.jpg", encode(photo, "JPEG", quality=90, exif=exif.tobytes()))
    # EXIF whose orientation entry points past the end: Pillow warns and skips it; the pixels are whole.
    put("broken_exif.jpg", jpeg_insert_app1(baseline, b"Exif\0\0II*\0\x08\0\0\0\x05\0" + b"\x12\x01\x03\0\xff\xff\xff\x7f" * 5))
    put("trailing_bytes.jpg", baseline + b"\0\0" + b"after the image" * 64)
    put("mpo.jpg", encode(photo, "MPO", save_all=True, append_images=[photo.rotate(180)]))
    put("palette_transparent.png", encode(small.convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0))
    put("rgba.png", encode(small.convert("RGBA"), "PNG"))
    grey16 = (np.asarray(small.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    put("grey16.png", encode(Image.fromarray(grey16), "PNG"))
    put("rgb16.png", png_16bit_rgb(np.asarray(small)))
    put("animated.gif", encode(small, "GIF", save_all=True, append_images=[small.rotate(90), small.rotate(180)],
                               duration=100, loop=0))
    put("animated.png", encode(small, "PNG", save_all=True, append_images=[small.rotate(180)], duration=100))
    put("photo.webp", encode(photo, "WEBP", quality=80))
    put("photo.bmp", encode(small, "BMP"))
    put("photo.tif", encode(small, "TIFF", compression="tiff_lzw"))
    put("one_pixel.png", encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"))
    put("panorama_5to1.jpg", encode(photo.resize((1000, 200)), "JPEG", quality=85))
    put("big_text_chunk.png", png_big_text(2))

    # Not images at all.
    put("empty.jpg", b"", "NotAnImage")
    put("random.jpg", rng.randbytes(4096), "NotAnImage")
    put("text.png", b"This is not a PNG, just some text.\n" * 20, "NotAnImage")
    put("page.jpg", b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n", "NotAnImage")
    put("drawing.png", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>\n',
        "NotAnImage")
    put("document.png", encode(small, "PDF"), "NotAnImage")
    put(f"bad\n{FORGED}.jpg", b"not an image\n", "NotAnImage")

    # Formats Pillow knows but the README does not promise: refused, whatever the name says.
    put("postscript.jpg", encode(small, "EPS"), "NotAnImage")
    put("postscript.eps", encode(small, "EPS"), "NotAnImage")
    put("paintbrush.pcx", encode(small, "PCX"), "NotAnImage")
    put("pixmap.ppm", encode(small, "PPM"), "NotAnImage")
    put("pixmap_named.png", encode(small, "PPM"), "NotAnImage")
    put("icon.ico", encode(small, "ICO"), "NotAnImage")
    put("targa.jpg", encode(small, "TGA"), "NotAnImage")
    put("bitmap.xbm", encode(small.convert("1"), "XBM"), "NotAnImage")
    put("silicon.sgi", encode(small, "SGI"), "NotAnImage")

    # Truncated or broken inside: the pixels are not all there.
    put("truncated.jpg", baseline[: len(baseline) * 6 // 10], "CorruptImage")
    put("truncated_eoi.jpg", baseline[: len(baseline) * 6 // 10] + b"\xff\xd9", "CorruptImage")
    put("truncated_progressive.jpg", progressive[: len(progressive) // 2], "CorruptImage")
    put("truncated_progressive_eoi.jpg", progressive[: len(progressive) // 2] + b"\xff\xd9", "CorruptImage")
    start = jpeg_scan_start(baseline)
    put("scan_cut_eoi.jpg", baseline[: start + 40] + b"\xff\xd9", "CorruptImage")
    put("header_only.jpg", baseline[:start], "CorruptImage")
    whole_png = encode(photo, "PNG")
    put("truncated.png", whole_png[: len(whole_png) // 2], "CorruptImage")
    whole_gif = encode(photo.resize((256, 170)), "GIF")
    put("truncated.gif", whole_gif[: len(whole_gif) // 2], "CorruptImage")
    whole_webp = encode(photo, "WEBP", quality=80)
    put("truncated.webp", whole_webp[: len(whole_webp) // 2], "CorruptImage|NotAnImage")
    put("zero_width.png", png(0, 8, b"\0" * 8), "CorruptImage|NotAnImage")
    put("bad_bit_depth.png", png(8, 8, b"\0" * 8 * 9, depth=3), "CorruptImage|NotAnImage")
    put("sof_zero_height.jpg", jpeg_with_size(baseline, photo.width, 0), "CorruptImage|NotAnImage")

    # Too many pixels: refused from the header, in well under a second, whatever the file size.
    put("bomb.png", png(100_000, 100_000, b"\0" * 16), "ImageTooLarge")
    put("bomb_just_over.png", png(9_500, 9_500, b"\0" * 16), "ImageTooLarge")
    put("bomb_sof.jpg", jpeg_with_size(baseline, 60_000, 60_000), "ImageTooLarge")
    put("bomb_screen.gif", gif_screen_bomb(), "ImageTooLarge")
    put("bomb_header.bmp", bmp_header_bomb(), "ImageTooLarge")
    put("bomb_text.png", png_ztxt_bomb(64), "CorruptImage|ImageTooLarge")
    # Extreme aspect ratios: a few hundred bytes, but resizing the shorter side to the model's size
    # would ask for gigabytes. Bounded by the output: refused (or cropped first) with a typed error.
    line = bytes(range(256)) * 300
    put("tall_1x60000.png", png(1, 60_000, b"".join(b"\0" + line[k : k + 1] for k in range(60_000))), "ImageTooLarge")
    put("wide_60000x1.png", png(60_000, 1, b"\0" + line[:60_000]), "ImageTooLarge")
    put("wide_20000x10.png", png(20_000, 10, (b"\0" + line[:20_000]) * 10), "ImageTooLarge")
    # The stated limit, at its edge: exactly MAX_ASPECT_RATIO:1 is an image, one pixel more is not.
    from topfive.decode.images import MAX_ASPECT_RATIO

    edge = 20 * MAX_ASPECT_RATIO
    put(f"edge_{edge}x20.png", png(edge, 20, (b"\0" + (line * 2)[:edge]) * 20))
    put(f"edge_20x{edge + 1}.png", png(20, edge + 1, (b"\0" + line[:20]) * (edge + 1)), "ImageTooLarge")

    # Not regular files, or not there.
    (folder / IGNORED[0]).mkdir()
    (folder / IGNORED[0] / "inside.jpg").write_bytes(baseline)  # not recursive: never read
    (folder / "loop_a.jpg").symlink_to(folder / "loop_b.jpg")
    (folder / "loop_b.jpg").symlink_to(folder / "loop_a.jpg")
    bad[folder / "loop_a.jpg"] = "ImageNotFound"
    (folder / "dangling.jpg").symlink_to(folder / "nowhere.jpg")
    bad[folder / "dangling.jpg"] = "ImageNotFound"
    bad[folder / "missing.jpg"] = "ImageNotFound"
    bad[folder / "photo0.jpg" / "inside.jpg"] = "ImageNotFound"  # a file used as a folder (ENOTDIR)
    (folder / "zeros.jpg").symlink_to("/dev/zero")  # endless: must not be read to the end
    bad[folder / "zeros.jpg"] = "NotAnImage"
    os.mkfifo(folder / "pipe.jpg")  # nobody writes: opening it for reading would block forever
    bad[folder / "pipe.jpg"] = "NotAnImage"
    if os.geteuid() != 0:  # root reads whatever the permissions say
        put("locked.jpg", baseline, "ImageUnreadable").chmod(0)
        (folder / "locked").mkdir()
        put("locked/inside.jpg", baseline, "ImageUnreadable")
        (folder / "locked").chmod(0)
    return good, bad
