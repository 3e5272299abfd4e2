"""What the benchmark scripts share: the photo set, the machine line, fair timing, agreement, accuracy.

Timing interleaves the contenders round by round (A B C A B C ...) and reports medians, so a
neighbour's load on this shared machine hits every contender alike instead of whichever ran last.
The photo set is $TOPFIVE_EVAL_DIR, else ../shared/eval beside the checkout.
"""

from __future__ import annotations

import csv
import io
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

from topfive.decode.images import load_image
from topfive.machine import cpu_description, load_average

ROOT = Path(__file__).resolve().parents[1]
EVAL = Path(os.environ.get("TOPFIVE_EVAL_DIR") or os.environ.get("TOPFIVE_EVAL") or ROOT.parent / "shared" / "eval")
MODELS_DIR = Path(os.environ.get("TOPFIVE_MODELS_DIR") or ROOT.parent / "shared" / "models")


def photo_set(limit: int | None = None, folder: Path = EVAL) -> list[tuple[str, set[int]]]:
    """(path, accepted ImageNet indices) for the eval photos, in manifest order; `limit` of them
    spread evenly over the set."""
    from topfive.sampling import spread_evenly

    rows = []
    with open(folder / "manifest.csv", newline="") as f:
        for row in csv.DictReader(f):
            rows.append((str(folder / row["file"]), {int(i) for i in row["accepted_imagenet_indices"].split()}))
    return spread_evenly(rows, limit) if limit else rows


def machine() -> str:
    """One line: the CPU, torch and its threads, and how busy the machine was."""
    return (
        f"{cpu_description()}, torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
        f"{torch.get_num_threads()} intra-op threads; {load_average()}"
    )


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


def run_all(runtime, tensors: torch.Tensor, batch: int = 16) -> torch.Tensor:
    """Probabilities for a stack of preprocessed photos, `batch` at a time."""
    return torch.cat([runtime.probabilities(tensors[i : i + batch]) for i in range(0, len(tensors), batch)])


def top1_agreement(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.argmax(-1) == b.argmax(-1)).float().mean())


def accuracy(probs: torch.Tensor, accepted: list[set[int]]) -> float:
    top = probs.argmax(-1).tolist()
    return sum(t in ok for t, ok in zip(top, accepted)) / len(accepted)


def small_jpeg(path: str, side: int = 500) -> bytes:
    """The photo with its longer side brought to `side` px (never enlarged), JPEG q90, in memory."""
    img = load_image(path)
    img.thumbnail((side, side))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()
