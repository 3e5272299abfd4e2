"""Hostile inputs to the decoders (issue 16): each gives its typed error, in both decoders, or the
right pixels; none costs more than its output, hangs, or is classified half grey."""

import io
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PcxImagePlugin

from conftest import EVAL
from topfive.decode import images as images_module
from topfive.decode import make_decoder
from topfive.decode.images import (
    MAX_ASPECT_RATIO,
    PIXEL_LIMIT,
    CorruptImage,
    ImageNotFound,
    ImageTooLarge,
    NotAnImage,
    load_image,
)
from topfive.decode.jpeg import read_header
from topfive.decode.pillow import WINDOW_ABOVE, PillowDecoder
from topfive.decode.tensor import TensorDecoder
from topfive.models import resolve
from topfive.output import render_predictions
from topfive.predict import Classifier, ClassScore, Failure, Prediction
from topfive.transforms import PreprocessSpec, preprocess

README = Path(__file__).resolve().parents[1] / "README.md"
LITE0 = resolve("efficientnet_lite0").info.preprocess
RESNET = resolve("resnet50").info.preprocess


def decoders():
    """Each way a batch is decoded: Pillow, tensor (decode in reader threads), tensor as on CUDA."""
    return {"pillow": make_decoder("pillow", LITE0), "tensor": make_decoder("tensor", LITE0),
            "tensor-batched": TensorDecoder(LITE0, batched=True)}


def verdicts(sources):
    """Per decoder, the error class (or None) of each source, decoded as one batch."""
    return {name: [type(e) if e else None for e in decode(sources)[1]] for name, decode in decoders().items()}


def png(width: int, height: int, raw: bytes) -> bytes:
    """A grey PNG from its raw (filtered) scanlines."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def strip(width: int, height: int) -> bytes:
    return png(width, height, (b"\0" + bytes(range(256)) * (width // 256 + 1))[: width + 1] * height)


def encode(img: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **options)
    return out.getvalue()


def scan_start(data: bytes) -> int:
    """Offset of the first entropy-coded byte: after the first SOS segment, walking the segments."""
    pos = 2
    while data[pos + 1] != 0xDA:
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    return pos + 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]


@pytest.fixture(scope="module")
def photo():
    """A real baseline photo of the eval set, its bytes."""
    for path in sorted(EVAL.glob("images/*/*.jpg")):
        with Image.open(path) as img:
            if not img.info.get("progressive") and 30_000 < path.stat().st_size < 200_000:
                return path.read_bytes()
    raise FileNotFoundError("no baseline photo in the eval set")


# --- 1. extreme aspect ratios: refused from the header; long ones resampled on their window only ----


@pytest.mark.parametrize("size", [(1, 200), (200, 1), (1, 60000), (20000, 10)], ids=lambda s: "x".join(map(str, s)))
def test_extreme_aspect_ratios_are_refused_from_the_header(size):
    data = strip(*size)
    assert verdicts([data]) == {name: [ImageTooLarge] for name in decoders()}
    with pytest.raises(ImageTooLarge) as err:
        load_image(Image.open(io.BytesIO(data)))  # a PIL image too, before it is loaded
    assert f"{MAX_ASPECT_RATIO}:1" in err.value.reason


def test_the_aspect_ratio_limit_itself_is_classified():
    assert verdicts([strip(MAX_ASPECT_RATIO, 1), strip(3, 3 * MAX_ASPECT_RATIO)]) == {
        name: [None, None] for name in decoders()}


@pytest.mark.parametrize("spec", [LITE0, RESNET, PreprocessSpec(size=224, resize=160, interpolation="bicubic")],
                         ids=["lite0-bicubic", "resnet-bilinear", "crop-pads"])
def test_long_images_are_resampled_on_their_window_with_the_same_pixels(spec, monkeypatch):
    """Resizing a 40:1 strip whole would make it ~50 output squares long; the Pillow decoder resamples
    only what the centre crop reads (Pillow resizes nothing over WINDOW_ABOVE squares, 4, itself), and
    gets Pillow's pixels all the same."""
    rng = np.random.default_rng(7)
    shapes = [(2000, 50), (50, 2000), (90, 700), (7, 700), (1000, 200)]
    imgs = [Image.fromarray((np.cumsum(rng.integers(-9, 10, (h, w, 3)), axis=1) % 256).astype(np.uint8))
            for w, h in shapes]
    expected = [preprocess(img, spec) for img in imgs]  # Pillow's whole resize, the reference
    asked = []
    resize = Image.Image.resize
    monkeypatch.setattr(Image.Image, "resize",
                        lambda self, size, *a, **k: asked.append(size) or resize(self, size, *a, **k))
    got = [PillowDecoder(spec).prepare(img) for img in imgs]
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    assert WINDOW_ABOVE <= 8 and all(w * h <= 8 * spec.size**2 for w, h in asked), asked


# --- 2. a JPEG cut short and re-terminated by an EOI marker ----------------------------------------


def test_a_baseline_jpeg_cut_in_its_scan_with_an_eoi_is_corrupt(photo):
    start = scan_start(photo)
    cut = photo[: start + (len(photo) - start) // 2] + b"\xff\xd9"
    near_end = photo[: len(photo) - 600] + b"\xff\xd9"
    assert verdicts([photo, cut, near_end, photo]) == {
        name: [None, CorruptImage, CorruptImage, None] for name in decoders()}
    with pytest.raises(CorruptImage, match="truncated"):
        load_image(cut)


def test_a_progressive_jpeg_cut_short_with_an_eoi_is_corrupt(photo, tmp_path):
    img = Image.open(io.BytesIO(photo))
    progressive = encode(img, "JPEG", quality=90, progressive=True)
    grey = encode(img.convert("L"), "JPEG", quality=90, progressive=True)
    on_disk = tmp_path / "cut.jpg"  # a path: the checks map the file rather than read it
    on_disk.write_bytes(progressive[: len(progressive) // 2] + b"\xff\xd9")
    sources = [progressive, progressive[: len(progressive) // 3] + b"\xff\xd9", grey,
               grey[: len(grey) // 3] + b"\xff\xd9", str(on_disk)]
    assert verdicts(sources) == {name: [None, CorruptImage, None, CorruptImage, CorruptImage] for name in decoders()}


def test_whole_jpegs_of_every_kind_are_not_taken_for_cut_ones(photo):
    """No false alarm: real photos (baseline and progressive), a grey bottom-right corner, CMYK, MPO,
    data after the EOI, restart markers."""
    photos = [str(p) for p in sorted(EVAL.glob("images/*/*.jpg"))[::40]]
    img = Image.open(io.BytesIO(photo)).convert("RGB")
    grey_corner = np.asarray(img).copy()
    grey_corner[-48:, -48:] = 128
    grey = Image.fromarray(grey_corner)
    sources = photos + [encode(grey, "JPEG", quality=95), encode(grey, "JPEG", quality=95, progressive=True),
                        encode(grey.convert("L"), "JPEG"), encode(grey.convert("CMYK"), "JPEG"),
                        encode(grey, "MPO", save_all=True, append_images=[img]),
                        encode(grey, "JPEG") + b"trailing data" * 50, encode(grey, "JPEG", restart_marker_blocks=4)]
    assert verdicts(sources) == {name: [None] * len(sources) for name in decoders()}


# --- 5. only the formats the README promises --------------------------------------------------------


@pytest.mark.parametrize("fmt", ["EPS", "PCX", "PPM", "ICO", "TGA", "SGI"])
def test_formats_the_readme_does_not_promise_are_not_images(fmt, tmp_path):
    data = encode(Image.new("RGB", (32, 24), (200, 30, 30)), fmt)
    named_jpeg = tmp_path / "photo.jpg"  # an EPS named .jpg must not reach the Ghostscript plugin
    named_jpeg.write_bytes(data)
    assert verdicts([data, str(named_jpeg)]) == {name: [NotAnImage, NotAnImage] for name in decoders()}
    with pytest.raises(NotAnImage, match="supported: JPEG, PNG, WebP, BMP, TIFF, GIF"):
        load_image(data)


def test_no_other_plugin_parses_the_bytes(monkeypatch):
    """Not just refused at the end: Pillow's other plugins (here PCX) never see the bytes, in the
    decoding nor in the tensor decoder's header read."""
    seen = []

    def spy(self):
        seen.append(self)
        raise SyntaxError("not for this test")  # what a plugin raises to let Pillow try the next one

    monkeypatch.setattr(PcxImagePlugin.PcxImageFile, "_open", spy)
    pcx = encode(Image.new("RGB", (16, 16)), "PCX")
    assert read_header(pcx) is None
    with pytest.raises(NotAnImage):
        load_image(pcx)
    assert not seen


# --- 11. the smaller ones ---------------------------------------------------------------------------


def test_a_pil_image_with_truncated_data_is_corrupt(photo):
    with pytest.raises(CorruptImage):
        load_image(Image.open(io.BytesIO(photo[: len(photo) // 2])))


def test_pil_images_get_the_pixel_limit_too(monkeypatch):
    monkeypatch.setattr(images_module, "MAX_IMAGE_PIXELS", 100 * 100)
    with pytest.raises(ImageTooLarge):
        load_image(Image.new("RGB", (101, 100)))
    assert load_image(Image.new("RGB", (100, 100))).size == (100, 100)


def test_the_bomb_message_quotes_the_limit_the_readme_states():
    assert PIXEL_LIMIT == "89.5 megapixels" and f"over {PIXEL_LIMIT}" in README.read_text()
    huge = png(100_000, 100_000, b"\0" * 16)  # past twice the limit: Pillow's error named 178956970
    just_over = png(9_500, 9_500, b"\0" * 16)
    for data in (huge, just_over):
        for errors in decoders().values():
            error = errors([data])[1][0]
            assert isinstance(error, ImageTooLarge) and error.reason.endswith(f"exceeds the limit of {PIXEL_LIMIT}")


def test_an_empty_path_says_so():
    for error in (errors([""])[1][0] for errors in decoders().values()):
        assert isinstance(error, ImageNotFound) and error.reason == "empty path"


def test_devices_and_fifos_are_not_regular_files_and_are_never_read(tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)  # nobody writes: opening it for reading would block for ever
    (tmp_path / "zeros.jpg").symlink_to("/dev/zero")
    sources = [str(fifo), str(tmp_path / "zeros.jpg"), "/dev/null"]
    found = {}

    def decode_all():
        for name, decode in decoders().items():
            found[name] = [(type(e), e.reason) for e in decode(sources)[1]]

    worker = threading.Thread(target=decode_all, daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # a reader is blocked in open(): let it go, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("a decoder opened the FIFO")
    assert found == {name: [(NotAnImage, "not a regular file")] * 3 for name in decoders()}


@pytest.mark.parametrize("top_k", [0, -1, 2.5, True])
def test_top_k_below_one_is_a_value_error(lite0, top_k, photo):
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        lite0.predict(photo, top_k=top_k)
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        lite0.iter_predict([photo], top_k=top_k)  # at the call, not at the first next()
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        lite0(photo, top_k=top_k)


def test_the_classifier_reports_the_cut_jpeg_and_goes_on(lite0, photo):
    cut = photo[: len(photo) // 2] + b"\xff\xd9"
    for decode in ("pillow", "tensor"):
        clf = Classifier.around(lite0.runtime, lite0.name, lite0.spec, lite0.entry, decode=decode)
        results = clf.predict([photo, cut, ""], errors="collect")
        assert [type(r) for r in results] == [Prediction, Failure, Failure], decode
        assert (results[1].error, results[2].reason) == ("CorruptImage", "empty path")


def test_a_file_name_cannot_forge_a_line_of_the_table():
    top = tuple(ClassScore(k + 1, k, f"n{k:08d}", f"class {k}", 0.5 / (k + 1)) for k in range(5))
    results = [Prediction("a\nFORGED line.jpg", "lite0", top),
               Failure("b\r\nFORGED\x1b[2J.jpg", "lite0", "NotAnImage", "x"),
               Prediction(os.fsdecode(b"latin1_\xe9t\xe9.jpg"), "lite0", top)]
    table = render_predictions(results, "table")
    assert not [line for line in table.splitlines() if line.lstrip().startswith("FORGED")], table
    assert "a\\nFORGED line.jpg" in table and "\x1b" not in table and "latin1_\\xe9t\\xe9.jpg" in table
    table.encode("utf-8")  # what a UTF-8 stdout takes
    csv_text = render_predictions(results, "csv")
    csv_text.encode("utf-8")
    assert '"a\nFORGED line.jpg"' in csv_text  # CSV quotes the name and keeps it whole
