"""One preprocessing implementation: equal to torchvision's own weights.transforms()."""

import random

import numpy as np
import pytest
import torch
import torchvision.models as M
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as F

from topfive.transforms import AxisPlan, PreprocessSpec, central_box, plan, plan_axes, preprocess, spec_from_torchvision
from topfive.models import resolve


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    smooth = np.cumsum(rng.integers(-6, 7, size=(333, 517, 3)), axis=1) % 256
    return Image.fromarray(smooth.astype(np.uint8))


@pytest.mark.parametrize(
    "weights",
    [
        M.ResNet50_Weights.IMAGENET1K_V1,  # 256 -> 224 bilinear
        M.ResNet50_Weights.IMAGENET1K_V2,  # 232 -> 224
        M.Inception_V3_Weights.IMAGENET1K_V1,  # 342 -> 299
        M.EfficientNet_B3_Weights.IMAGENET1K_V1,  # 320 -> 300 bicubic
        M.ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1,  # 384 -> 384 bicubic
        M.ConvNeXt_Tiny_Weights.IMAGENET1K_V1,  # 236 -> 224
    ],
)
def test_equals_torchvision_presets(photo, weights):
    preset = weights.transforms()
    spec = spec_from_torchvision(preset)
    ours = preprocess(photo, spec)
    theirs = preset(photo)
    assert ours.shape == theirs.shape == (3, spec.size, spec.size)
    assert torch.equal(ours, theirs)


def test_lite_spec_is_bicubic_0875_and_minus_one_to_one(photo):
    spec = resolve("efficientnet_lite1").info.preprocess
    assert (spec.size, spec.resize, spec.interpolation) == (240, 274, "bicubic")
    x = preprocess(photo, spec)
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.5 < 0.5 < x.max()


def test_spec_validates_its_fields():
    with pytest.raises(ValueError, match="crop rule"):
        PreprocessSpec(size=224, rule="stretch")
    with pytest.raises(ValueError, match="interpolation"):
        PreprocessSpec(size=224, resize=256, interpolation="lanczos9")


@pytest.mark.parametrize("interpolation", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("resize, size", [(256, 224), (160, 224), (224, 224)], ids=["crops", "pads", "exact"])
def test_shorter_side_equals_torchvision_resize_then_center_crop(photo, interpolation, resize, size):
    """Also where the crop is larger than the resized image: torchvision pads zeros, as must we."""
    spec = PreprocessSpec(size=size, resize=resize, interpolation=interpolation, dtype="uint8")
    mode = InterpolationMode(interpolation)
    for img in (photo, photo.transpose(Image.Transpose.ROTATE_90), photo.resize((90, 700))):
        theirs = F.pil_to_tensor(F.center_crop(F.resize(img, [resize], interpolation=mode), [size]))
        assert torch.equal(preprocess(img, spec), theirs)


@pytest.mark.parametrize("fraction", [0.875, 0.5, 1.0])
def test_central_fraction_crops_first_then_resizes_the_square(photo, fraction):
    """TF-slim's eval crop: the filters must not read pixels outside the central box."""
    spec = PreprocessSpec(size=224, rule="central_fraction", fraction=fraction, interpolation="bilinear", dtype="uint8")
    square = photo.crop(central_box(photo.size, fraction)).resize((224, 224), Image.Resampling.BILINEAR)
    assert torch.equal(preprocess(photo, spec), F.pil_to_tensor(square))
    if fraction < 1:  # Pillow's resize(box=...) reads outside the box: not the same pixels
        boxed = photo.resize((224, 224), Image.Resampling.BILINEAR, box=central_box(photo.size, fraction))
        assert not torch.equal(preprocess(photo, spec), F.pil_to_tensor(boxed))


def test_plan_of_one_image():
    x, y = plan(517, 333, PreprocessSpec(size=224, resize=256))
    assert (x, y) == (AxisPlan(0, 517, 397, 86), AxisPlan(0, 333, 256, 16))


def test_plan_axes_follow_torchvision_and_tf_slim_geometry():
    from torchvision.transforms.functional import _compute_resized_output_size

    rng = random.Random(0)
    sizes = [(rng.randint(1, 6000), rng.randint(1, 6000)) for _ in range(3000)] + [(w, h) for w in range(1, 60) for h in range(1, 60)]
    widths, heights = [w for w, _ in sizes], [h for _, h in sizes]
    for resize, size in ((256, 224), (342, 299), (232, 224), (200, 224)):  # the last crop pads
        x, y = plan_axes(widths, heights, PreprocessSpec(size=size, resize=resize))
        for k, (w, h) in enumerate(sizes):
            new_h, new_w = _compute_resized_output_size((h, w), [resize])
            assert (x[2, k], y[2, k]) == (new_w, new_h)
            # torchvision's center_crop: top = int(round((H - size) / 2)), padding (H < size) split floor-first
            for axis, n in ((x, new_w), (y, new_h)):
                assert axis[3, k] == (int(round((n - size) / 2.0)) if n >= size else -((size - n) // 2))
            assert (x[0, k], x[1, k], y[0, k], y[1, k]) == (0, w, 0, h)
    for fraction in (0.875, 0.5, 1.0):
        x, y = plan_axes(widths, heights, PreprocessSpec(size=224, rule="central_fraction", fraction=fraction))
        for k, (w, h) in enumerate(sizes):
            left, top = int((w - w * fraction) / 2), int((h - h * fraction) / 2)  # tf.image.central_crop
            right, bottom = w - left, h - top
            assert central_box((w, h), fraction) == (left, top, right, bottom)
            assert (x[:, k].tolist(), y[:, k].tolist()) == ([left, right - left, 224, 0], [top, bottom - top, 224, 0])
