"""Shared helpers for the benchmark scripts: the photo set, fair timing, agreement and accuracy.

Timing interleaves the contenders round by round (A B C A B C ...) and reports medians, so a
neighbour's load on this shared machine hits every contender alike instead of whichever ran last.
"""

from __future__ import annotations

import csv
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EVAL = Path(os.environ.get("TOPFIVE_EVAL", SHARED / "eval"))


def photo_set(limit: int | None = None) -> list[tuple[str, set[int]]]:
    """(path, accepted ImageNet indices) for the eval photos, in manifest order."""
    rows = []
    with open(EVAL / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            rows.append((str(EVAL / row["file"]), {int(i) for i in row["accepted_imagenet_indices"].split()}))
    if limit:
        step = max(1, len(rows) // limit)
        rows = rows[::step][:limit]
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} "
        f"({torch.backends.cpu.get_cpu_capability()}), {torch.get_num_threads()} intra-op threads; {load()}"
    )


def load() -> str:
    """The machine is shared: say how busy it was, since absolute img/s depend on it."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


def interleaved(contenders: dict[str, Callable[[], object]], rounds: int = 7, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each contender, timed round-robin."""
    for fn in contenders.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def spread(values: list[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}"


def top1_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(-1) == b.argmax(-1)).float().mean())


def accuracy(probs: torch.Tensor, accepted: list[set[int]]) -> float:
    top = probs.argmax(-1).tolist()
    return sum(t in ok for t, ok in zip(top, accepted)) / len(accepted)
