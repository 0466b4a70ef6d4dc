"""Range-test suggestions on curves whose answer is clear."""

import numpy as np
import pytest

from sgdtui.engine.rangetest import RULES, read_range_test, smoothed


def synthetic(n=1000):
    lrs = 10 ** np.linspace(-3, 1, n)
    log_lr = np.log10(lrs)
    # Falls steeply around lr = 0.01, flat floor, blows up past lr = 1.
    loss = 1.0 / (1.0 + np.exp(4 * (log_lr + 2))) + 0.1 + np.where(log_lr > 0, 10 * log_lr ** 2, 0.0)
    return lrs, loss


def test_rules_on_a_clear_curve():
    lrs, loss = synthetic()
    reading = read_range_test(lrs, loss)
    assert reading.rule == "floor"
    assert 0.5 <= reading.suggested_lr <= 1.2
    assert 0.005 <= reading.suggestions["steepest"] <= 0.03
    assert 0.01 <= reading.suggestions["valley"] <= reading.suggestions["floor"]


def test_a_diverged_tail_is_cut():
    lrs, loss = synthetic()
    loss[900:] = np.nan
    assert read_range_test(lrs, loss).suggested_lr <= lrs[899]


def test_too_short_or_unknown_rule():
    assert read_range_test([0.1, 0.2], [1.0, 0.5]).suggested_lr is None
    with pytest.raises(ValueError, match="unknown range-test rule"):
        read_range_test([0.1], [1.0], rule="magic")
    assert set(read_range_test(*synthetic()).suggestions) == set(RULES)


def test_smoothing_is_bias_corrected():
    assert smoothed(np.full(50, 3.0)) == pytest.approx(np.full(50, 3.0))
