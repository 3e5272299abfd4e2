"""A corpus of bad and unusual inputs: each gives its clear error or the right result, and a batch goes on."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from topfive import CorruptImage, Failure, ImageNotFound, ImageTooLarge, NotAnImage, Prediction, load_image
from topfive.decode.images import find_images


def _png_header_only(width, height):
    """A PNG whose header claims width x height (a decompression-bomb shape) with a tiny body."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.fixture
def corpus(tmp_path):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(64, 96, 3), dtype=np.uint8)
    files = {}

    files["zero"] = tmp_path / "zero.jpg"
    files["zero"].write_bytes(b"")

    good_jpeg = io.BytesIO()
    Image.fromarray(rgb).save(good_jpeg, "JPEG", quality=90)
    files["truncated"] = tmp_path / "truncated.jpg"
    files["truncated"].write_bytes(good_jpeg.getvalue()[: len(good_jpeg.getvalue()) // 2])

    files["text"] = tmp_path / "notes.jpg"
    files["text"].write_text("this is not a photo\n")

    files["huge"] = tmp_path / "huge.png"
    files["huge"].write_bytes(_png_header_only(100_000, 100_000))

    files["cmyk"] = tmp_path / "cmyk.jpg"
    Image.fromarray(rgb).convert("CMYK").save(files["cmyk"], "JPEG")

    files["png16"] = tmp_path / "grey16.png"
    ramp = (np.arange(64 * 96).reshape(64, 96) * 10).astype(np.uint16)
    Image.fromarray(ramp).save(files["png16"])

    files["gif"] = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (40, 30), c) for c in [(255, 0, 0), (0, 0, 255)]]
    frames[0].save(files["gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)

    files["rgba"] = tmp_path / "alpha.png"
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:10, :, 3] = 255  # top half opaque red, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(files["rgba"])

    files["exif"] = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(rgb).save(files["exif"], "JPEG", exif=exif)

    files["missing"] = tmp_path / "absent.jpg"
    return files


@pytest.mark.parametrize(
    "key, error, words",
    [
        ("zero", NotAnImage, "empty"),
        ("truncated", CorruptImage, "truncated"),
        ("text", NotAnImage, "not a recognised image"),
        ("huge", ImageTooLarge, "exceeds"),
        ("missing", ImageNotFound, "no such file"),
    ],
)
def test_bad_inputs_raise_typed_errors_naming_the_file(corpus, key, error, words):
    with pytest.raises(error) as err:
        load_image(corpus[key])
    assert err.value.source == str(corpus[key])
    assert words in err.value.reason
    assert str(corpus[key]) in str(err.value)


def test_unusual_modes_become_rgb(corpus):
    cmyk = load_image(corpus["cmyk"])
    assert cmyk.mode == "RGB" and cmyk.size == (96, 64)

    grey = np.asarray(load_image(corpus["png16"]))
    assert grey.shape == (64, 96, 3)
    # 16-bit values are scaled to 8 bits, not clipped at 255: the ramp stays a ramp.
    assert grey[0, 0, 0] == 0 and 150 < grey[-1, -1, 0] <= 255 and len(np.unique(grey)) > 100

    gif = np.asarray(load_image(corpus["gif"]))
    assert tuple(gif[0, 0]) == (255, 0, 0)  # first frame

    rgba = np.asarray(load_image(corpus["rgba"]))
    assert tuple(rgba[0, 0]) == (200, 0, 0)  # opaque part kept
    assert tuple(rgba[-1, 0]) == (255, 255, 255)  # transparent part shown over white

    assert load_image(corpus["exif"]).size == (64, 96)  # EXIF orientation applied


def test_draft_decoding_keeps_at_least_the_requested_size(tmp_path):
    big = tmp_path / "big.jpg"
    Image.new("RGB", (4000, 3000), (10, 200, 30)).save(big, quality=90)
    small = load_image(big, draft_size=256)
    assert min(small.size) >= 256 and small.size[0] < 4000
    assert load_image(big).size == (4000, 3000)


def test_a_batch_goes_on_with_the_rest(lite0, corpus):
    order = ["zero", "cmyk", "truncated", "text", "png16", "huge", "gif", "rgba", "missing", "exif"]
    results = lite0.predict([str(corpus[k]) for k in order], errors="collect")
    kinds = [type(r) for r in results]
    assert kinds == [Failure, Prediction, Failure, Failure, Prediction, Failure, Prediction, Prediction, Failure, Prediction]
    assert [r.source for r in results] == [str(corpus[k]) for k in order]
    assert results[2].error == "CorruptImage" and results[8].error == "ImageNotFound"
    with pytest.raises(CorruptImage):
        lite0.predict([str(corpus["cmyk"]), str(corpus["truncated"])])


def test_directories_expand_to_their_images(corpus, tmp_path):
    (tmp_path / "readme.txt").write_text("not an image suffix")
    sub = tmp_path / "sub"
    sub.mkdir()
    Image.new("RGB", (8, 8)).save(sub / "inner.png")
    flat = find_images([tmp_path])
    assert str(tmp_path / "readme.txt") not in flat and str(corpus["cmyk"]) in flat
    assert str(sub / "inner.png") not in flat
    assert str(sub / "inner.png") in find_images([tmp_path], recursive=True)
