"""Which layer Grad-CAM reads, per architecture family: the last convolutional feature map before
the global pooling. Its cells are coarse (1/32 of the input for most families) but still line up
with the photo, and its channels are the ones the classifier weighs, which is what Grad-CAM needs."""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch


class NoTargetLayer(ValueError):
    """An architecture without a rule here (a vision transformer, or a family topfive does not know)."""


@dataclass(frozen=True)
class LayerRule:
    family: str
    pattern: str  # matches the whole architecture name (ModelInfo.architecture)
    path: str  # where the layer is in the module: attributes and indices, e.g. "layer4[-1]"


RULES = (
    LayerRule("ResNet, ResNeXt, Wide ResNet", r"(wide_)?resne(t|xt)\d+(_\w+)?", "layer4[-1]"),
    LayerRule("GoogLeNet", r"googlenet", "inception5b"),
    LayerRule("Inception v3", r"inception_v3", "Mixed_7c"),
    # the fifth conv's ReLU; the max-pool after it would halve the map for nothing
    LayerRule("AlexNet", r"alexnet", "features[11]"),
    LayerRule("VGG", r"vgg\d+(_bn)?", "features[-2]"),  # the last conv's ReLU, before the last max-pool
    LayerRule("SqueezeNet", r"squeezenet1_[01]", "features[-1]"),  # the last Fire module
    # the final batch norm: the ReLU after it is a function call in DenseNet.forward, not a module
    LayerRule("DenseNet", r"densenet\d+", "features.norm5"),
    LayerRule("MobileNet v2, v3", r"mobilenet_v(2|3_large|3_small)", "features[-1]"),
    LayerRule("MNASNet", r"mnasnet[\d_]+", "layers[-1]"),
    LayerRule("EfficientNet, EfficientNet v2", r"efficientnet_(b\d|v2_[sml])", "features[-1]"),
    # the head's batch norm: the head's activation module is also the stem's, so a hook on it
    # would fire twice per forward pass
    LayerRule("EfficientNet-Lite", r"efficientnet_lite\d", "_bn1"),
    LayerRule("ShuffleNet v2", r"shufflenet_v2_x[\d_]+", "conv5"),
    LayerRule("RegNet", r"regnet_[xy]_\w+", "trunk_output[-1]"),
    LayerRule("ConvNeXt", r"convnext_\w+", "features[-1]"),
)
# Their last blocks give tokens (ViT) or channels-last windows (Swin, MaxViT), not a conv map.
TRANSFORMERS = r"vit_\w+|swin_\w+|maxvit_\w+"


def rule_for(architecture: str) -> LayerRule:
    """The rule for an architecture name (`resnet50`, `efficientnet_lite0`, ...); NoTargetLayer if none."""
    for rule in RULES:
        if re.fullmatch(rule.pattern, architecture):
            return rule
    if re.fullmatch(TRANSFORMERS, architecture):
        raise NoTargetLayer(f"{architecture} is a vision transformer: Grad-CAM here needs a convolutional "
                            "feature map (ResNet, GoogLeNet, AlexNet, VGG, DenseNet, MobileNet, EfficientNet(-Lite), ...)")
    raise NoTargetLayer(f"no Grad-CAM target layer is known for architecture {architecture!r}")


def find_module(module: torch.nn.Module, path: str) -> torch.nn.Module:
    """`path` ("layer4[-1]", "features.norm5") followed from `module`."""
    for name, index in re.findall(r"\.?(\w+)|\[(-?\d+)\]", path):
        module = getattr(module, name) if name else module[int(index)]
    return module


def target_layer(architecture: str, module: torch.nn.Module) -> tuple[torch.nn.Module, str]:
    """(the layer Grad-CAM reads in `module`, its path as written in RULES)."""
    rule = rule_for(architecture)
    try:
        return find_module(module, rule.path), rule.path
    except (AttributeError, IndexError, TypeError) as e:
        raise NoTargetLayer(f"{architecture}: the module has no {rule.path} ({rule.family} rule): {e}") from e
