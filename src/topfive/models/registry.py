"""Every kind of model entry in one place: a name -> its entry, and the list of built-in models.

The only module that knows all the kinds (torchvision, EfficientNet-Lite, model cards); nothing in
`topfive.models` imports it, so a new kind is one new module plus a line here.
"""

from __future__ import annotations

from topfive.models.cards import builtin_card, builtin_entries, card_entry, is_card_path
from topfive.models.entry import ModelEntry
from topfive.models.lite import LITE_NAMES, lite_entries, lite_entry
from topfive.models.torchvision_models import torchvision_entries, torchvision_entry


def resolve(name: str) -> ModelEntry:
    """Accepts `resnet50`, `resnet50:IMAGENET1K_V1`, `ResNet50_Weights.IMAGENET1K_V1`,
    `efficientnet_lite0`, a shipped card's short name, or the path of a model card (or of a model
    file next to its card)."""
    name = name.strip()
    lite = lite_entry(name)
    if lite is not None:
        return lite
    if is_card_path(name) or builtin_card(name) is not None:
        return card_entry(name)
    return torchvision_entry(name, other_names=LITE_NAMES)


def all_entries(include_all_weights: bool = False) -> list[ModelEntry]:
    """Every built-in model: torchvision's ImageNet-1k models (default weights, or all), EfficientNet-Lite
    and the models of the model cards shipped with topfive."""
    return [*torchvision_entries(include_all_weights), *lite_entries(), *builtin_entries()]
