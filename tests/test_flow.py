"""The gradient-flow integrator against exact solutions."""

import numpy as np
import pytest

from sgdtui.engine.flow import GradientFlow


def test_quadratic_flow_is_exponential_decay():
    lam = np.array([1.0, 10.0])
    start = np.array([[1.0, 1.0], [2.0, -1.0]])
    flow = GradientFlow(lambda x: x * lam, start)
    for _ in range(100):
        flow.advance(0.05)
    exact = start * np.exp(-lam * 5.0)
    assert flow.x[:, 0] == pytest.approx(exact[:, 0], rel=1e-7)
    assert np.abs(flow.x[:, 1] - exact[:, 1]).max() < 1e-12
    assert flow.time == pytest.approx(5.0)


def test_a_large_time_step_is_still_accurate():
    # One advance over a time GD could never take stably (lr * lambda = 8).
    flow = GradientFlow(lambda x: 10.0 * x, np.array([[1.0, 0.5]]))
    flow.advance(0.8)
    assert flow.x == pytest.approx(np.array([[1.0, 0.5]]) * np.exp(-8.0), rel=1e-6)


def test_a_flow_that_blows_up_stops_finite():
    flow = GradientFlow(lambda x: -x ** 3, np.array([[1.0, 1.0], [0.0, 0.0]]), bound=1e6)
    for _ in range(20):  # dx/dt = x^3 from 1 reaches infinity at t = 0.5
        flow.advance(0.05)
    assert flow.stopped.tolist() == [True, False]
    assert np.isfinite(flow.x).all() and (flow.x[1] == 0).all()
