"""Pilot tests of the playground in MLP mode: bindings change the MLP session, modes switch both
ways, surface-only keys notify, landscape slices arrive without blocking, recorded MLP sessions
replay to identical numbers, and a screenshot of the MLP screen."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest

from sgdtui.engine.commands import Nudge, Step, Trajectories
from sgdtui.engine.optimizers import KEY_FACTOR
from sgdtui.engine.schedules import COUPLINGS
from sgdtui.engine.session import Session
from sgdtui.ui.app import PlaygroundApp
from sgdtui.ui.launch import build_session, parse_hidden
from sgdtui.ui.modes import MODES
from sgdtui.ui.widgets.boundary import DecisionBoundaryPlot
from sgdtui.ui.widgets.contour import ContourPlot
from sgdtui.ui.worker import SessionWorker, WorkerOptions

SIZE = (120, 40)


def mlp_args(**overrides) -> argparse.Namespace:
    base = dict(surface=None, expr=None, surfaces=[], script=None, record=None, seed=0, mode="mlp",
                dataset=None, hidden=None, activation=None, norm=None, device="cpu")
    return argparse.Namespace(**{**base, **overrides})


def make_app(costly_period=None, **overrides) -> PlaygroundApp:
    """The MLP playground with the session stepped in a thread (a session process re-imports torch:
    slow; tests/test_process_worker.py covers that worker)."""
    session, factory = build_session(mlp_args(**overrides))
    return PlaygroundApp(session, factory, live_rates=False, costly_period=costly_period, worker_kind="thread")


async def settle(app, pilot) -> None:
    assert app.worker.wait_idle()
    await pilot.pause()
    app._tick()
    await pilot.pause()


def lane(app, name=None):
    return app.worker.latest.snapshot.lane(name or app.selected)


def record_notifications(app) -> list[str]:
    seen: list[str] = []
    original = app.notify

    def notify(message, *a, **kw):
        seen.append(str(message))
        return original(message, *a, **kw)

    app.notify = notify
    return seen


@pytest.mark.parametrize("mode", ["mlp", "surface"])
def test_weight_decay_key_steps_up_from_zero_and_back_to_zero_in_both_modes(mode):
    # The registry's own key step (ParamSpec.nudge with first=1e-4), for every optimizer.
    session, _ = build_session(mlp_args(mode=mode))
    name = session.race.lanes[0].config.name
    values = []
    for direction in [1] * 5 + [-1] * 5:
        session.apply(Nudge(name, "weight_decay", direction))
        values.append(session.race.lane(name).config.hyper["weight_decay"])
    assert values[0] == 1e-4 and math.isclose(values[1], 1e-4 * 10 ** 0.25) and math.isclose(values[4], 1e-3)
    assert math.isclose(values[8], 1e-4) and values[9] == 0.0
    session.apply(Nudge(name, "weight_decay", -1))  # already 0: stays 0
    assert session.race.lane(name).config.hyper["weight_decay"] == 0.0


def test_hidden_sizes_parse_and_bad_ones_name_the_flag():
    assert parse_hidden("16,8") == (16, 8)
    with pytest.raises(ValueError, match="--hidden"):
        parse_hidden("16,x")


async def test_mlp_mode_opens_with_default_race_and_every_binding_steers():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        snap = app.worker.latest.snapshot
        assert app.mode == "mlp" and snap.payload.dataset == "moons" and snap.payload.hidden == (32, 32)
        assert [(l.name, l.base_lr, l.batch) for l in snap.lanes] == [
            ("sgd", 0.1, 32), ("momentum", 0.05, 32), ("adam", 0.01, 32), ("ema-momentum", 0.3, 32)]
        await pilot.press("tab", "tab")  # adam
        await settle(app, pilot)
        assert app.selected == "adam" and app.worker.latest.snapshot.payload.boundary_lane == "adam"
        await pilot.press("plus")
        await settle(app, pilot)
        assert math.isclose(lane(app).base_lr, 0.01 * KEY_FACTOR)
        await pilot.press("minus", "left_square_bracket")
        await settle(app, pilot)
        assert math.isclose(lane(app).base_lr, 0.01) and lane(app).decay != 0.9
        await pilot.press("b")
        await settle(app, pilot)
        assert lane(app).batch == 64
        await pilot.press("B", "B")
        await settle(app, pilot)
        assert lane(app).batch == 16
        await pilot.press("s")
        await settle(app, pilot)
        assert lane(app).schedule != "constant"
        await pilot.press("c")
        await settle(app, pilot)
        assert lane(app).coupling == COUPLINGS[1]
        await pilot.press("d", "d")
        await settle(app, pilot)
        assert math.isclose(lane(app).weight_decay, 1e-4 * 10 ** 0.25)
        await pilot.press("D", "D")
        await settle(app, pilot)
        assert lane(app).weight_decay == 0.0
        await pilot.press("full_stop", "full_stop")
        await settle(app, pilot)
        assert app.worker.latest.snapshot.clock == 2 and lane(app).t == 2
        await pilot.press("x")
        await settle(app, pilot)
        assert "adam" not in [l.name for l in app.worker.latest.snapshot.lanes]
        await pilot.press("r")
        await settle(app, pilot)
        assert all(l.t == 0 for l in app.worker.latest.snapshot.lanes)
        table = app.query_one("#lanes")
        assert "E‖ĝ−g‖²" in table.columns_shown and table.row_count == 3


async def test_surface_only_keys_notify_and_change_nothing():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        seen = record_notifications(app)
        await settle(app, pilot)
        before = app.worker.latest.snapshot.version
        for key in ("7", "S", "e", "left", "z", "Z", "n", "N", "0", "p"):  # 1-6 pick datasets here
            await pilot.press(key)
        await settle(app, pilot)
        assert len([m for m in seen if "surface mode only" in m]) == 10
        assert app.worker.latest.snapshot.version == before and len(app.screen_stack) == 1


async def test_mode_switch_both_ways_and_gradient_noise_arrives():
    app = make_app(costly_period=0.0)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.view.grad_noise and all(v >= 0 for v in app.view.grad_noise.values())
        await pilot.press("m")
        await settle(app, pilot)
        snap = app.worker.latest.snapshot
        assert app.mode == "surface" and snap.payload.surface.name == "pathological"
        assert app.query_one("#surface-view").display and not app.query_one("#mlp-view").display
        await pilot.press("m")
        await settle(app, pilot)
        assert app.mode == "mlp" and app.worker.latest.snapshot.payload.dataset == "moons"
        assert app.query_one("#mlp-view").display and not app.query_one("#surface-view").display


async def test_landscape_slice_appears_without_blocking_frames():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.worker.submit(Step(60))
        await settle(app, pilot)
        await pilot.press("v")  # random directions
        frames = app.frames_rendered
        for _ in range(200):
            await pilot.pause(0.02)
            if app.view.landscape_ready:
                break
        assert app.view.landscape_ready and app.view.landscape.directions == "random"
        assert app.query_one("#slice").display and app.view.landscape.z.shape == (25, 25)
        await pilot.press("V")  # pca directions over the recorded weights
        for _ in range(200):
            await pilot.pause(0.02)
            if app.view.landscape.directions == "pca":
                break
        assert app.view.landscape.directions == "pca" and len(app.view.landscape.path) >= 2
        assert app.view.landscape.lines, "level lines of the slice"
        app._dirty = True
        app._tick()
        assert app.frames_rendered > frames


async def test_tiny_terminal_does_not_crash():
    app = make_app()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.press("space")
        await pilot.pause(0.3)
        await pilot.press("space", "v", "m", "m")
        await settle(app, pilot)
        assert app.worker.alive and app.screen.has_class("too-small")


async def test_record_then_replay_reproduces_the_mlp_run(tmp_path):
    path = tmp_path / "mlp.toml"
    app = make_app()
    app.record_path = path
    async with app.run_test(size=SIZE) as pilot:
        app.worker.submit(Step(15))
        await pilot.press("tab", "plus", "b", "d", "s")
        app.worker.submit(Step(25))
        await pilot.press("tab", "tab", "c", "D", "x")
        app.worker.submit(Step(20))
        await settle(app, pilot)
        live = app.worker.ask(Trajectories()).result(timeout=10)
    assert path.exists() and "mlp" in path.read_text()
    replay = Session.from_script(path)
    replay.run()
    again = replay.trajectories()
    assert sorted(again) == sorted(live) and len(live) == 3
    for name in live:
        assert np.array_equal(live[name]["train_loss"], again[name]["train_loss"]), name


async def test_script_with_mlp_problem_opens_mlp_mode(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('version = 1\nseed = 0\n[problem]\nmlp = { dataset = "sine", hidden = [8] }\n'
                    'device = "cpu"\n[[lanes]]\nname = "a"\noptimizer = "adam"\nlr = 0.01\n')
    args = argparse.Namespace(surface=None, expr=None, surfaces=[], script=str(path), record=None, seed=0)
    session, factory = build_session(args)
    app = PlaygroundApp(session, factory, live_rates=False, costly_period=None, worker_kind="thread")
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.mode == "mlp" and app.worker.latest.snapshot.payload.task == "regression"
        assert app.query_one(DecisionBoundaryPlot).draw_count >= 1


def test_mlp_screen(snap_compare):
    async def run_before(pilot) -> None:
        app = pilot.app
        app.worker.submit(Step(150))
        assert app.worker.wait_idle()
        await pilot.pause()
        app._tick()
        await pilot.pause()

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)


def test_worker_snapshots_skip_gradient_noise_between_estimates():
    args = mlp_args()
    session, _ = build_session(args)
    worker = SessionWorker(session, MODES["mlp"].options(25.0, 1, costly_period=60.0))
    assert all(l.grad_noise is not None for l in worker.latest.snapshot.lanes)  # the first one estimates
    assert all(l.grad_noise is None for l in worker._make_frame().snapshot.lanes)


def test_a_live_worker_skips_the_recorded_noise_probe_and_trains_the_same_numbers():
    """Behind the app nothing reads the evaluation's noise column (only metrics.csv does),
    so a worker's race skips that probe; the losses stay those of a headless run."""
    args = mlp_args()
    session, _ = build_session(args)
    headless, _ = build_session(args)
    worker = SessionWorker(session, MODES["mlp"].options(25.0, 1))
    worker.start()
    try:
        worker.submit(Step(40))
        assert worker.wait_idle()
    finally:
        worker.stop()
    headless.advance(40)
    assert session.race.eval_noise is False and headless.race.eval_noise is True
    live, replayed = session.trajectories(), headless.trajectories()
    for name, columns in replayed.items():
        np.testing.assert_array_equal(live[name]["train_loss"], columns["train_loss"])
    live, replayed = session.race.evaluations(), headless.race.evaluations()
    for name, columns in replayed.items():
        assert len(columns["step"]) >= 4
        np.testing.assert_array_equal(live[name]["val_loss"], columns["val_loss"])
        # the start row was evaluated before the worker began
        assert np.isfinite(columns["grad_noise"]).all() and np.isnan(live[name]["grad_noise"][1:]).all()


def test_pane_throttle_holds_changes_back_while_running_but_never_a_new_structure():
    from sgdtui.ui.mlp_panes import PaneThrottle

    now = [0.0]
    throttle = PaneThrottle(5.0, clock=lambda: now[0])
    assert throttle.due("lanes", 1, throttled=True)  # first data: drawn
    assert not throttle.due("lanes", 1, throttled=False)  # data on screen: never redrawn
    now[0] = 0.05
    assert not throttle.due("lanes", 2, throttled=True)  # too soon while running
    assert throttle.due("other lanes", 2, throttled=True)  # what the pane shows changed: at once
    now[0] = 0.1
    assert throttle.due("other lanes", 3, throttled=False)  # paused: every change at once
    now[0] = 0.15
    assert not throttle.due("other lanes", 4, throttled=True)
    now[0] = 0.35
    assert throttle.due("other lanes", 4, throttled=True)  # the held-back change, one period later
    with pytest.raises(ValueError, match="rate"):
        PaneThrottle(0.0)
    now[0] = 10.0  # long after: due, unless a key's answer defers it
    assert not throttle.due("other lanes", 5, throttled=True, defer=True)
    assert throttle.due("new lanes", 5, throttled=True, defer=True)  # a new structure never waits
    assert throttle.due("new lanes", 6, throttled=False)  # the deferred data, at the next call


async def test_a_frame_answering_a_key_draws_the_table_now_and_leaves_the_plots_to_the_next():
    from sgdtui.ui.view_base import ViewContext
    from sgdtui.ui.widgets.loss import LossPlot

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        view = app.view
        now = [100.0]
        for throttle in (view.boundary_throttle, view.loss_throttle, view.table_throttle, view.metric_throttle):
            throttle.clock, throttle.drawn_at = (lambda: now[0]), now[0]
        boundary, loss = app.query_one(DecisionBoundaryPlot), app.query_one("#train-loss", LossPlot)
        app.worker.submit(Step(3))
        assert app.worker.wait_idle()
        snap = app.worker.latest.snapshot
        now[0] += 10.0  # every pane is due
        draws = (boundary._generation, loss._generation)
        prompt = ViewContext(app.colours, app.selected, app.log_scale, running=True, prompt=True)
        view.show_snapshot(snap, prompt)
        assert (boundary._generation, loss._generation) == draws  # the plots wait for the next frame
        running = ViewContext(app.colours, app.selected, app.log_scale, running=True)
        view.table(snap, running)  # drawn: due
        table_drawn = view.table_throttle.drawn_at
        now[0] += 0.01  # well within the table's period
        app.submit(Step(1))
        assert app.worker.wait_idle()
        later = app.worker.latest.snapshot
        view.table(later, running)
        assert view.table_throttle.drawn_at == table_drawn  # an ordinary frame waits for the period
        view.table(later, prompt)
        assert view.table_throttle.drawn_at == now[0] > table_drawn  # the answer to a key does not
        view.show_snapshot(later, running)
        assert boundary._generation > draws[0] and loss._generation > draws[1]


def test_mlp_worker_publishes_at_most_at_its_rate_when_flat_out():
    import time

    from sgdtui.ui.worker import SPEED_LEVELS

    session, _ = build_session(mlp_args())
    MLP_PUBLISH_RATE = min(25.0, MODES["mlp"].publish_rate or 25.0)  # its own rate, or the frame rate
    worker = SessionWorker(session, MODES["mlp"].options(25.0, SPEED_LEVELS.index(None), costly_period=None))
    assert worker.publish_period == pytest.approx(1.0 / MLP_PUBLISH_RATE)
    worker.start()
    try:
        first_seq, start = worker.latest.seq, time.monotonic()
        worker.set_running(True)
        # At least 0.8 s and two frames of a moving run; a loaded machine just takes longer (up to 10 s).
        deadline = start + 10.0
        while not (time.monotonic() - start >= 0.8 and worker.latest.snapshot.clock > 8
                   and worker.latest.seq - first_seq >= 2):
            assert time.monotonic() < deadline, "the MLP run made no progress in 10 s"
            time.sleep(0.005)
        worker.set_running(False)
        assert worker.wait_idle()
        elapsed = time.monotonic() - start
        # Flat out, frames are throttled to MLP_PUBLISH_RATE; load only makes them rarer.
        assert 2 <= worker.latest.seq - first_seq <= elapsed * MLP_PUBLISH_RATE * 1.5 + 3
    finally:
        worker.stop()


async def test_running_panes_redraw_at_their_rates_and_table_cells_update_in_place():
    from sgdtui.ui.widgets.lanes import LanesTable
    from sgdtui.ui.widgets.loss import LossPlot

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        from sgdtui.ui.view_base import ViewContext

        table, loss = app.query_one(LanesTable), app.query_one("#train-loss", LossPlot)
        row_keys = table.row_names
        boundary = app.query_one(DecisionBoundaryPlot)
        view = app.view
        now = [100.0]
        for throttle in (view.boundary_throttle, view.loss_throttle, view.table_throttle):
            throttle.clock, throttle.drawn_at = (lambda: now[0]), now[0]
        draws = (boundary._generation, loss._generation)
        app.worker.submit(Step(3))
        assert app.worker.wait_idle()
        frame = app.worker.latest
        running = ViewContext(app.colours, app.selected, app.log_scale, running=True)
        view.show_snapshot(frame.snapshot, running)
        # Just drawn: while running, a new step waits for the pane's period.
        assert (boundary._generation, loss._generation) == draws
        now[0] += 0.2
        view.show_snapshot(frame.snapshot, running)
        assert boundary._generation > draws[0] and loss._generation > draws[1]
        generation = boundary._generation
        view.show_snapshot(frame.snapshot, ViewContext(app.colours, app.selected, app.log_scale, running=False))
        assert boundary._generation == generation  # same data: no redraw at all
        assert table.row_names == row_keys  # same lanes: cells replaced, rows kept
        train = app.worker.latest.snapshot.lane(row_keys[0]).train_loss
        app.render_frame(frame)
        assert table.row_names == row_keys and table.get_cell(row_keys[0], "train") != "—" and len(train) == 3


async def test_braille_lines_match_the_text_render():
    from textual.visual import Visual, visualize

    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.worker.submit(Step(20))
        await settle(app, pilot)
        plot = app.query_one(DecisionBoundaryPlot)
        via_text = Visual.to_strips(plot, visualize(plot, plot.render()), plot.size.width, plot.size.height,
                                    plot.visual_style)
        via_lines = [plot.render_line(y) for y in range(plot.size.height)]

        def cells(strips):  # text and colours; the text render's per-cell offsets are for selection only
            return [[(seg.text, seg.style.clear_meta_and_links() if seg.style else None) for seg in s] for s in strips]

        assert cells(via_lines) == cells(via_text)
        assert any("⠁" <= seg.text[:1] <= "⣿" for strip in via_lines for seg in strip)
