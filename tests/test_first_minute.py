"""What a newcomer meets first: lane colours that match everywhere, an honest loss pane, shaded
contours with a colour bar, start points by click and by keyboard, a lane's settings restored,
a footer with only this mode's keys, the MLP network switched from the keyboard, statuses that
say what a lane does, a step counter that restarts with the race, and `sgdtui new`."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from rich.text import Text

from sgdtui.cli import main
from sgdtui.engine.commands import Nudge, Reset, RestoreLane, SetLane, Step, SwitchProblem, Trajectories
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.session import Session
from sgdtui.engine.status import WINDOW, trajectory_status
from sgdtui.engine.surfaces import SurfaceRegistry
from sgdtui.ui.app import PlaygroundApp
from sgdtui.ui.launch import build_session
from sgdtui.ui.present import LANE_GLYPHS, LANE_HUES, LaneColours
from sgdtui.ui.present_mlp import MLP_COLUMNS
from sgdtui.ui.widgets.colourbar import ColourBar
from sgdtui.ui.widgets.contour import ContourPlot
from sgdtui.ui.widgets.loss import LossPlot, LossSeries, wants_log

SIZE = (120, 40)
REGISTRY = SurfaceRegistry(include_user_dir=False)


def make_app(mode: str = "surface", **kwargs) -> PlaygroundApp:
    session, factory = build_session(argparse.Namespace(device="cpu", mode=mode))
    return PlaygroundApp(session, factory, live_rates=False, worker_kind="thread", costly_period=None
                         if mode == "mlp" else 0.0, **kwargs)


async def settle(app, pilot) -> None:
    assert app.worker.wait_idle()
    await pilot.pause()
    app._tick()
    await pilot.pause()


def lane(app, name=None):
    return app.worker.latest.snapshot.lane(name or app.selected)


# --- colours -----------------------------------------------------------------------------------


def test_each_lane_has_one_colour_and_glyph_in_both_shades():
    colours = LaneColours(dark=True)
    names = [f"lane{k}" for k in range(8)]
    shades = {colours.plot(n) for n in names}
    assert len(shades) == 8 and len({colours.glyph(n) for n in names}) == len(LANE_GLYPHS) == 8
    for name in names:  # Rich gets exactly the colour plotext gets
        assert colours.rich(name) == "#{:02x}{:02x}{:02x}".format(*colours.plot(name))
    light = LaneColours(dark=False)
    assert [light.index(n) for n in names] == [colours.index(n) for n in names]
    assert all(light.plot(n) == LANE_HUES[colours.index(n)][1] for n in names)
    # no colour is a grey of the level lines' ramp, and none is "yellow+" (not a plotext colour)
    assert all(isinstance(c, tuple) and len(c) == 3 for c in shades)


async def test_table_names_are_drawn_in_the_plot_colour_of_their_lane():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        table = app.query_one("#lanes")
        for name in app.worker.latest.snapshot.lane_names():
            cell = table.get_row(name)[0]
            assert isinstance(cell, Text) and app.colours.rich(name) in str(cell.style)
            assert cell.plain.startswith(app.colours.glyph(name))


# --- the loss pane -------------------------------------------------------------------------------


async def test_a_diverged_lane_never_sets_the_scale_and_is_marked(tmp_path):
    from textual.app import App

    class One(App):
        def compose(self):
            yield LossPlot(id="loss")

    app = One()
    async with app.run_test(size=(80, 24)) as pilot:
        plot = app.query_one(LossPlot)
        steps = np.arange(100, dtype=float)
        live = 1.0 + np.exp(-steps / 20)
        blown = np.exp(steps / 2)  # 1e21 by the end
        plot.show([LossSeries("live", "red", steps, live), LossSeries("blown", "blue", steps, blown, diverged_at=40)],
                  log_scale=False)
        await pilot.pause()
        text = plot.render().plain
        assert "✗" in text
        labels = " ".join(line[:8] for line in text.splitlines())
        assert "e" not in labels.replace("loss", "")  # no 1e21 tick: the live curve sets the scale
        assert not wants_log([LossSeries("a", "red", steps, live)])
        assert wants_log([LossSeries("a", "red", steps, np.geomspace(1e3, 1e-2, 100))])
        assert not wants_log([LossSeries("a", "red", steps, np.linspace(-1, 1e4, 100))])  # a negative loss
        plot.show([LossSeries("a", "red", steps, np.geomspace(1e3, 1e-2, 100))], log_scale=None)
        await pilot.pause()
        assert plot.log_scale and "loss (log, auto)" in plot.render().plain


async def test_the_legend_sits_beside_the_curves_not_on_them():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        loss = app.query_one("#loss", LossPlot)
        assert not loss.show_legend
        legend = str(app.query_one("#legend").render())
        assert all(name in legend for name in app.worker.latest.snapshot.lane_names())


async def test_l_cycles_automatic_log_and_linear():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert app.log_scale is None
        await pilot.press("l")
        assert app.log_scale is True
        await pilot.press("l")
        assert app.log_scale is False
        await pilot.press("l")
        assert app.log_scale is None


# --- contours ------------------------------------------------------------------------------------


@pytest.mark.parametrize("surface", ["rastrigin", "ackley", "rosenbrock"])
async def test_contours_are_shaded_with_a_colour_bar_and_rugged_surfaces_get_few_lines(surface):
    session, factory = build_session(argparse.Namespace(surface=surface))
    app = PlaygroundApp(session, factory, live_rates=False, worker_kind="thread")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await app.workers.wait_for_complete()
        for _ in range(100):
            await pilot.pause(0.02)
            if app.view.levels_ready:
                break
        assert app.view.levels_ready
        contour = app.query_one("#contour", ContourPlot)
        levels = app.view._levels[app.view._levels_wanted]
        assert len(levels.lines) <= (5 if surface in ("rastrigin", "ackley") else 12)
        shades = contour.shade_colours()
        assert len(shades) == len(levels.bands) + 1 >= 5
        strips = [contour.render_line(y) for y in range(contour.size.height)]
        backgrounds = {seg.style.bgcolor.triplet for strip in strips for seg in strip
                       if seg.style and seg.style.bgcolor and seg.style.bgcolor.triplet}
        assert len({tuple(t) for t in backgrounds} & set(shades)) >= 4  # several bands on screen
        bar = str(app.query_one(ColourBar).render())
        assert bar.startswith("loss") and len([t for t in bar.split() if t[0].isdigit() or t[0] == "-"]) >= 4


# --- start points ---------------------------------------------------------------------------------


async def test_a_click_on_the_contour_pane_starts_the_selected_lane_there(tmp_path):
    record = tmp_path / "run.toml"
    app = make_app(record_path=record)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("tab")  # ema-momentum
        contour = app.query_one("#contour", ContourPlot)
        await pilot.click("#contour", offset=(30, 8))
        await settle(app, pilot)
        expected = contour.data_at(30, 8)
        assert expected is not None
        np.testing.assert_allclose(lane(app, "ema-momentum").current, [expected])
        assert lane(app, "ema-momentum").t == 0 and lane(app, "sgd").current.tolist() == [[-4.0, 5.0]]
        await pilot.click("#contour", offset=(0, 0))  # the frame, not the canvas: nothing moves
        await settle(app, pilot)
        np.testing.assert_allclose(lane(app, "ema-momentum").current, [expected])
        app.worker.submit(Step(5))
        await settle(app, pilot)
        live = app.worker.ask(Trajectories()).result(5)
    replay = Session.from_script(record)  # recorded as a MoveStarts: replays to the same numbers
    replay.run()
    for name, hist in live.items():
        np.testing.assert_array_equal(replay.trajectories()[name]["pos"], hist["pos"])


async def test_the_keyboard_crosshair_places_a_start_without_a_mouse():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        view = app.view
        (x0, x1), (y0, y1) = view.limits
        await pilot.press("p")
        assert view.crosshair == (-4.0, 5.0)  # at the selected lane's start
        await pilot.press("right", "right", "down")
        await settle(app, pilot)
        assert view.crosshair == pytest.approx((-4.0 + 2 * (x1 - x0) / 40, 5.0 - (y1 - y0) / 40))
        assert view.limits == ((x0, x1), (y0, y1))  # arrows moved the crosshair, not the view
        assert "┼" in app.query_one("#contour").render().plain
        await pilot.press("enter")
        await settle(app, pilot)
        assert view.crosshair is None
        np.testing.assert_allclose(lane(app, "sgd").current, [[-4.0 + 2 * (x1 - x0) / 40, 5.0 - (y1 - y0) / 40]])
        await pilot.press("p", "left", "escape")  # escape: nothing placed
        await settle(app, pilot)
        assert view.crosshair is None
        np.testing.assert_allclose(lane(app, "sgd").current, [[-4.0 + 2 * (x1 - x0) / 40, 5.0 - (y1 - y0) / 40]])
        await pilot.press("right", "z", "0")  # 0 puts the view back
        assert view.limits == ((x0, x1), (y0, y1))


# --- lane settings, footer, MLP switches ----------------------------------------------------------


async def test_u_restores_the_selected_lanes_settings():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("plus", "plus", "b", "s", "c", "n", "d")
        await settle(app, pilot)
        changed = lane(app, "sgd")
        assert changed.base_lr != 1.0 and changed.batch == 2 and changed.noise > 0
        await pilot.press("u")
        await settle(app, pilot)
        back = lane(app, "sgd")
        assert (back.base_lr, back.batch, back.schedule_name, back.coupling, back.noise) == (1.0, 1, "constant", "none", 0.0)
        assert back.hyper["weight_decay"] == 0.0
        seen = []
        app.notify = lambda message, *a, **k: seen.append(str(message))
        await pilot.press("u")  # nothing to restore: says so
        await settle(app, pilot)
        assert any("starting settings already" in m for m in seen)


def footer_keys(app) -> set[str]:
    return {binding.key for binding in app.active_bindings.values() if binding.binding.show}


async def test_the_footer_shows_only_the_keys_of_the_current_mode():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        surface_keys = {b.binding.action for b in app.active_bindings.values() if b.binding.show and b.enabled}
        assert "pick_surface" in surface_keys
        await pilot.press("m")
        await settle(app, pilot)
        assert app.mode == "mlp"
        mlp_keys = {b.binding.action for b in app.active_bindings.values() if b.binding.show and b.enabled}
        assert "pick_surface" not in mlp_keys and {"toggle_run", "add_lane", "write_script"} <= mlp_keys


async def test_mlp_dataset_and_network_switch_from_the_keyboard_and_replay(tmp_path):
    record = tmp_path / "mlp.toml"
    app = make_app("mlp", record_path=record)
    async with app.run_test(size=SIZE) as pilot:
        app.worker.submit(Step(6))
        await pilot.press("2")  # circles
        app.worker.submit(Step(4))
        await pilot.press("h", "f", "o")
        app.worker.submit(Step(5))
        await settle(app, pilot)
        table = app.worker.latest.snapshot.table["mlp"]
        assert (table["dataset"], table["hidden"], table["activation"], table["norm"]) == (
            "circles", [64, 64], "tanh", "batchnorm")
        assert app.worker.latest.snapshot.step == 5  # the race restarted with the last switch
        assert app.worker.latest.snapshot.payload.dataset == "circles"
        live = app.worker.ask(Trajectories()).result(5)
    replay = Session.from_script(record)
    replay.run()
    for name, hist in live.items():
        np.testing.assert_array_equal(replay.trajectories()[name]["train_loss"], hist["train_loss"])


async def test_a_metric_that_does_not_apply_reads_a_dash():
    session, factory = build_session(argparse.Namespace(device="cpu", mode="mlp", dataset="sine"))
    app = PlaygroundApp(session, factory, live_rates=False, worker_kind="thread", costly_period=None)
    async with app.run_test(size=SIZE) as pilot:
        app.worker.submit(Step(12))
        await settle(app, pilot)
        row = [str(c) for c in app.query_one("#lanes").get_row("sgd")]
        labels = [label for label, _ in MLP_COLUMNS]
        assert row[labels.index("acc")] == "—" and "nan" not in row


# --- statuses and the step counter ----------------------------------------------------------------


def test_statuses_say_what_a_trajectory_is_doing():
    t = np.arange(WINDOW, dtype=float)
    still = np.zeros((WINDOW, 2))
    assert trajectory_status(0, still, np.ones(WINDOW), 1.0, 0.0) == "ready"
    assert trajectory_status(5, still, np.full(WINDOW, 1e-6), 1.0, 0.0) == "converged"
    assert trajectory_status(500, still, np.full(WINDOW, 3.0), 0.0, 0.0) == "stalled"  # at rest, not the minimum
    assert trajectory_status(500, still, np.full(WINDOW, 3.0), 0.0, None) == "converged"  # no known minimum
    creeping = np.stack([t * 1e-9, t * 0], axis=1)
    assert trajectory_status(500, creeping, 2.0 - t * 1e-12, 1e-4, 0.0) == "stalled"  # a plateau
    bounce = np.stack([np.where(t % 2 == 0, -1.0, 1.0), np.zeros(WINDOW)], axis=1)
    assert trajectory_status(500, bounce, np.full(WINDOW, 1.0), 2.0, 0.0) == "oscillating"
    going = np.stack([t, t], axis=1)
    assert trajectory_status(500, going, 10.0 - t * 0.1, 1.0, 0.0) == "running"


def test_lanes_in_a_limit_cycle_or_on_a_plateau_say_so():
    # GD at exactly its stability limit on a quadratic bounces forever; on the plateau it crawls.
    bounce = Session({"expr": "x**2 + y**2"}, [LaneConfig.create("gd", "sgd", lr=1.0, starts=((1.0, 0.5),))])
    bounce.advance(200)
    assert bounce.snapshot(costly=False).lane("gd").status == "oscillating"
    plateau = Session({"surface": "plateau"}, [LaneConfig.create("gd", "sgd", lr=1.0)], registry=REGISTRY)
    plateau.advance(300)
    assert plateau.snapshot(costly=False).lane("gd").status == "stalled"


def test_r_and_surface_switches_restart_the_step_counter_but_not_the_script_clock():
    session = Session({"surface": "booth"}, [LaneConfig.create("g", "sgd", lr=0.01)], registry=REGISTRY)
    session.advance(7)
    session.apply(SetLane("g", {"lr": 0.02}))
    session.apply(Reset())
    session.advance(3)
    snap = session.snapshot(costly=False)
    assert (snap.step, snap.clock) == (3, 10)
    session.apply(SwitchProblem({"surface": "himmelblau"}))
    assert session.snapshot(costly=False).step == 0 and session.clock == 10


def test_restore_lane_resolves_into_the_set_it_logs():
    session = Session({"surface": "booth"}, [LaneConfig.create("g", "adam", lr=0.1, betas=(0.8, 0.99))],
                      registry=REGISTRY)
    session.apply(Nudge("g", "lr", 1))
    session.apply(SetLane("g", {"batch": 8, "betas": [0.5, 0.9]}))
    logged = session.apply(RestoreLane("g"))
    assert logged == SetLane("g", {"lr": 0.1, "betas": [0.8, 0.99], "batch": 1})
    assert "RestoreLane" not in session.to_toml()


# --- sgdtui new -----------------------------------------------------------------------------------


@pytest.mark.parametrize("flags", [["--surface", "rosenbrock"], ["--expr", "x**2 + 10*y**2"], ["--mlp", "xor"], []])
def test_sgdtui_new_prints_a_default_race_that_replays_as_is(flags, tmp_path, capsys):
    path = tmp_path / "race.toml"
    assert main(["new", *flags, "--steps", "40", "-o", str(path)]) == 0
    text = path.read_text()
    assert text.startswith("# The default race on") and ("[[lanes]]" in text or "lanes = [" in text)
    out = tmp_path / "out"
    assert main(["replay", str(path), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 40 and all(lane["diverged_at"] is None for lane in summary["lanes"])
    capsys.readouterr()
    assert main(["new", "--surface", "nope"]) == 2
    assert "unknown surface 'nope'" in capsys.readouterr().err


def test_the_replay_table_never_cuts_a_number(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    script = tmp_path / "s.toml"
    script.write_text('version = 1\nsteps = 3\n[problem]\nsurface = "booth"\n'
                      '[[lanes]]\nname = "a-rather-long-lane-name"\noptimizer = "adam-centered"\nlr = 0.123456789\n')
    assert main(["replay", str(script), "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    final = f"{summary['lanes'][0]['final_loss']:.6g}"
    assert final in printed and "a-rather-long-lane-name" in printed and "adam-centered" in printed
    assert "…" not in printed
