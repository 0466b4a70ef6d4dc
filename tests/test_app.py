"""Pilot tests of the playground: every binding changes the session as it says, errors become
notifications, recorded sessions replay to identical numbers, tiny terminals do not crash."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from sgdtui.engine.optimizers import KEY_FACTOR, OPTIMIZERS
from sgdtui.engine.schedules import COUPLINGS, SCHEDULE_CYCLE
from sgdtui.engine.commands import Reset, ScriptText, SetLane, Step, Trajectories
from sgdtui.engine.session import Session
from sgdtui.engine.surfaces import SurfaceRegistry
from sgdtui.ui.app import BINDINGS, MIN_SIZE, PlaygroundApp
from sgdtui.ui.launch import build_session, run_tui
from sgdtui.ui.screens.expression import ExpressionScreen
from sgdtui.ui.screens.help import HelpScreen
from sgdtui.ui.screens.pickers import PickerScreen
from sgdtui.ui.widgets.contour import ContourPlot
from sgdtui.ui.worker import SPEED_LEVELS

REGISTRY = SurfaceRegistry(include_user_dir=False)
SIZE = (80, 24)
WIDE = (120, 40)


def args(**overrides) -> argparse.Namespace:
    base = dict(surface=None, expr=None, surfaces=[], script=None, record=None, seed=0)
    return argparse.Namespace(**{**base, **overrides})


def make_app(**kwargs) -> PlaygroundApp:
    session, factory = build_session(args(device="cpu"))
    # MLP sessions (after an m) step in a thread here: a session process re-imports torch (slow);
    # tests/test_process_worker.py covers that worker.
    return PlaygroundApp(session, factory, live_rates=False, worker_kind="thread", **kwargs)


async def settle(app, pilot) -> None:
    """Drain the worker, then let the app draw the latest frame."""
    assert app.worker.wait_idle()
    await pilot.pause()
    app._tick()
    await pilot.pause()


def lane(app, name=None):
    snap = app.worker.latest.snapshot
    return snap.lane(name or app.selected)


def record_notifications(app) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    original = app.notify

    def notify(message, *a, severity="information", **kw):
        seen.append((str(message), severity))
        return original(message, *a, severity=severity, **kw)

    app.notify = notify
    return seen


async def test_default_race_opens_paused_on_pathological():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        snap = app.worker.latest.snapshot
        assert snap.payload.surface.name == "pathological" and snap.clock == 0
        assert [(l.name, l.optimizer, l.base_lr) for l in snap.lanes] == [
            ("sgd", "sgd", 1.0), ("ema-momentum", "ema-momentum", 1.0), ("rmsprop", "rmsprop", 0.3), ("adam", "adam", 0.3)]
        assert all(np.array_equal(l.current, [[-4.0, 5.0]]) for l in snap.lanes)
        assert app.selected == "sgd" and not app.running
        status = app.query_one("#status").text
        assert "pathological" in status and "step 0" in status and "2/λmax" in status


async def test_space_runs_and_pauses_and_full_stop_steps_once():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("full_stop")
        await settle(app, pilot)
        assert app.worker.latest.snapshot.clock == 1
        await pilot.press("space")
        await pilot.pause(0.3)
        await pilot.press("space")
        await settle(app, pilot)
        clock = app.worker.latest.snapshot.clock
        assert clock > 1 and not app.worker.latest.running
        await pilot.pause(0.15)
        assert app.worker.latest.snapshot.clock == clock
        assert app.query_one("#contour", ContourPlot).draw_count >= 2


async def test_lr_beta_batch_keys_change_the_selected_lane():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab")  # ema-momentum: lr 1.0, beta 0.9
        assert app.selected == "ema-momentum"
        await pilot.press("plus", "plus", "minus", "equals_sign")
        await settle(app, pilot)
        assert lane(app).base_lr == pytest.approx(KEY_FACTOR**2)
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        beta_hp = OPTIMIZERS["ema-momentum"].param("beta")
        assert lane(app).hyper["beta"] == pytest.approx(beta_hp.nudge(0.9, 1))
        await pilot.press("left_square_bracket", "left_square_bracket")
        await settle(app, pilot)
        assert lane(app).hyper["beta"] == pytest.approx(beta_hp.nudge(beta_hp.nudge(beta_hp.nudge(0.9, 1), -1), -1))
        await pilot.press("b", "b", "b", "B")
        await settle(app, pilot)
        assert lane(app).batch == 4
        assert lane(app, "sgd").base_lr == 1.0 and lane(app, "sgd").batch == 1  # others untouched


async def test_beta_key_moves_adams_beta1_and_reports_missing_beta():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        seen = record_notifications(app)
        await pilot.press("shift+tab")  # wraps to the last lane: adam
        assert app.selected == "adam"
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        beta1, beta2 = lane(app).hyper["betas"]
        assert beta1 == pytest.approx(1 - 0.1 / KEY_FACTOR) and beta2 == 0.999
        app.add_lane("sgld")  # no β
        await settle(app, pilot)
        assert app.selected == "sgld"
        await pilot.press("right_square_bracket")
        await settle(app, pilot)
        assert any("no β" in m and sev == "error" for m, sev in seen)


async def test_schedule_coupling_and_noise_keys():
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:  # every column shows at 120
        await pilot.press("s", "s", "c", "n", "n", "n", "N")
        await settle(app, pilot)
        sgd = lane(app, "sgd")
        assert sgd.schedule.startswith(SCHEDULE_CYCLE[2])
        assert sgd.coupling == COUPLINGS[1]
        assert sgd.noise == pytest.approx(0.2)
        await pilot.press("N", "N", "N")
        await settle(app, pilot)
        assert lane(app, "sgd").noise == 0.0
        # The table shows the effective lr after coupling (linear: batch 2 -> 2 x lr).
        await pilot.press("b")
        await settle(app, pilot)
        sgd = lane(app, "sgd")
        assert sgd.t == 0 and sgd.effective_lr == pytest.approx(2 * sgd.base_lr)  # cosine at t = 0 is the base lr
        table = app.query_one("#lanes")
        assert "lin" in [str(c) for c in table.get_row("sgd")]  # abbreviated in the table ...
        assert "× linear (B = 2)" in app.query_one("#status").text  # ... in full in the status line


async def test_tab_cycles_lanes_and_table_follows():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        order = []
        for _ in range(5):
            await pilot.press("tab")
            order.append(app.selected)
        assert order == ["ema-momentum", "rmsprop", "adam", "sgd", "ema-momentum"]
        await settle(app, pilot)
        assert app.query_one("#lanes").cursor_row == 1
        await pilot.press("shift+tab", "shift+tab")
        assert app.selected == "adam"


async def test_add_lane_through_the_picker_and_remove_lane():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        assert isinstance(app.screen, PickerScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, PickerScreen)
        await pilot.press("a", "down", "enter")  # the second optimizer in the registry
        await settle(app, pilot)
        second = list(OPTIMIZERS)[1]
        names = [l.name for l in app.worker.latest.snapshot.lanes]
        assert names[-1] == second and app.selected == second
        await pilot.press("x")
        await settle(app, pilot)
        assert [l.name for l in app.worker.latest.snapshot.lanes] == ["sgd", "ema-momentum", "rmsprop", "adam"]
        assert app.selected == "adam"
        await pilot.press("a", "enter")  # sgd again: gets a fresh name
        await settle(app, pilot)
        assert app.selected == "sgd-2" and lane(app).optimizer == "sgd"


async def test_reset_returns_lanes_to_their_starts():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.worker.submit(Step(20))
        await settle(app, pilot)
        assert not np.array_equal(lane(app, "adam").current, [[-4.0, 5.0]])
        await pilot.press("r")
        await settle(app, pilot)
        assert all(l.t == 0 and np.array_equal(l.current, [[-4.0, 5.0]]) for l in app.worker.latest.snapshot.lanes)


async def test_number_keys_and_surface_picker_switch_surfaces():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        quick = app.quick_surfaces()
        assert len(quick) == 9 and quick[0] == "pathological"
        await pilot.press("2")
        await settle(app, pilot)
        assert app.worker.latest.snapshot.payload.surface.name == quick[1]
        await pilot.press("8")
        await settle(app, pilot)
        assert app.worker.latest.snapshot.payload.surface.name == quick[7]
        await pilot.press("S")
        assert isinstance(app.screen, PickerScreen)
        await pilot.press("home", "enter")
        await settle(app, pilot)
        assert app.worker.latest.snapshot.payload.surface.name == REGISTRY.names()[0]
        assert app.view.limits == (REGISTRY.get(REGISTRY.names()[0]).xlim, REGISTRY.get(REGISTRY.names()[0]).ylim)


async def test_expression_key_accepts_good_and_explains_bad_input():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        assert isinstance(app.screen, ExpressionScreen)
        await pilot.press(*"x**2 + yy", "enter")
        assert isinstance(app.screen, ExpressionScreen)  # nothing lost: still open, text kept
        error = str(app.screen.query_one("#expr-error").render())
        assert "'yy'" in error and "\n" not in error
        assert app.screen.query_one("Input").value == "x**2 + yy"
        await pilot.press("backspace", "enter")
        await settle(app, pilot)
        snap = app.worker.latest.snapshot
        assert snap.payload.surface.origin == "expression" and snap.payload.surface.expr == "x**2 + y"


async def test_pan_and_zoom_change_the_view_and_trace_levels_off_the_loop():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        (x0, x1), (y0, y1) = app.view.limits
        await pilot.press("right", "up")
        assert np.allclose(app.view.limits, ((x0 + 1.0, x1 + 1.0), (y0 + 1.4, y1 + 1.4)))
        await pilot.press("left", "down", "z")
        (a0, a1), (b0, b1) = app.view.limits
        assert (a1 - a0) == pytest.approx((x1 - x0) / 1.25) and (a0 + a1) / 2 == pytest.approx((x0 + x1) / 2)
        await pilot.press("Z")
        assert np.allclose(app.view.limits, ((x0, x1), (y0, y1)))
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.query_one("#contour", ContourPlot).view == app.view.limits and app.view.levels_ready
        assert len(app.view._levels) >= 3  # each new view traced once, in a thread worker


async def test_log_scale_and_speed_keys():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("l")
        assert app.log_scale
        await pilot.press("l")
        assert not app.log_scale
        start = app.speed_index
        await pilot.press("greater_than_sign")
        await settle(app, pilot)
        assert app.speed_index == start + 1 and app.worker.latest.steps_per_frame == SPEED_LEVELS[start + 1]
        for _ in range(10):
            await pilot.press("greater_than_sign")
        await settle(app, pilot)
        assert app.worker.latest.steps_per_frame is None  # flat out
        for _ in range(10):
            await pilot.press("less_than_sign")
        await settle(app, pilot)
        assert app.worker.latest.steps_per_frame == SPEED_LEVELS[0]


async def test_help_lists_every_binding_and_the_palette_offers_everything():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.text
        for binding in BINDINGS:
            if not binding.action.startswith(("quick_surface", "quick_dataset")):
                assert binding.description in text
        for name in app.quick_surfaces():  # the numbered keys name what they open
            assert f"surface: {name}" in text
        assert "dataset: moons (MLP)" in text
        for word in ("lr", "β", "batch", "schedule", "coupling", "noise", "temp", "tab", "ctrl+p"):
            assert word in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Run" in titles and "Write script" in titles
        assert {f"Surface: {n}" for n in REGISTRY.names()} <= set(titles)
        assert {f"Add lane: {n}" for n in OPTIMIZERS} <= set(titles)


async def test_write_key_writes_a_replayable_script(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        seen = record_notifications(app)
        await pilot.press("plus", "full_stop", "w")
        await settle(app, pilot)
        [path] = list(tmp_path.glob("sgdtui-session-*.toml"))
        assert any(str(path) in m for m, _ in seen)
        replay = Session.from_script(path)
        replay.run()
        assert replay.clock == 1 and replay.race.lane("sgd").config.hyper["lr"] == pytest.approx(KEY_FACTOR)


async def test_record_then_replay_reproduces_the_run_exactly(tmp_path):
    record = tmp_path / "run.toml"
    app = make_app(record_path=record)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("n", "n", "b", "full_stop", "full_stop", "tab", "plus", "s", "space")
        await pilot.pause(0.3)
        await pilot.press("space", "tab", "right_square_bracket", "c", "full_stop")
        app.add_lane("nesterov")
        await pilot.press("full_stop", "full_stop", "3", "full_stop", "r", "full_stop", "full_stop")
        await settle(app, pilot)
        ours = app.worker.ask(Trajectories()).result(5)
        clock = app.worker.latest.snapshot.clock
        await pilot.press("q")
    assert record.exists()
    replay = Session.from_script(record)
    replay.run()
    assert replay.clock == clock
    theirs = replay.trajectories()
    # key 3 switched to himmelblau with its default race: the nesterov lane added before it is gone
    assert set(theirs) == set(ours) == {"sgd", "momentum", "rmsprop", "adam"}
    for name in ours:
        for key in ours[name]:
            np.testing.assert_array_equal(ours[name][key], theirs[name][key], err_msg=f"{name}.{key}")


async def test_worker_exception_becomes_a_notification_and_app_still_responds():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        seen = record_notifications(app)

        real_apply = app.worker._session._apply

        def broken(command):
            if isinstance(command, Reset):
                raise RuntimeError("simulated worker failure")
            return real_apply(command)

        app.worker._session._apply = broken
        app.worker.submit(Reset())
        app.worker.submit(SetLane("sgd", {"lr": -5.0}))  # a CommandError
        await settle(app, pilot)
        assert [sev for m, sev in seen if "simulated worker failure" in m] == ["error"]
        assert any("lr" in m and sev == "error" for m, sev in seen if "simulated" not in m)
        await pilot.press("plus", "full_stop")
        await settle(app, pilot)
        assert lane(app, "sgd").base_lr == pytest.approx(KEY_FACTOR) and lane(app, "sgd").t == 1


async def test_diverging_lane_keeps_the_plots_alive():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        seen = record_notifications(app)
        app.worker.submit(SetLane("sgd", {"lr": 1e6, "noise": 100.0}))
        app.worker.submit(Step(30))
        await settle(app, pilot)
        await pilot.press("l")
        await settle(app, pilot)
        await pilot.pause(0.1)
        sgd = lane(app, "sgd")
        assert sgd.status.startswith("diverged") or not np.isfinite(sgd.loss).all() or abs(sgd.current).max() > 10
        assert app.query_one("#contour", ContourPlot).draw_count >= 1
        assert not [m for m, sev in seen if sev == "error"]


async def test_tiny_terminal_shows_a_notice_and_does_not_crash():
    app = make_app()
    async with app.run_test(size=(40, 12)) as pilot:
        await pilot.press("space")
        await pilot.pause(0.2)
        await pilot.press("plus", "tab", "space")
        await settle(app, pilot)
        assert app.screen.has_class("too-small")
        assert app.query_one("#too-small").display
        await pilot.resize_terminal(*SIZE)
        await pilot.pause()
        assert not app.screen.has_class("too-small")
        await pilot.resize_terminal(MIN_SIZE[0] - 1, MIN_SIZE[1])
        await pilot.pause()
        assert app.screen.has_class("too-small")


@pytest.mark.parametrize("bad, fragment", [
    (dict(surface="nowhere"), "unknown surface 'nowhere'"),
    (dict(expr="x**2 + zz"), "'zz'"),
    (dict(script="/nonexistent/script.toml"), "cannot read script"),
    (dict(surface="rosenbrock", expr="x"), "either --surface or --expr"),
])
def test_bad_cli_input_is_one_line_on_stderr_with_exit_2(bad, fragment, capsys):
    assert run_tui(args(**bad)) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1 and err.startswith("sgdtui: error:")


def test_script_and_expr_start_sessions(tmp_path):
    session, _ = build_session(args(expr="x**2 + 3*y**2", seed=5))
    assert session.problem.surface.origin == "expression" and session.seed == 5
    assert session.initial_problem == {"expr": "x**2 + 3*y**2"}
    path = tmp_path / "s.toml"
    path.write_text(session.to_toml())
    again, _ = build_session(args(script=str(path)))
    assert again.problem.surface.expr == "x**2 + 3*y**2" and [l.config.name for l in again.race.lanes] == [
        l.config.name for l in session.race.lanes]


# --- review fixes: lane names, scripts, recording across mode switches, coupling cell ---------------


async def test_two_quick_adds_of_one_optimizer_give_two_lanes_and_select_the_last():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        seen = record_notifications(app)
        app.add_lane("sgd")
        app.add_lane("sgd")  # before any frame shows the first one
        await settle(app, pilot)
        names = [l.name for l in app.worker.latest.snapshot.lanes]
        assert names[-2:] == ["sgd-2", "sgd-3"] and app.selected == "sgd-3"
        assert not [m for m, sev in seen if sev == "error"]
        script = app.worker.ask(ScriptText()).result(5)
        assert 'name = "sgd-2"' in script and 'name = "sgd-3"' in script  # the log holds resolved names


async def test_weight_decay_keys_work_in_surface_mode():
    assert not any("(MLP)" in b.description for b in BINDINGS if b.action.startswith("weight_decay"))
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("d", "d")
        await settle(app, pilot)
        assert lane(app, "sgd").hyper["weight_decay"] == pytest.approx(1e-4 * KEY_FACTOR)
        await pilot.press("D", "D", "D")
        await settle(app, pilot)
        assert lane(app, "sgd").hyper["weight_decay"] == 0.0


def test_free_path_appends_a_counter_when_the_file_exists(tmp_path):
    from sgdtui.ui.session_actions import free_path

    target = tmp_path / "run.toml"
    assert free_path(target) == target
    target.write_text("x")
    assert free_path(target) == tmp_path / "run-2.toml"
    (tmp_path / "run-2.toml").write_text("x")
    assert free_path(target) == tmp_path / "run-3.toml"


async def test_write_key_twice_in_one_second_keeps_both_scripts(tmp_path, monkeypatch):
    import datetime as dt

    import sgdtui.ui.session_actions as app_module

    class FrozenClock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2024, 5, 6, 7, 8, 9)

    monkeypatch.setattr(app_module, "datetime", FrozenClock)
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("w", "full_stop", "w", "full_stop", "w")
        await settle(app, pilot)
    stem = "sgdtui-session-20240506-070809"
    assert sorted(p.name for p in tmp_path.glob("*.toml")) == [f"{stem}-2.toml", f"{stem}-3.toml", f"{stem}.toml"]
    for name, clock in ((f"{stem}.toml", 0), (f"{stem}-2.toml", 1), (f"{stem}-3.toml", 2)):
        replay = Session.from_script(tmp_path / name)
        replay.run()
        assert replay.clock == clock


async def test_mode_switch_while_recording_writes_the_outgoing_session(tmp_path):
    record = tmp_path / "run.toml"
    app = make_app(record_path=record)
    async with app.run_test(size=SIZE) as pilot:
        seen = record_notifications(app)
        await pilot.press("plus", "full_stop", "full_stop", "full_stop")
        await settle(app, pilot)
        await pilot.press("m")
        await settle(app, pilot)
        assert app.mode == "mlp"
        surface_file = tmp_path / "run.surface.toml"
        assert any(str(surface_file) in m for m, _ in seen)
        await pilot.press("full_stop")
        await settle(app, pilot)
        await pilot.press("m")  # back: the MLP session is kept as well
        await settle(app, pilot)
        assert app.mode == "surface"
        await pilot.press("m")  # a second surface session gets its own file
        await settle(app, pilot)
        await pilot.press("q")
    replay = Session.from_script(surface_file)
    replay.run()
    assert replay.kind == "surface" and replay.clock == 3
    assert replay.race.lane("sgd").config.hyper["lr"] == pytest.approx(KEY_FACTOR)
    mlp = Session.from_script(tmp_path / "run.mlp.toml")
    mlp.run()
    assert mlp.kind == "mlp" and mlp.clock == 1
    assert Session.from_script(tmp_path / "run.surface-2.toml").kind == "surface"
    assert Session.from_script(record).kind == "mlp"  # the session open at exit


async def test_mode_switch_refuses_when_the_recorded_session_cannot_be_written(tmp_path):
    record = tmp_path / "missing-dir" / "run.toml"
    app = make_app(record_path=record)
    async with app.run_test(size=SIZE) as pilot:
        seen = record_notifications(app)
        await pilot.press("full_stop", "m")
        await settle(app, pilot)
        assert app.mode == "surface" and app.worker.latest.snapshot.clock == 1
        assert any("mode switch would drop the recorded session" in m and sev == "error" for m, sev in seen)
        app.record_path = None  # let the app exit without another failed write


async def test_momentum_coupling_reads_mu_zero_for_lanes_without_heavy_ball_momentum():
    from sgdtui.ui.present import coupling_text

    assert coupling_text("adam", OPTIMIZERS["adam"].defaults(), "momentum") == "momentum (μ=0)"
    assert coupling_text("sgd", {**OPTIMIZERS["sgd"].defaults(), "momentum": 0.9}, "momentum") == "momentum"
    assert coupling_text("adam", OPTIMIZERS["adam"].defaults(), "linear") == "linear"
    app = make_app()
    async with app.run_test(size=WIDE) as pilot:  # every column shows at 120
        await pilot.press("shift+tab", *["c"] * COUPLINGS.index("momentum"))  # adam
        await settle(app, pilot)
        assert lane(app, "adam").coupling == "momentum"
        assert "mom" in [str(cell) for cell in app.query_one("#lanes").get_row("adam")]
        assert "momentum (μ=0)" in app.query_one("#status").text
