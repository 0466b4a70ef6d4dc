"""Pilot tests of the phase diagram: p sweeps the selected lane in the background, the heatmap
shows the measure with theory overlays, the cursor reads cells out, enter adds the cell as a
recorded lane; the theory itself checks out against known cases."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from sgdtui.engine.commands import ScriptText
from sgdtui.engine.surfaces import SurfaceRegistry
from sgdtui.engine.theory import curvature, heavy_ball_edge, heavy_ball_rate, stationary_excess_loss
from sgdtui.ui.screens.phase import PhaseScreen
from sgdtui.ui.widgets.heatmap import Heatmap
from tests.test_app import args, record_notifications, settle

from sgdtui.ui.app import PlaygroundApp
from sgdtui.ui.launch import build_session

REGISTRY = SurfaceRegistry(include_user_dir=False)
SCRIPT = """
version = 1
steps = 0
[problem]
surface = "ill-conditioned"
[[lanes]]
name = "hb"
optimizer = "momentum"
lr = 0.005
momentum = 0.5
"""


def make_app(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCRIPT)
    session, factory = build_session(args(script=str(path), device="cpu"))
    return PlaygroundApp(session, factory, live_rates=False, worker_kind="thread")


async def wait_for(pilot, predicate, timeout=60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_p_draws_the_phase_diagram_and_enter_opens_a_cell_as_a_lane(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 50)) as pilot:
        await settle(app, pilot)
        frames = app.frames_rendered
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(app.screen, PhaseScreen))
        screen = app.screen
        screen.query_one("#phase-x").value = "lr=0.001:0.05:log:12"
        screen.query_one("#phase-y").value = "momentum=0:0.9:6"
        screen.query_one("#phase-steps").value = "150"
        screen.action_run()
        await wait_for(pilot, lambda: screen.result is not None and screen.result.sweep.shape == (12, 6))
        assert app.frames_rendered > frames  # the app kept drawing while the sweep ran
        heatmap = screen.query_one(Heatmap)
        data = heatmap.data
        assert data.values.shape == (6, 12) and data.diverged.any() and not data.diverged.all()
        # heavy ball on a quadratic: the cells past 2(1+mu)/lambda_max diverge, and the line sits there
        assert data.theory.any() and "heavy ball converges for lr < 2(1+μ)/λmax" in data.legend
        assert "exact: a quadratic" in data.legend
        lrs = np.array(data.x_values)
        for iy, mu in enumerate(data.y_values):
            edge = heavy_ball_edge(mu, 100.0)
            assert not data.diverged[iy, lrs < 0.95 * edge].any() and data.diverged[iy, lrs > 1.05 * edge].all()
        await pilot.press("right", "right", "up")
        assert heatmap.cursor == (2, 1)
        info = str(screen.query_one("#phase-info").render())
        assert "lr=" in info and "momentum=" in info and "final_loss" in info
        await pilot.press("m")
        assert screen.measure == "best_loss"
        for _ in range(4):  # stationary_loss, steps_to_min, diverged_at, then the theory's rate
            await pilot.press("m")
        assert screen.measure == "rate (theory)"
        assert np.nanmax(heatmap.data.values) > 1.0 > np.nanmin(heatmap.data.values)
        seen = record_notifications(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, PhaseScreen))
        await settle(app, pilot)
        names = app.worker.latest.snapshot.lane_names()
        assert names == ["hb", "hb.2.1"]
        added = app.worker.latest.snapshot.lane("hb.2.1")
        assert added.base_lr == pytest.approx(data.x_values[2]) and added.hyper["momentum"] == data.y_values[1]
        text = app.worker.ask(ScriptText()).result(5)
        assert 'name = "hb.2.1"' in text and "add" in text  # recorded like any other lane
        assert any("lane hb.2.1 added" in m for m, _ in seen)


async def test_a_one_axis_sweep_is_a_curve_and_mlp_mode_is_refused(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("P")
        await wait_for(pilot, lambda: isinstance(app.screen, PhaseScreen))
        screen = app.screen
        screen.query_one("#phase-y").value = ""
        screen.query_one("#phase-x").value = "lr=0.001:0.05:log:20"
        screen.query_one("#phase-steps").value = "80"
        screen.action_run()
        await wait_for(pilot, lambda: screen.result is not None and screen.result.sweep.shape == (20,))
        heatmap = screen.query_one(Heatmap)
        assert heatmap.data.values.shape == (1, 20)
        assert "● measured" in str(heatmap.render())
        screen.query_one("#phase-x").value = "lrr=1:2:3"
        screen.action_run()
        assert "has no setting 'lrr'" in str(screen.query_one("#phase-info").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, PhaseScreen)
        seen = record_notifications(app)
        await pilot.press("m")
        await wait_for(pilot, lambda: app.mode == "mlp")
        await settle(app, pilot)
        await pilot.press("P")
        await pilot.pause()
        assert not isinstance(app.screen, PhaseScreen)
        assert any("phase diagrams are for surface mode" in m for m, _ in seen)


def test_theory_matches_the_known_cases():
    surface = REGISTRY.get("ill-conditioned")
    curv = curvature(surface, (2.0, 1.0))
    assert curv.quadratic and sorted(curv.eigenvalues) == pytest.approx([1.0, 100.0])
    assert curv.gd_edge == pytest.approx(2 / 100.0)
    # heavy ball: GD's |1 - lr lambda| at mu = 0; the edge 2(1+mu)/lambda_max
    assert heavy_ball_rate(0.01, 0.0, [50.0]) == pytest.approx(0.5)
    edge = heavy_ball_edge(0.5, 50.0)
    assert heavy_ball_rate(0.99 * edge, 0.5, [50.0]) < 1.0 < heavy_ball_rate(1.01 * edge, 0.5, [50.0])
    # optimal heavy ball on a condition number k: rate (sqrt(k) - 1)/(sqrt(k) + 1)
    lo, hi = 0.5, 50.0
    lr, mu = 4 / (math.sqrt(hi) + math.sqrt(lo)) ** 2, ((math.sqrt(hi / lo) - 1) / (math.sqrt(hi / lo) + 1)) ** 2
    assert heavy_ball_rate(lr, mu, [lo, hi]) == pytest.approx(math.sqrt(mu), rel=1e-6)
    # stationary loss of SGD with noise: lr sigma^2 / (2 B (2 - lr lambda)) per direction
    got = stationary_excess_loss(0.01, 0.0, [1.0, 4.0], noise=2.0, batch=4)
    want = sum(0.01 * 1.0 / (2 * (2 - 0.01 * lam)) for lam in (1.0, 4.0))
    assert got == pytest.approx(want, rel=1e-9)
    assert not curvature(REGISTRY.get("rosenbrock")).quadratic
