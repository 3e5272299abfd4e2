"""The time boxes: a timing stops once its median is known to the box's tolerance."""

from __future__ import annotations

import random

import pytest
from scipy import stats

from topfive.bench.timing import TimeBox, median_interval, median_interval_ranks, settled, timed_calls


@pytest.mark.parametrize("n", [10, 20, 50, 100, 400])
def test_the_median_interval_covers_at_least_95_percent(n):
    j, k = median_interval_ranks(n)
    # P(X_(j+1) <= median <= X_(k+1)) = P(j+1 <= B <= k) with B ~ Binomial(n, 1/2) (1-based ranks)
    coverage = stats.binom.cdf(k, n, 0.5) - stats.binom.cdf(j, n, 0.5)
    assert coverage >= 0.95
    assert coverage < 0.99 or n < 20  # and not much wider than needed


def test_small_samples_use_their_whole_range():
    assert median_interval_ranks(3) == (0, 2)
    assert median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0)


def test_settled_is_false_for_a_wide_sample_and_true_for_a_tight_one():
    rng = random.Random(0)
    tight = [1.0 + rng.uniform(-0.001, 0.001) for _ in range(50)]
    wide = [rng.uniform(0.5, 1.5) for _ in range(50)]
    assert settled(tight, 0.02) and not settled(wide, 0.02)


def test_a_steady_call_stops_well_before_the_cap_and_a_noisy_one_runs_to_it(monkeypatch):
    rng = random.Random(1)
    clock = {"t": 0.0}

    def steady(_):
        clock["t"] += 0.01 * (1.0 + rng.uniform(-0.001, 0.001))

    def noisy(_):
        clock["t"] += 0.01 * rng.uniform(0.2, 5.0)

    import topfive.bench.timing as timing

    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock["t"])
    box = TimeBox(warm_reps=2, warm_s=0.1, min_reps=10, min_s=0.2, max_s=3.0, tolerance=0.02)
    fast = timed_calls(steady, None, box, lambda: None)
    slow = timed_calls(noisy, None, box, lambda: None)
    assert 10 <= len(fast) <= 25  # 0.2 s of 10 ms calls, then settled at once
    assert sum(slow) >= 3.0 - 0.06  # never settles within 2 %: the whole 3 s
