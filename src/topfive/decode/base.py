"""What every decoder is: sources in, one preprocessed batch and a per-source error out."""

from __future__ import annotations

import os
from concurrent.futures import Executor
from typing import Callable, Protocol, Sequence, TypeVar

import torch

from topfive.decode.images import ImageError, ImageSource
from topfive.transforms import PreprocessSpec

T = TypeVar("T")
R = TypeVar("R")


class Decoder(Protocol):
    """`decoder(sources)` -> (batch, errors).

    batch: the sources that worked, in order, preprocessed to `spec` (its dtype, channel order and
    layout) and stacked on the decoder's device; None when none worked. errors: per source its
    ImageError, or None where it is in the batch."""

    spec: PreprocessSpec

    def __call__(self, sources: Sequence[ImageSource]) -> tuple[torch.Tensor | None, list[ImageError | None]]: ...


def default_workers() -> int:
    """Decoding threads when none are asked for: one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def map_in_parts(fn: Callable[[T], R], items: Sequence[T], pool: Executor | None, workers: int) -> list[R]:
    """[fn(item) for item in items], in `pool` as at most `workers` tasks of consecutive items:
    for work of well under a millisecond per item a task each would cost more than the work."""
    if pool is None or workers <= 1 or len(items) <= 1:
        return [fn(item) for item in items]
    step = -(-len(items) // workers)
    parts = pool.map(lambda k: [fn(item) for item in items[k : k + step]], range(0, len(items), step))
    return [r for part in parts for r in part]
