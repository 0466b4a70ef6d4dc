"""The session worker thread and the steering builders (no Textual involved)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from sgdtui.engine import steering
from sgdtui.engine.commands import AddLane, CommandError, Nudge, Query, ScriptText, SetLane, Step, Trajectories
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.optimizers import KEY_FACTOR, OPTIMIZERS
from sgdtui.engine.schedules import COUPLINGS, SCHEDULE_CYCLE
from sgdtui.engine.session import Session
from sgdtui.engine.surfaces import SurfaceRegistry
from sgdtui.ui.sessions import SessionFactory
from sgdtui.ui.worker import SPEED_LEVELS, SessionWorker

REGISTRY = SurfaceRegistry(include_user_dir=False)


def make_session(lanes=None) -> Session:
    if lanes is None:
        return SessionFactory(REGISTRY).build("surface")  # pathological's default race
    return Session({"surface": "pathological"}, lanes, registry=REGISTRY, seed=0)


@pytest.fixture
def worker():
    w = SessionWorker(make_session())
    w.start()
    yield w
    w.stop()
    assert not w.alive


def test_commands_are_applied_and_published(worker):
    worker.submit(SetLane("adam", {"lr": 0.05, "batch": 8}))
    worker.submit(Step(3))
    assert worker.wait_idle()
    lane = worker.latest.snapshot.lane("adam")
    assert (lane.base_lr, lane.batch, lane.t) == (0.05, 8, 3)
    assert worker.latest.snapshot.clock == 3


def test_nudges_read_the_lane_at_the_step_boundary(worker):
    # Two presses before any frame is drawn still give two factors.
    first = worker.submit(Nudge("sgd", "lr", 1))
    worker.submit(Nudge("sgd", "lr", 1))
    assert worker.wait_idle()
    assert worker.latest.snapshot.lane("sgd").base_lr == pytest.approx(KEY_FACTOR**2)
    assert first.result(5) == SetLane("sgd", {"lr": pytest.approx(KEY_FACTOR)})  # logged as the SetLane
    log = worker._session.log
    assert [cmd.settings["lr"] for _, cmd in log] == pytest.approx([KEY_FACTOR, KEY_FACTOR**2])


def test_command_error_is_reported_and_worker_keeps_serving(worker):
    worker.submit(SetLane("nope", {"lr": 1.0}))
    worker.submit(SetLane("sgd", {"lr": -1.0}))
    worker.submit(SetLane("sgd", {"lr": 0.5}))
    assert worker.wait_idle()
    errors = [e.message for e in worker.take_errors()]
    assert len(errors) == 2 and "nope" in errors[0] and "lr" in errors[1]
    assert worker.latest.snapshot.lane("sgd").base_lr == 0.5
    assert worker.take_errors() == []


def test_unexpected_exception_in_a_command_is_reported(worker, monkeypatch):
    def broken(command):
        raise RuntimeError("boom in apply")

    monkeypatch.setattr(worker._session, "_apply", broken)
    worker.submit(SetLane("sgd", {"lr": 0.5}))
    worker.submit(Step(2))
    assert worker.wait_idle()
    [error] = worker.take_errors()
    assert "RuntimeError" in error.message and "boom in apply" in error.message
    assert worker.alive and worker.latest.snapshot.clock == 2


def test_exception_while_running_pauses_and_is_reported(worker):
    session = worker._session
    real_step = session.race.step
    calls = {"n": 0}

    def flaky_step(n=1):
        calls["n"] += 1
        if calls["n"] == 3:
            raise FloatingPointError("step exploded")
        real_step(n)

    session.race.step = flaky_step
    worker.set_running(True)
    deadline = time.monotonic() + 5
    while not worker.errors and time.monotonic() < deadline:
        time.sleep(0.01)
    [error] = worker.take_errors()
    assert "step exploded" in error.message and error.message.startswith("run paused")
    worker.wait_idle()
    assert worker.latest.running is False
    clock = worker.latest.snapshot.clock
    worker.submit(Step(4))  # still serving
    assert worker.wait_idle()
    assert worker.latest.snapshot.clock == clock + 4


def wait_until(condition, timeout: float = 10.0) -> bool:
    """Poll ``condition`` until it holds: fast on an idle machine, patient on a loaded CI runner."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_running_advances_at_the_chosen_speed_and_pause_stops(worker):
    worker.set_speed(SPEED_LEVELS.index(5))
    worker.set_running(True)
    assert wait_until(lambda: worker.latest.snapshot.clock >= 10)
    worker.set_running(False)
    assert worker.wait_idle()
    clock = worker.latest.snapshot.clock
    assert clock >= 10 and clock % 5 == 0  # whole frames of 5 steps
    time.sleep(0.15)
    assert worker.latest.snapshot.clock == clock


def test_flat_out_speed_publishes_throttled_frames(worker):
    worker.set_speed(len(SPEED_LEVELS) - 1)
    first_seq, start = worker.latest.seq, time.monotonic()
    worker.set_running(True)
    # At least 0.6 s, and until the run has really moved (longer when the machine is loaded).
    assert wait_until(lambda: time.monotonic() - start >= 0.6 and worker.latest.snapshot.clock > 10)
    worker.set_running(False)
    assert worker.wait_idle()
    elapsed = time.monotonic() - start
    publishes = worker.latest.seq - first_seq
    # About one frame per frame period, not one per 20 ms chunk; load only makes frames rarer.
    assert 1 <= publishes <= elapsed * 25 * 1.5 + 3


def test_flat_out_waits_for_a_lagging_app_only_briefly_and_steps_on(worker):
    worker.set_speed(len(SPEED_LEVELS) - 1)
    worker.frame_drawn(worker.latest.seq)  # an App draws frames ... then falls behind for good
    worker.set_running(True)
    start = time.monotonic()
    assert wait_until(lambda: worker.latest.snapshot.clock > 50)
    first_seq, first_clock = worker.latest.seq, worker.latest.snapshot.clock
    time.sleep(0.5)
    # Each wait for the App is cut short (half a publish period): frames and steps go on.
    assert worker.latest.seq - first_seq >= 3 and worker.latest.snapshot.clock > first_clock
    drawn = worker.latest.seq
    worker.frame_drawn(drawn)  # the App caught up: the worker's wait for this frame ends
    assert wait_until(lambda: worker.latest.seq > drawn)
    worker.set_running(False)
    assert worker.wait_idle() and time.monotonic() - start < 30


def test_step_once_pauses_and_takes_exactly_one_step(worker):
    worker.set_running(True)
    time.sleep(0.1)
    worker.step_once()
    assert worker.wait_idle()
    clock = worker.latest.snapshot.clock
    time.sleep(0.1)
    assert worker.latest.running is False and worker.latest.snapshot.clock == clock


def test_surface_snapshots_carry_a_hessian_only_for_the_selected_lane():
    session = make_session()
    names = [lane.config.name for lane in session.race.lanes]
    assert len(names) > 1
    worker = SessionWorker(session)
    worker.start()
    try:
        worker.selected = "rmsprop"
        worker.submit(Step(2))
        assert worker.wait_idle()
        snap = worker.latest.snapshot
        assert snap.clock == 2
        assert [lane.name for lane in snap.lanes if lane.hessian is not None] == ["rmsprop"]
        worker.selected = None  # nobody selected (a headless reader): every lane's read-out
        worker.refresh()
        assert worker.wait_idle()
        assert all(lane.hessian is not None for lane in worker.latest.snapshot.lanes)
    finally:
        worker.stop()


def test_submit_resolves_to_the_command_as_logged(worker):
    # Two adds of the same optimizer before any frame: the session names each when it applies it.
    first = worker.submit(AddLane({"optimizer": "adam"}))
    second = worker.submit(AddLane({"optimizer": "adam"}))
    rejected = worker.submit(SetLane("ghost", {"lr": 1.0}))
    assert worker.wait_idle()
    assert first.result(5).lane["name"] == "adam-2" and second.result(5).lane["name"] == "adam-3"
    assert rejected.result(5) is None and "ghost" in worker.take_errors()[0].message
    assert [lane.name for lane in worker.latest.snapshot.lanes][-2:] == ["adam-2", "adam-3"]


def test_queries_are_answered_in_the_worker(worker):
    assert "[[lanes]]" in worker.ask(ScriptText()).result(5)
    class Unknown(Query):
        """A query no problem kind answers."""

    future = worker.ask(Unknown())
    with pytest.raises(CommandError, match="not available"):
        future.result(5)
    assert worker.alive


def test_script_events_fire_on_time_while_stepping(tmp_path):
    script = tmp_path / "s.toml"
    script.write_text(
        'version = 1\nseed = 3\nsteps = 20\n[problem]\nsurface = "pathological"\n'
        '[[lanes]]\nname = "a"\noptimizer = "sgd"\nlr = 1.0\nnoise = 0.5\n'
        '[[events]]\nstep = 7\nlane = "a"\nset = { lr = 0.25 }\n'
    )
    worker = SessionWorker(Session.from_script(script))
    worker.start()
    worker.submit(Step(20))
    worker.wait_idle()
    ours = worker.ask(Trajectories()).result(5)
    log = list(worker._session.log)
    worker.stop()
    assert log[0][0] == 7
    replay = Session.from_script(script)
    replay.run()
    for key, value in replay.trajectories()["a"].items():
        np.testing.assert_array_equal(ours["a"][key], value)


# --- steering builders -----------------------------------------------------------------------


def test_noise_steps_up_by_doubling_and_back_to_zero():
    up = [0.0]
    for _ in range(3):
        up.append(steering.next_noise(up[-1], 1))
    assert up == [0.0, 0.1, 0.2, 0.4]
    down = [0.4]
    for _ in range(3):
        down.append(steering.next_noise(down[-1], -1))
    assert down == [0.4, 0.2, 0.1, 0.0]


def test_nudges_resolve_into_settings():
    session = make_session([LaneConfig.create("m", "momentum", lr=0.1, momentum=0.9),
                            LaneConfig.create("l", "sgld", lr=0.01)])

    def settings(what, direction=1, lane="m"):
        return steering.nudged_settings(session.race.lane(lane).config, Nudge(lane, what, direction))

    assert settings("batch", -1) == {"batch": 1}
    assert settings("batch", 1) == {"batch": 2}
    assert settings("schedule") == {"schedule": SCHEDULE_CYCLE[1]}
    assert settings("coupling") == {"coupling": COUPLINGS[1]}
    assert settings("decay", 1)["momentum"] == pytest.approx(1 - 0.1 / KEY_FACTOR)
    assert OPTIMIZERS["sgld"].decay_param is None
    with pytest.raises(CommandError, match="no β"):
        settings("decay", 1, lane="l")
    with pytest.raises(CommandError, match="ghost"):
        session.apply(Nudge("ghost", "lr", 1))
    with pytest.raises(CommandError, match="unknown nudge"):
        session.apply(Nudge("m", "temperature", 1))


def test_a_scripts_run_pauses_at_its_steps_then_goes_on(tmp_path):
    script = tmp_path / "s.toml"
    script.write_text('version = 1\nsteps = 30\n[problem]\nsurface = "booth"\n'
                      '[[lanes]]\nname = "a"\noptimizer = "sgd"\nlr = 0.01\n')
    worker = SessionWorker(Session.from_script(script))
    worker.start()
    try:
        worker.set_speed(SPEED_LEVELS.index(None))  # flat out: the pause must still land exactly
        worker.set_running(True)
        assert wait_until(lambda: not worker.latest.running and worker.latest.script_end == 30)
        assert worker.latest.snapshot.clock == 30
        [note] = worker.take_errors()
        assert note.severity == "information" and "script's end (step 30)" in note.message
        worker.set_running(True)  # space goes on, past the script's end
        assert wait_until(lambda: worker.latest.snapshot.clock > 40)
        assert worker.latest.script_end is None
    finally:
        worker.stop()
