"""Time boxes, timed repetitions and the synthetic inputs they run on."""

from __future__ import annotations

import time

# Time boxes: (warm-up reps, warm-up seconds, min reps, budget seconds, hard cap seconds); and how
# many photos are decoded / classified end to end.
FULL = {"latency": (5, 1.0, 20, 3.0, 20.0), "throughput": (2, 1.0, 3, 3.0, 20.0), "decode": 32, "e2e": 64}
QUICK = {"latency": (1, 0.2, 3, 0.2, 2.0), "throughput": (1, 0.2, 1, 0.2, 2.0), "decode": 4, "e2e": 8}


def time_boxes(quick: bool) -> dict:
    return QUICK if quick else FULL


def timed_calls(fn, x, box, sync) -> list[float]:
    """Seconds per call after warm-up; stops once it has `min_reps` and `budget` seconds, or at the cap."""
    warm_reps, warm_s, min_reps, budget, cap = box
    start = time.perf_counter()
    for _ in range(warm_reps):
        fn(x)
        sync()
        if time.perf_counter() - start > warm_s:
            break
    times: list[float] = []
    start = time.perf_counter()
    while True:
        t = time.perf_counter()
        fn(x)
        sync()
        times.append(time.perf_counter() - t)
        elapsed = time.perf_counter() - start
        if (len(times) >= min_reps and elapsed >= budget) or (elapsed >= cap and len(times) >= 1):
            return times


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default), q in [0, 1]."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def make_input(spec, batch: int):
    """Synthetic input of the model's shape and dtype: speed does not depend on pixel values."""
    import torch

    g = torch.Generator().manual_seed(0)
    shape = (batch, 3, spec.size, spec.size) if spec.layout == "NCHW" else (batch, spec.size, spec.size, 3)
    if spec.dtype == "uint8":
        return torch.randint(0, 256, shape, dtype=torch.uint8, generator=g)
    return torch.randn(shape, generator=g)
