"""One preprocessing implementation: equal to torchvision's own weights.transforms()."""

import numpy as np
import pytest
import torch
import torchvision.models as M
from PIL import Image

from topfive.transforms import PreprocessSpec, preprocess, spec_from_torchvision
from topfive.models.zoo import resolve


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
