"""Corrupted copies of an image, after Hendrycks & Dietterich 2019 (ImageNet-C), made in memory.

Five of ImageNet-C's fifteen kinds, each at severities 1-5 with ImageNet-C's own parameters
(`make_imagenet_c.py` of github.com/hendrycks/robustness). They are applied, as ImageNet-C applies
them to its 224 x 224 centre crops, to the uint8 RGB square a model sees after its own resize and
crop (topfive.eval.robustness takes it from the model's decoder), values on [0, 1]:

- noise: gaussian_noise, x + N(0, c^2), clipped; c = .08 .12 .18 .26 .38.
  torchvision.transforms.v2.functional.gaussian_noise, seeded (see `seed_for`).
- blur: gaussian_blur, sigma = 1 2 3 4 6. torchvision's gaussian_blur with the kernel skimage's
  `gaussian` (which ImageNet-C calls) uses, radius int(4 sigma + 0.5), applied as its two 1-D passes
  (the same kernel, 2r + 1 times fewer multiplications than the 2-D one). Deviation: torchvision pads
  by reflection, skimage repeats the edge pixel; only the outer 4 sigma pixels differ.
- jpeg: jpeg_compression, quality 25 18 15 10 7. torchvision's jpeg (libjpeg through
  torchvision.io, ImageNet-C saves with Pillow's libjpeg).
- brightness: adds c = .1 .2 .3 .4 .5 to V in HSV (clipped), as ImageNet-C's code; written here in
  closed form (H and S unchanged, so each pixel's RGB scales by V'/V), because torchvision's
  adjust_brightness multiplies all of RGB by one factor instead.
- contrast: (x - mean) * c + mean with c = .4 .3 .2 .1 .05 and each channel's own mean over the
  image, as ImageNet-C's code; torchvision's adjust_contrast blends with the mean grey level instead.

Back to uint8 by rounding to the nearest level (ImageNet-C's np.uint8 truncates: on average half a
level darker). Only noise is random: its generator is seeded from (seed, photo, kind, severity), so
every model sees the same noise wherever their squares have the same size, and a rerun the same.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import torch
from torchvision.transforms.v2 import functional as F

SEVERITIES = (1, 2, 3, 4, 5)
DEFAULT_SEED = 0
CLEAN = "clean"  # the kind of the uncorrupted rows, at severity 0


def _noise(x: torch.Tensor, c: float, seed: int) -> torch.Tensor:
    with torch.random.fork_rng(devices=[]):  # a seeded draw that leaves the caller's generator as it was
        torch.manual_seed(seed)
        return F.gaussian_noise(x, mean=0.0, sigma=c, clip=True)


def blur_radius(sigma: float) -> int:
    """skimage.filters.gaussian's kernel radius (truncate=4): int(4 * sigma + 0.5)."""
    return int(4 * sigma + 0.5)


def _blur(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    k = 2 * blur_radius(sigma) + 1
    x = F.gaussian_blur(x, kernel_size=[k, 1], sigma=[sigma, sigma])  # along the width
    return F.gaussian_blur(x, kernel_size=[1, k], sigma=[sigma, sigma])  # then the height


def _jpeg(x: torch.Tensor, quality: int, seed: int) -> torch.Tensor:
    return F.jpeg(x, quality=quality)


def _brightness(x: torch.Tensor, c: float, seed: int) -> torch.Tensor:
    v = x.amax(dim=-3, keepdim=True)
    shifted = (v + c).clamp(0, 1)
    # HSV -> RGB is V * (something of H and S): with H, S fixed RGB scales by V'/V; black (S = 0) turns grey V'
    return torch.where(v > 0, x * (shifted / v.clamp_min(1e-12)), shifted.expand_as(x))


def _contrast(x: torch.Tensor, c: float, seed: int) -> torch.Tensor:
    means = x.mean(dim=(-2, -1), keepdim=True)
    return ((x - means) * c + means).clamp(0, 1)


@dataclass(frozen=True)
class Corruption:
    name: str  # the word of --corruptions
    imagenet_c: str  # ImageNet-C's name of the kind
    parameter: str  # what `levels` are
    levels: tuple  # the parameter at severities 1..5
    implementation: str
    apply: Callable  # (image, level, seed) -> image; a float image on [0, 1] unless `on_uint8`
    on_uint8: bool = False

    def level(self, severity: int):
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be one of 1-5, not {severity!r}")
        return self.levels[severity - 1]


KINDS = {c.name: c for c in (
    Corruption("noise", "gaussian_noise", "sigma on [0, 1] pixels", (0.08, 0.12, 0.18, 0.26, 0.38),
               "torchvision.transforms.v2.functional.gaussian_noise", _noise),
    Corruption("blur", "gaussian_blur", "sigma in pixels", (1, 2, 3, 4, 6),
               "torchvision.transforms.v2.functional.gaussian_blur, separable, radius int(4 sigma + 0.5)", _blur),
    Corruption("jpeg", "jpeg_compression", "JPEG quality", (25, 18, 15, 10, 7),
               "torchvision.transforms.v2.functional.jpeg", _jpeg, on_uint8=True),
    Corruption("brightness", "brightness", "added to V in HSV", (0.1, 0.2, 0.3, 0.4, 0.5),
               "ImageNet-C's formula (HSV value shift, closed form)", _brightness),
    Corruption("contrast", "contrast", "scale about each channel's mean", (0.4, 0.3, 0.2, 0.1, 0.05),
               "ImageNet-C's formula (per-channel mean)", _contrast),
)}
ALIASES = {c.imagenet_c: c.name for c in KINDS.values()} | {"all": "all"}


def seed_for(seed: int, file: str, kind: str, severity: int) -> int:
    """The generator seed of one corrupted copy: the same for every model and every run."""
    digest = hashlib.sha256(f"{seed}\0{file}\0{kind}\0{severity}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def corrupt(image: torch.Tensor, kind: str, severity: int, seed: int = 0) -> torch.Tensor:
    """A corrupted copy of a uint8 RGB image (3, H, W): uint8, the same size. Severity 0 is the image."""
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"corrupt takes a uint8 RGB image (3, H, W), not {image.dtype} {tuple(image.shape)}")
    if kind == CLEAN or severity == 0:
        return image
    corruption = KINDS[kind]
    level = corruption.level(severity)
    if corruption.on_uint8:
        return corruption.apply(image, level, seed)
    out = corruption.apply(image.to(torch.float32) / 255, level, seed)
    return (out * 255).round_().clamp_(0, 255).to(torch.uint8)


@dataclass(frozen=True)
class CorruptionPlan:
    """What --corruptions asked for: each kind with its severities, in the order given."""

    kinds: tuple[tuple[str, tuple[int, ...]], ...]

    def cells(self) -> list[tuple[str, int]]:
        """(kind, severity) of every corrupted copy, after the clean one (CLEAN, 0)."""
        return [(CLEAN, 0)] + [(k, s) for k, severities in self.kinds for s in severities]

    def text(self) -> str:
        return ",".join(f"{k}:{','.join(map(str, s))}" for k, s in self.kinds)


def parse_corruptions(text: str) -> CorruptionPlan:
    """`noise,blur:1,3,jpeg`: kinds separated by commas, a kind's severities after a colon (the
    numbers that follow belong to it), all five where none are given; `all[:S,...]` is every kind.
    ImageNet-C's names (gaussian_noise, ...) are accepted too. ValueError names what is wrong."""
    chosen: dict[str, list[int]] = {}
    current = None
    for word in (w.strip() for w in str(text).split(",")):
        if not word:
            raise ValueError(f"{text!r}: an empty item between commas")
        name, colon, first = word.partition(":")
        if name.isdigit() and not colon:
            if current is None:
                raise ValueError(f"{text!r}: severity {name} before any kind")
            chosen_for = [current] if current != "all" else list(KINDS)
            for k in chosen_for:
                chosen[k].append(_severity(name, text))
            continue
        kind = ALIASES.get(name.lower(), name.lower())
        if kind not in KINDS and kind != "all":
            raise ValueError(f"{text!r}: unknown corruption {name!r} (one of {', '.join(KINDS)}, or all)")
        current = kind
        for k in list(KINDS) if kind == "all" else [kind]:
            chosen[k] = [_severity(first, text)] if colon else []
    kinds = tuple((k, tuple(sorted(set(s))) if s else SEVERITIES) for k, s in chosen.items())
    return CorruptionPlan(kinds)


def _severity(word: str, text: str) -> int:
    if not word.isdigit() or int(word) not in SEVERITIES:
        raise ValueError(f"{text!r}: severity {word!r} is not one of 1-5")
    return int(word)


def parameters() -> dict[str, dict]:
    """Every kind's parameters, as recorded in robustness.json (a change refuses a resume)."""
    return {c.name: {"imagenet_c": c.imagenet_c, "parameter": c.parameter, "levels": list(c.levels),
                     "implementation": c.implementation} for c in KINDS.values()}
