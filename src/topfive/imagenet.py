"""The 1000 ImageNet-1k classes: index, WordNet id and name.

The table ships as `data/imagenet_classes.tsv`, made by `scripts/make_imagenet_classes.py`
(wnids from timm's synset list, names from torchvision's weights metadata).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    wnid: str
    name: str


@lru_cache(maxsize=1)
def classes() -> tuple[ImageNetClass, ...]:
    text = resources.files("topfive").joinpath("data/imagenet_classes.tsv").read_text()
    rows = [line.split("\t") for line in text.splitlines()[1:]]
    table = tuple(ImageNetClass(int(i), wnid, name) for i, wnid, name in rows)
    assert [c.index for c in table] == list(range(1000)), "imagenet_classes.tsv is damaged"
    return table


@lru_cache(maxsize=1)
def by_wnid() -> dict[str, ImageNetClass]:
    return {c.wnid: c for c in classes()}
