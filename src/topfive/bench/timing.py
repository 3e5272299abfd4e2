"""Time boxes, timed repetitions and the synthetic inputs they run on.

A timing stops as soon as its median is known well enough: at least `min_reps` calls and `min_s`
seconds, and the distribution-free 95 % confidence interval of the median (from the order
statistics) within `tolerance` of it; or at `max_s`. A fast, steady model is done in a fraction
of a second, a noisy one gets the time it needs, and every figure carries its interval.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class TimeBox:
    warm_reps: int  # warm-up calls, at most ...
    warm_s: float  # ... or until this many seconds have passed
    min_reps: int
    min_s: float
    max_s: float
    tolerance: float  # half-width of the median's 95 % interval, relative to the median


FULL = {
    "latency": TimeBox(3, 0.5, 10, 0.3, 2.0, 0.03),
    "throughput": TimeBox(1, 0.5, 3, 0.3, 2.0, 0.03),
    "decode": 16,  # photos decoded and preprocessed apart from the model
    "e2e": 32,  # photos classified end to end
}
QUICK = {
    "latency": TimeBox(1, 0.2, 3, 0.2, 2.0, 1.0),
    "throughput": TimeBox(1, 0.2, 1, 0.2, 2.0, 1.0),
    "decode": 4,
    "e2e": 8,
}
CHECK_EVERY_S = 0.05  # how often a fast timing looks at its interval (sorting costs time too)


def time_boxes(quick: bool) -> dict:
    return QUICK if quick else FULL


def median_interval_ranks(n: int) -> tuple[int, int]:
    """0-based ranks (j, k) of the sorted sample bracketing its median with >= 95 % confidence:
    the binomial(n, 1/2) quantiles by the normal approximation, widened to the whole sample
    where n is too small for it."""
    half = 0.98 * math.sqrt(n)  # 1.96 standard deviations of Binomial(n, 1/2), sqrt(n)/2 each
    j = math.floor(n / 2 - half)
    k = math.ceil(n / 2 + half)
    return max(j, 0), min(k, n - 1)


def median_interval(values: list[float]) -> tuple[float, float]:
    """The 95 % confidence interval of the median of `values` (distribution-free)."""
    ordered = sorted(values)
    j, k = median_interval_ranks(len(ordered))
    return ordered[j], ordered[k]


def settled(times: list[float], tolerance: float) -> bool:
    """Whether the median's 95 % interval is within `tolerance` of the median."""
    low, high = median_interval(times)
    mid = percentile(times, 0.5)
    return mid > 0 and (high - low) / 2 <= tolerance * mid


def timed_calls(fn, x, box: TimeBox, sync) -> list[float]:
    """Seconds per call after warm-up, until the box says the median is known (see the module)."""
    start = time.perf_counter()
    for _ in range(box.warm_reps):
        fn(x)
        sync()
        if time.perf_counter() - start > box.warm_s:
            break
    times: list[float] = []
    start = last_check = time.perf_counter()
    while True:
        t = time.perf_counter()
        fn(x)
        sync()
        now = time.perf_counter()
        times.append(now - t)
        elapsed = now - start
        if elapsed >= box.max_s:
            return times
        if len(times) >= box.min_reps and elapsed >= box.min_s and now - last_check >= min(CHECK_EVERY_S, times[-1]):
            last_check = now
            if settled(times, box.tolerance):
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
