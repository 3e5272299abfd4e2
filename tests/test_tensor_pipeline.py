"""The tensor decode pipeline (torchvision decode + batched resize) against the Pillow reference path."""

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch.utils._python_dispatch import TorchDispatchMode

from conftest import EVAL
from topfive.decode import make_decoder
from topfive.decode.images import CorruptImage, ImageNotFound, ImageTooLarge, NotAnImage, load_image
from topfive.decode.resample import resize_crop, size_groups
from topfive.decode.tensor import TensorDecoder, read_header
from topfive.models import resolve
from topfive.predict import Classifier, Failure, Prediction
from topfive.transforms import PreprocessSpec, preprocess, stack

ALL = sorted(EVAL.glob("images/*/*.jpg"))
# a spread of sizes: landscape, portrait, ~2 MP, small
PHOTOS = [str(p) for p in ALL[::95]]
LITE0 = resolve("efficientnet_lite0").info.preprocess
RESNET = resolve("resnet50").info.preprocess  # bilinear, 256 -> 224
TF_SLIM = PreprocessSpec(size=224, rule="central_fraction", fraction=0.875, mean=(0, 0, 0), std=(1, 1, 1),
                         channels="BGR", dtype="uint8", layout="NHWC")


def tensor_decode(sources, spec):
    return make_decoder("tensor", spec)(sources)


def reference(sources, spec):
    return stack([preprocess(load_image(s), spec) for s in sources], spec)


def as_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1).contiguous()


def jpeg_bytes(img: Image.Image, **kw) -> bytes:
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=92, **kw)
    return out.getvalue()


CROP_PADS = PreprocessSpec(size=224, resize=160, interpolation="bicubic")  # the crop is larger than the resized image


@pytest.mark.parametrize("spec", [LITE0, RESNET, TF_SLIM, CROP_PADS],
                         ids=["lite0-bicubic", "resnet-bilinear", "tfslim-central", "crop-pads"])
def test_geometry_is_pillows_pixel_for_pixel(spec):
    """Same decoded pixels in -> the reference path's exact uint8 pixels out, for images of
    assorted shapes (both of Pillow's pass orders, up- and downscaling) in one batch."""
    rng = np.random.default_rng(0)
    sizes = [(333, 517), (517, 333), (90, 700), (700, 120), (150, 160), (1200, 900), (224, 224), (260, 300)]
    imgs = [Image.fromarray((np.cumsum(rng.integers(-9, 10, (h, w, 3)), axis=1) % 256).astype(np.uint8)) for h, w in sizes]
    uint8 = PreprocessSpec(**{**spec.__dict__, "dtype": "uint8", "layout": "NCHW", "channels": "RGB"})
    ours = resize_crop([as_tensor(i) for i in imgs], uint8)
    theirs = torch.stack([preprocess(i, uint8) for i in imgs])
    assert ours.shape == theirs.shape == (len(sizes), 3, spec.size, spec.size)
    assert torch.equal(ours, theirs)
    small = imgs[4].resize((60, 45))  # alone: a batch that only enlarges (4x)
    assert torch.equal(resize_crop([as_tensor(small)], uint8)[0], preprocess(small, uint8))


@pytest.mark.parametrize("spec", [LITE0, TF_SLIM], ids=["lite0", "tfslim-nhwc-bgr-uint8"])
def test_real_photos_match_the_pillow_path(spec):
    ours, errors = tensor_decode(PHOTOS, spec)
    ref = reference(PHOTOS, spec)
    assert errors == [None] * len(PHOTOS)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype
    # Measured on all 569 eval photos: identical (libjpeg-turbo decodes as Pillow's does). Allow a
    # decoder difference of a level on a few pixels, no more.
    step = 1 if spec.dtype == "uint8" else 1 / 255 / min(spec.std)
    diff = (ours.double() - ref.double()).abs()
    assert diff.max() <= step + 1e-6
    assert (diff > 1e-6).double().mean() < 1e-3


def test_same_top5_as_the_pillow_path_on_lite0(lite0):
    sources = PHOTOS[:5]
    tensor = Classifier("efficientnet_lite0", runtime=lite0.runtime, decode="tensor", batch_size=5)
    ours, theirs = tensor.predict(sources), lite0.predict(sources)
    for a, b in zip(ours, theirs):
        assert [c.index for c in a.top] == [c.index for c in b.top]
        assert abs(a.top[0].probability - b.top[0].probability) < 1e-4


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_does(orientation):
    rng = np.random.default_rng(orientation)
    img = Image.fromarray((np.cumsum(rng.integers(-9, 10, (300, 420, 3)), axis=0) % 256).astype(np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = jpeg_bytes(img, exif=exif.tobytes())
    header = read_header(data)
    assert (header.width, header.height, header.orientation) == (420, 300, orientation)
    upright = load_image(data)
    assert upright.size == ((300, 420) if orientation >= 5 else (420, 300))
    assert np.array_equal(np.asarray(upright), np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data)))))
    spec = PreprocessSpec(**{**LITE0.__dict__, "dtype": "uint8"})
    ours, _ = tensor_decode([data], spec)
    assert torch.equal(ours[0], preprocess(upright, spec))


def test_png_cmyk_and_pil_images_go_through_the_reference_path(tmp_path):
    photo = load_image(PHOTOS[1])
    png = tmp_path / "photo.png"
    photo.save(png)
    cmyk = tmp_path / "cmyk.jpg"
    photo.convert("CMYK").save(cmyk, quality=92)
    sources = [str(png), str(cmyk), photo, PHOTOS[0]]
    ours, errors = tensor_decode(sources, LITE0)
    assert errors == [None] * 4
    assert torch.equal(ours, reference(sources, LITE0))
    alone, _ = tensor_decode([str(png)], TF_SLIM)  # nothing for decode_jpeg at all
    assert torch.equal(alone, reference([str(png)], TF_SLIM))


def test_bad_inputs_are_typed_errors_naming_the_file_and_the_batch_goes_on(tmp_path):
    missing = str(tmp_path / "missing.jpg")
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    whole = open(PHOTOS[0], "rb").read()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    huge = bytearray(jpeg_bytes(Image.new("RGB", (64, 48))))  # header says 30000 x 30000
    sof = next(i for i in range(2, len(huge)) if huge[i] == 0xFF and huge[i + 1] in (0xC0, 0xC2))
    huge[sof + 5 : sof + 9] = (30000).to_bytes(2, "big") * 2
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(bytes(huge))
    sources = [PHOTOS[0], missing, str(text), str(truncated), str(empty), str(bomb), PHOTOS[2]]
    batch, errors = tensor_decode(sources, LITE0)
    kinds = [type(e) if e else None for e in errors]
    assert kinds == [None, ImageNotFound, NotAnImage, CorruptImage, NotAnImage, ImageTooLarge, None]
    for source, error in zip(sources[1:6], errors[1:6]):
        assert error.source == source and error.reason
    assert torch.equal(batch, reference([PHOTOS[0], PHOTOS[2]], LITE0))
    nothing, only = tensor_decode([missing], LITE0)
    assert nothing is None and isinstance(only[0], ImageNotFound)


def test_classifier_decode_tensor_end_to_end(tmp_path, lite0):
    missing = str(tmp_path / "missing.jpg")
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 truncated nonsense")
    sources = [PHOTOS[0], missing, PHOTOS[1], str(bad), PHOTOS[2], PHOTOS[3], PHOTOS[4]]
    tensor = Classifier("efficientnet_lite0", runtime=lite0.runtime, decode="tensor", batch_size=3, workers=1)
    pillow = Classifier("efficientnet_lite0", runtime=lite0.runtime, batch_size=3)
    ours, theirs = list(tensor.iter_predict(sources)), list(pillow.iter_predict(sources))
    assert [r.source for r in ours] == sources
    assert [type(r) for r in ours] == [Prediction, Failure, Prediction, Failure, Prediction, Prediction, Prediction]
    assert [(r.error, r.reason) for r in ours if isinstance(r, Failure)] == [
        (r.error, r.reason) for r in theirs if isinstance(r, Failure)
    ]
    for a, b in zip(ours, theirs):
        if isinstance(a, Prediction):
            assert [c.index for c in a.top] == [c.index for c in b.top]
    with pytest.raises(ImageNotFound, match="missing.jpg"):
        tensor.predict([PHOTOS[0], missing])


def test_classifier_decode_option_is_checked_and_default_unchanged(lite0):
    assert lite0.decode == "pillow"
    with pytest.raises(ValueError, match="decode"):
        Classifier("efficientnet_lite0", runtime=lite0.runtime, decode="nvjpeg")
    with pytest.raises(ValueError, match="draft"):
        Classifier("efficientnet_lite0", runtime=lite0.runtime, decode="tensor", draft=True)


# Operations that only make a new view of existing memory: no kernel runs for them on a GPU.
VIEW_OPS = {"view", "_unsafe_view", "reshape", "as_strided", "permute", "unsqueeze", "squeeze", "expand", "slice",
            "select", "transpose", "t", "unbind", "alias", "lift_fresh", "detach"}


class OperationCount(TorchDispatchMode):
    """Records the name of each tensor operation dispatched while it is active."""

    def __init__(self):
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))

    def kernels(self) -> list[str]:
        return sorted(op for op in self.ops if op not in VIEW_OPS)


def test_resize_work_does_not_grow_with_the_batch():
    """On a GPU each tensor operation costs the calling thread a dispatch and a launch whatever its
    size: resize_crop must issue the same operations for 8 images as for 32 of the same sizes,
    views aside, and never wait for the device to read a value back (on the meta device, which
    holds no data, any such read fails)."""
    rng = np.random.default_rng(1)
    sizes = [(60, 80), (80, 60), (45, 120), (64, 64)]
    # interleaved pixels seen as (3, H, W), as torchvision's CPU decoder gives them: read in place, not copied
    images = [torch.from_numpy(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).permute(2, 0, 1) for h, w in sizes * 8]
    spec = PreprocessSpec(size=24, resize=28, dtype="uint8")
    counts = []
    for n in (8, 32):
        with OperationCount() as count:
            resize_crop(images[:n], spec)
        counts.append(count.kernels())
    assert counts[0] == counts[1]
    on_meta = resize_crop([img.to("meta") for img in images], spec)
    assert on_meta.shape == (len(images), 3, 24, 24)


def test_size_groups_bound_the_padding():
    sizes = [(3000, 4000), (400, 600), (600, 400), (410, 610), (200, 300), (3000, 4000)]
    groups = size_groups(sizes)
    assert sorted(i for g in groups for i in g) == list(range(len(sizes)))
    for g in groups:
        held = sum(sizes[i][0] * sizes[i][1] for i in g)
        assert len(g) * max(sizes[i][0] for i in g) * max(sizes[i][1] for i in g) <= 1.5 * held
    assert any({0, 5} <= set(g) for g in groups)  # the two 12 MP photos share a padded batch
    assert len(groups) > 1  # and the small ones are not all padded to 12 MP


def test_size_groups_bound_the_memory():
    sizes = [(3000, 4000)] * 7 + [(500, 375)] * 3
    groups = size_groups(sizes, most=2 * 3000 * 4000)
    assert sorted(len(g) for g in groups) == [1, 2, 2, 2, 3]  # 12 MP photos two at a time
    assert size_groups([(5000, 5000)], most=100) == [[0]]  # one image alone may exceed it


def test_the_batched_decode_branch_cuda_takes_finds_the_bad_file():
    """On CUDA all JPEGs go to one decode_jpeg call; one undecodable file fails that call, and the
    pipeline must then find it and hand it to the reference path. The same branch, run on the CPU."""
    data = open(PHOTOS[0], "rb").read()
    no_scan = data[: data.find(b"\xff\xda")] + b"\xff\xd9"  # header and EOI fine, no image data
    assert read_header(no_scan) is not None
    sources = [PHOTOS[1], no_scan, PHOTOS[2], PHOTOS[3]]
    batch, errors = TensorDecoder(LITE0, batched=True)(sources)
    assert [type(e) if e else None for e in errors] == [None, CorruptImage, None, None]
    assert torch.equal(batch, reference([PHOTOS[1], PHOTOS[2], PHOTOS[3]], LITE0))
