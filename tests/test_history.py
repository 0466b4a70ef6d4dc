"""The bounded, decimating trajectory store."""

from __future__ import annotations

import numpy as np
import pytest

from sgdtui.engine.history import History

SHAPES = {"pos": (3, 2), "loss": (3,)}


def block(first: int, k: int):
    steps = np.arange(first, first + k)
    pos = np.repeat(steps[:, None, None].astype(np.float64), 3, axis=1).repeat(2, axis=2)
    return steps, pos, steps.astype(np.float64)[:, None].repeat(3, axis=1)


def test_a_million_rows_stay_bounded_recent_exact_old_decimated():
    cap = 4096
    hist = History(SHAPES, capacity=cap)
    total, k = 1_000_000, 10_000
    for first in range(0, total, k):
        steps, pos, loss = block(first, k)
        hist.append_block(steps, pos=pos, loss=loss)
        assert len(hist) <= cap
        assert hist.steps.shape[0] == cap  # storage never grows
    assert hist.total_rows == total
    steps = hist.step_column()
    assert steps[0] == 0 and steps[-1] == total - 1
    assert (np.diff(steps) > 0).all()
    # the most recent rows are every step, exactly
    recent = steps[-1000:]
    assert recent.tolist() == list(range(total - 1000, total))
    assert (hist.column("pos")[-1000:, :, 0] == recent[:, None]).all()
    assert (hist.column("loss")[:, 1] == steps).all()  # every kept row is the row of its step
    # the older ones are thinned: the first half of the store spans far more steps than it has rows
    half = len(hist) // 2
    assert steps[half] - steps[0] > 10 * half
    assert len(hist) > cap // 2


def test_capacity_none_keeps_everything():
    hist = History(SHAPES, capacity=None)
    for first in range(0, 50_000, 3_000):
        steps, pos, loss = block(first, min(3_000, 50_000 - first))
        hist.append_block(steps, pos=pos, loss=loss)
    assert len(hist) == 50_000 == hist.total_rows
    assert hist.step_column().tolist() == list(range(50_000))
    assert (hist.column("loss")[:, 2] == np.arange(50_000)).all()


def test_single_appends_and_snapshot_thinning():
    hist = History({"v": ()}, capacity=16)
    for t in range(100):
        hist.append(t, v=float(t) * 2)
    assert len(hist) <= 16 and hist.total_rows == 100
    assert hist.step_column()[-1] == 99 and hist.column("v")[-1] == 198.0
    snap = hist.snapshot(max_rows=5)
    assert len(snap["step"]) <= 5 and snap["step"][-1] == 99 and snap["step"][0] == hist.step_column()[0]
    assert (snap["v"] == 2.0 * snap["step"]).all()
    snap["v"][:] = -1  # a copy
    assert hist.column("v")[-1] == 198.0
    with pytest.raises(ValueError):
        hist.column("v")[0] = 5.0  # read-only view
    hist.clear()
    assert len(hist) == 0 and hist.total_rows == 0


def test_capacity_too_small_is_refused():
    with pytest.raises(ValueError, match="at least 16"):
        History({"v": ()}, capacity=8)


def test_a_thinned_snapshot_keeps_evenly_spaced_distinct_rows_and_the_last():
    for rows, max_rows in ((10, 3), (101, 100), (4096, 2000), (3001, 2000), (5000, 2)):
        history = History({"loss": ()}, capacity=None)
        history.append_block(np.arange(rows), loss=np.arange(rows, dtype=float))
        expected = np.unique(np.linspace(0, rows - 1, max_rows).round().astype(np.int64))
        got = history.snapshot(max_rows)
        np.testing.assert_array_equal(got["step"], expected)
        np.testing.assert_array_equal(got["loss"], expected.astype(float))
        assert got["step"][-1] == rows - 1 and len(got["step"]) <= max_rows


def test_a_snapshot_of_no_rows_is_empty():
    history = History({"loss": ()}, capacity=None)
    history.append_block(np.arange(10), loss=np.arange(10.0))
    assert len(history.snapshot(0)["step"]) == 0
