"""The one preprocessing implementation, checked against pixels computed by hand on tiny images."""

import numpy as np
import pytest
import torch
from conftest import SHARED
from PIL import Image

from topfive.models.cards import load_card
from topfive.transforms import PreprocessSpec, central_box, preprocess, stack


def ramp(w, h):
    """An RGB image whose pixel (x, y) is (x, y, x + 10 * y): every pixel tells where it came from."""
    a = np.zeros((h, w, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:h, 0:w]
    a[..., 0], a[..., 1], a[..., 2] = xs, ys, xs + 10 * ys
    return Image.fromarray(a), a


def test_central_fraction_uint8_rgb_nhwc_exact_pixels():
    img, a = ramp(8, 8)
    spec = PreprocessSpec(size=4, rule="central_fraction", fraction=0.5, dtype="uint8", layout="NHWC")
    x = preprocess(img, spec)
    assert x.dtype == torch.uint8 and x.shape == (3, 4, 4)
    # margin int((8 - 4) / 2) = 2 on each side; 4x4 -> 4x4 is no resize: rows and columns 2..5, as they are
    assert np.array_equal(x.permute(1, 2, 0).numpy(), a[2:6, 2:6])
    batch = stack([x, x], spec)
    assert batch.shape == (2, 4, 4, 3) and np.array_equal(batch[1].numpy(), a[2:6, 2:6])


def test_central_fraction_follows_tf_central_crop_margins():
    # tf.image.central_crop: margin = int((n - n * f) / 2); 300 * 0.875 keeps 264 (18 each side), not 262
    assert central_box((300, 200), 0.875) == (18, 12, 282, 188)
    assert central_box((7, 7), 1.0) == (0, 0, 7, 7)


def test_central_fraction_bilinear_keeps_only_the_centre():
    # 16 x 8 image: a red frame (2 px left/right, 1 px top/bottom) around a uniform blue centre.
    # fraction 0.75 removes exactly the frame: margins int((16-12)/2) = 2 and int((8-6)/2) = 1,
    # so after a bilinear (antialiased) resize every pixel is pure blue; any leak of the frame shows.
    a = np.zeros((8, 16, 3), dtype=np.uint8)
    a[...] = (255, 0, 0)
    a[1:7, 2:14] = (0, 0, 200)
    spec = PreprocessSpec(size=3, rule="central_fraction", fraction=0.75, interpolation="bilinear", dtype="uint8")
    x = preprocess(Image.fromarray(a), spec)
    assert x.shape == (3, 3, 3)
    assert x[0].eq(0).all() and x[1].eq(0).all() and x[2].eq(200).all()


def test_shorter_side_float_rgb_exact_values():
    img, a = ramp(6, 4)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    spec = PreprocessSpec(size=2, resize=4, mean=mean, std=std)  # shorter side already 4: no resize
    x = preprocess(img, spec)
    # centre crop 2 of 6 x 4: left (6-2)/2 = 2, top (4-2)/2 = 1 -> rows 1..2, columns 2..3
    patch = a[1:3, 2:4].astype(np.float64)
    expected = (patch / 255 - np.array(mean)) / np.array(std)
    assert x.dtype == torch.float32 and x.shape == (3, 2, 2)
    assert np.allclose(x.permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_shorter_side_resize_then_crop_geometry():
    # 8 x 4 -> shorter side 2 -> 4 x 2 (bilinear, antialiased), centre crop 2: columns 1..2 of the
    # 4 x 2, i.e. the 2x2 blocks of the original at columns 2..5; a uniform block per colour checks it
    a = np.zeros((4, 8, 3), dtype=np.uint8)
    a[:, :2] = (255, 255, 255)
    a[:, 2:6] = (40, 80, 120)
    a[:, 6:] = (255, 255, 255)
    spec = PreprocessSpec(size=2, resize=2, interpolation="bilinear", dtype="uint8")
    x = preprocess(Image.fromarray(a), spec)
    assert x.shape == (3, 2, 2)
    # the bilinear filter of a 2x downscale spans 4 source columns: output column 1 of 4 (source
    # centre 3) reads columns 1..4 with weights 1/8, 3/8, 3/8, 1/8 -> 1/8 of white leaks in
    leak = lambda c: round(255 / 8 + c * 7 / 8)  # noqa: E731
    assert x[:, 0, 0].tolist() == [leak(40), leak(80), leak(120)]
    assert x[:, 1, 1].tolist() == [leak(40), leak(80), leak(120)]


def test_bgr_float_mean_in_output_channel_order():
    a = np.zeros((3, 3, 3), dtype=np.uint8)
    a[...] = (10, 20, 30)  # R, G, B
    spec = PreprocessSpec(size=3, resize=3, channels="BGR", scale=1.0, mean=(104, 117, 123), std=(1, 1, 1))
    x = preprocess(Image.fromarray(a), spec)
    assert x[:, 1, 1].tolist() == [30 - 104, 20 - 117, 10 - 123]


def test_bgr_uint8_flips_channels_only():
    img, a = ramp(4, 4)
    spec = PreprocessSpec(size=4, rule="central_fraction", fraction=1.0, channels="BGR", dtype="uint8", layout="NHWC")
    x = stack([preprocess(img, spec)], spec)[0].numpy()
    assert np.array_equal(x, a[..., ::-1])


def test_cards_map_into_specs():
    sq = load_card(SHARED / "models" / "squeezenet1.1-fp16.xml.json").preprocess
    assert (sq.rule, sq.resize, sq.size, sq.channels, sq.scale, sq.mean, sq.std, sq.dtype, sq.layout) == (
        "shorter_side",
        256,
        227,
        "BGR",
        1.0,
        (104.0, 117.0, 123.0),
        (1.0, 1.0, 1.0),
        "float32",
        "NCHW",
    )
    tfl = load_card(SHARED / "models" / "mobilenet_v2_1.0_224_quant.tflite.json").preprocess
    assert (tfl.rule, tfl.fraction, tfl.size, tfl.interpolation, tfl.dtype, tfl.layout) == (
        "central_fraction",
        0.875,
        224,
        "bilinear",
        "uint8",
        "NHWC",
    )
    onx = load_card(SHARED / "models" / "mobilenetv2-12-int8.onnx.json").preprocess
    assert onx.scale == pytest.approx(1 / 255) and onx.mean == (0.485, 0.456, 0.406) and onx.resize == 256
