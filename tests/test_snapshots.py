"""Screenshots of the playground at 120x40 (seed fixed, worker paused and drained first).

Update the baselines with ``pytest tests/test_snapshots.py --snapshot-update`` and look at
the SVGs in tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import argparse

from sgdtui.engine.commands import Step
from sgdtui.ui.app import PlaygroundApp
from sgdtui.ui.launch import build_session
from sgdtui.ui.widgets.contour import ContourPlot

SIZE = (120, 40)


def make_app() -> PlaygroundApp:
    args = argparse.Namespace(surface=None, expr=None, surfaces=[], script=None, record=None, seed=0)
    session, factory = build_session(args)
    return PlaygroundApp(session, factory, live_rates=False)


def drained(steps: int = 0, keys: tuple[str, ...] = ()):
    async def run_before(pilot) -> None:
        app = pilot.app
        if steps:
            app.worker.submit(Step(steps))
        assert app.worker.wait_idle()
        await app.workers.wait_for_complete()  # level lines
        for _ in range(100):  # the worker's result message may land a moment later
            await pilot.pause(0.02)
            if app.view.levels_ready:
                break
        assert app.view.levels_ready
        app._tick()
        for plot in app.query(ContourPlot):
            plot.redraw_paths()  # the picture must not depend on how many frames came before
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
            await pilot.pause()
    return run_before


def test_main_screen_mid_race(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=drained(steps=120))


def test_help_screen(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=drained(keys=("question_mark",)))


def test_optimizer_picker(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=drained(keys=("a",)))


def test_surface_picker(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=drained(keys=("S",)))


def test_main_screen_in_a_light_theme(snap_compare):
    app = make_app()
    app.theme = "textual-light"  # lanes take their darker shades, the shading its light ramp
    assert snap_compare(app, terminal_size=SIZE, run_before=drained(steps=120))


def test_main_screen_at_80x24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=drained(steps=60))


def test_main_screen_paused_with_the_update_anatomy_and_a_crosshair(snap_compare):
    assert snap_compare(make_app(), terminal_size=SIZE, run_before=drained(steps=30, keys=("tab", "tab", "tab", "p",
                                                                                         "left", "up")))
