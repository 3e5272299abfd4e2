"""Wilson, McNemar and ECE on small cases computed by hand."""

import math

import pytest

from topfive.eval.metrics import calibration, mcnemar, severity, topk_hit, wilson_interval


def test_wilson_by_hand():
    # 8 of 10, z = 1.959964: centre (0.8 + z²/20) / (1 + z²/10), half-width z/(1 + z²/10) * sqrt(0.016 + z²/400)
    z = 1.959963984540054
    centre = (0.8 + z * z / 20) / (1 + z * z / 10)
    half = z / (1 + z * z / 10) * math.sqrt(0.8 * 0.2 / 10 + z * z / 400)
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(centre - half, abs=1e-9) and high == pytest.approx(centre + half, abs=1e-9)
    assert (low, high) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(0, 5)[0] == 0.0 and wilson_interval(5, 5)[1] == 1.0
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_mcnemar_by_hand():
    a = [1, 1, 1, 0, 0, 1, 1, 1]
    b = [1, 0, 0, 0, 1, 0, 0, 1]
    t = mcnemar(a, b)
    assert (t.n, t.both_right, t.a_only, t.b_only, t.both_wrong) == (8, 2, 4, 1, 1)
    # exact two-sided: 2 * P(X <= 1 | n=5, p=1/2) = 2 * 6/32
    assert t.p_value == pytest.approx(12 / 32)
    s = mcnemar(b, a)
    assert (s.a_only, s.b_only, s.p_value) == (t.b_only, t.a_only, t.p_value)
    assert mcnemar([1, 0], [1, 0]).p_value == 1.0
    with pytest.raises(ValueError):
        mcnemar([1], [1, 0])


def test_ece_by_hand():
    conf = [0.95, 0.95, 0.5, 0.5, 0.05]
    right = [1, 0, 1, 1, 0]
    ece, bins = calibration(conf, right)
    assert len(bins) == 15 and bins[0].lower == 0 and bins[-1].upper == 1
    by = {b.bin: b for b in bins if b.count}
    assert set(by) == {0, 7, 14}
    assert (by[14].count, by[14].accuracy, by[14].mean_confidence) == (2, 0.5, pytest.approx(0.95))
    assert (by[7].count, by[7].accuracy) == (2, 1.0)
    # 2/5*|0.5-0.95| + 2/5*|1-0.5| + 1/5*|0-0.05| = 0.18 + 0.2 + 0.01
    assert ece == pytest.approx(0.39)
    assert bins[1].count == 0 and bins[1].accuracy is None
    # bins are right-closed: 1/15 goes to bin 0, exactly 1.0 to the last
    _, b2 = calibration([1 / 15, 1.0], [1, 1])
    assert b2[0].count == 1 and b2[14].count == 1


def test_topk_and_severity():
    assert topk_hit([5, 3, 9], {9}, 3) and not topk_hit([5, 3, 9], {9}, 1)
    mean, counts = severity([2, 4, 4])
    assert mean == pytest.approx(10 / 3) and counts == {2: 1, 4: 2}
