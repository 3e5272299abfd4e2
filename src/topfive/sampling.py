"""Choosing a few items from many."""

from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


def spread_evenly(items: Sequence[T], n: int) -> list[T]:
    """`n` items spread evenly over `items` (every n-th one from the first), in order; all of them
    when there are no more than `n`. Over a sorted list of photos this takes every category."""
    if n <= 0:
        return []
    step = max(1, len(items) // n)
    return list(items[::step][:n])
