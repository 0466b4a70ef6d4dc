"""The Lab's keys in the app: the range test's view and R, K (burn-in), G (density view),
W (SWA), F (gradient flow); each change is a recorded SetLane."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from sgdtui.engine.commands import Step
from sgdtui.ui.app import PlaygroundApp
from sgdtui.ui.launch import build_session
from sgdtui.ui.widgets.contour import ContourPlot
from sgdtui.ui.widgets.loss import LossPlot

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def app_for(script: str) -> PlaygroundApp:
    session, factory = build_session(argparse.Namespace(script=str(EXAMPLES / script), device="cpu"))
    return PlaygroundApp(session, factory, live_rates=False, worker_kind="thread", costly_period=0.0)


async def settle(app, pilot):
    assert app.worker.wait_idle(60)
    await pilot.pause()
    app._tick()
    await pilot.pause()


async def test_the_range_test_view_and_r():
    app = app_for("lr-range-test.toml")
    async with app.run_test(size=(140, 44)) as pilot:
        app.worker.submit(Step(1000))
        await settle(app, pilot)
        loss = app.query_one(LossPlot)
        assert loss._x_log and len(loss._marks) == 1
        suggestion = app.worker.latest.snapshot.lane("adam-range").range_test.suggested_lr
        assert 1.5 <= suggestion <= 3.0 and loss._marks[0][0] == suggestion
        assert "range test: lr" in app.query_one("#status").text
        await pilot.press("R")
        await settle(app, pilot)
        assert app.worker.latest.snapshot.lane("adam").base_lr == suggestion
        assert app.worker.latest.snapshot.lane("adam-range").schedule_name == "range-test"  # left alone
        await pilot.press("tab")  # a lane off the range test: the loss pane is back to loss vs step
        await settle(app, pilot)
        assert not app.query_one(LossPlot)._x_log


async def test_burn_in_density_swa_and_flow_keys():
    app = app_for("swa.toml")
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("K", "F")
        await settle(app, pilot)
        lane = app.worker.latest.snapshot.lane("sgd")
        assert lane.lab_options["burn_in"] == 0 and lane.lab_options["flow"] is True
        app.worker.submit(Step(600))
        await settle(app, pilot)
        lane = app.worker.latest.snapshot.lane("sgd")
        assert lane.stationary is not None and lane.stationary.steps > 0
        assert lane.flow_path is not None and len(lane.flow_path) > 2
        assert lane.swa_loss is not None  # the script's own swa = { start = 500 }
        await pilot.press("G")
        await settle(app, pilot)
        assert app.query_one("#contour", ContourPlot)._density is not None
        assert "⟨L⟩" in app.query_one("#status").text
        await pilot.press("W")  # SWA off again
        await settle(app, pilot)
        assert app.worker.latest.snapshot.lane("sgd").lab_options["swa_start"] is None
    script = app.mirror.to_toml()
    assert "burn_in = 0" in script and "flow = true" in script and "swa = false" in script
