"""Accuracy with honest uncertainty, paired model comparison, calibration and mistake severity.

All functions take plain Python data (lists of hits, probabilities, class indices), so they are
tested on hand-computed cases and used by evaluate.py on the rows of predictions.csv.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from scipy.stats import binomtest

ECE_BINS = 15


def topk_hit(top_indices: Sequence[int], accepted: Iterable[int], k: int) -> bool:
    """Right at top-k: any of the first k predicted classes is in the accepted set."""
    accepted = set(accepted)
    return any(i in accepted for i in list(top_indices)[:k])


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (scipy's `proportion_ci(method="wilson")`), as fractions."""
    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


@dataclass(frozen=True)
class McNemar:
    n: int
    both_right: int
    a_only: int  # right for model a, wrong for b
    b_only: int
    both_wrong: int
    p_value: float  # exact two-sided: binomial test of a_only against a_only + b_only at 1/2


def mcnemar(hits_a: Sequence[bool], hits_b: Sequence[bool]) -> McNemar:
    """McNemar's exact test on paired hits (same images, same order)."""
    if len(hits_a) != len(hits_b):
        raise ValueError("McNemar needs the two models' hits on the same images")
    pairs = list(zip(map(bool, hits_a), map(bool, hits_b)))
    both = sum(a and b for a, b in pairs)
    a_only = sum(a and not b for a, b in pairs)
    b_only = sum(b and not a for a, b in pairs)
    neither = len(pairs) - both - a_only - b_only
    discordant = a_only + b_only
    p = 1.0 if discordant == 0 else float(binomtest(a_only, discordant, 0.5, alternative="two-sided").pvalue)
    return McNemar(len(pairs), both, a_only, b_only, neither, min(1.0, p))


@dataclass(frozen=True)
class CalibrationBin:
    bin: int
    lower: float
    upper: float
    count: int
    mean_confidence: float | None  # None for an empty bin
    accuracy: float | None


def calibration(confidences: Sequence[float], correct: Sequence[bool], bins: int = ECE_BINS) -> tuple[float, list[CalibrationBin]]:
    """Expected calibration error of the top-1 probability, and the per-bin data.

    Bins are equal-width on [0, 1]; a confidence c falls in bin b when lower < c <= upper (the first
    bin also takes 0). ECE = sum over bins of count/n * |accuracy - mean confidence| (Guo et al. 2017).
    """
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct differ in length")
    n = len(confidences)
    members: list[list[int]] = [[] for _ in range(bins)]
    for j, c in enumerate(confidences):
        if not 0.0 <= c <= 1.0:
            raise ValueError(f"confidence {c} is not a probability")
        b = min(bins - 1, max(0, math.ceil(c * bins) - 1))  # right-closed bins
        members[b].append(j)
    table, ece = [], 0.0
    for b, idx in enumerate(members):
        if idx:
            conf = sum(confidences[j] for j in idx) / len(idx)
            acc = sum(bool(correct[j]) for j in idx) / len(idx)
            ece += len(idx) / n * abs(acc - conf)
        else:
            conf = acc = None
        table.append(CalibrationBin(b, b / bins, (b + 1) / bins, len(idx), conf, acc))
    return (ece if n else float("nan")), table


def severity(distances: Sequence[int]) -> tuple[float, dict[int, int]]:
    """Mean severity (WordNet LCA height) of the wrong top-1 predictions and the count per value."""
    counts: dict[int, int] = {}
    for d in distances:
        counts[d] = counts.get(d, 0) + 1
    mean = sum(distances) / len(distances) if distances else float("nan")
    return mean, dict(sorted(counts.items()))
