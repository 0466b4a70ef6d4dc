"""MLP sessions step in a separate process (ProcessSessionWorker): same numbers, errors shown, no orphans."""

from __future__ import annotations

import argparse
import pickle

import numpy as np
import pytest

from sgdtui.engine.commands import Nudge, Query, ScriptText, SetLane, Step, SwitchProblem, Trajectories
from sgdtui.engine.session import Session
from sgdtui.mlp.snapshot import LossSlice
from sgdtui.ui.app import PlaygroundApp
from sgdtui.ui.launch import build_session
from sgdtui.ui.process_worker import ProcessSessionWorker
from sgdtui.ui.worker import SessionWorker


def mlp_app(**kwargs) -> PlaygroundApp:
    session, factory = build_session(argparse.Namespace(mode="mlp", device="cpu", seed=3))
    return PlaygroundApp(session, factory, live_rates=False, costly_period=None, **kwargs)


class NotAnswered(Query):
    """A query no problem kind answers (module level: it pickles to the child)."""


def assert_gone(process) -> None:
    assert not process.is_alive() and process.exitcode is not None


def test_only_data_crosses_to_the_session_process():
    for item in (SetLane("sgd", {"lr": 0.5}), Nudge("sgd", "lr", 1), SwitchProblem({"mlp": {"dataset": "xor"}}),
                 ScriptText(), Trajectories(), LossSlice("sgd", "pca"), NotAnswered()):
        assert type(pickle.loads(pickle.dumps(item))) is type(item)


def test_worker_kind_picks_the_worker_and_rejects_unknown_kinds():
    assert isinstance(mlp_app().worker, ProcessSessionWorker)  # never started: no process yet
    assert isinstance(mlp_app(worker_kind="thread").worker, SessionWorker)
    surface, factory = build_session(argparse.Namespace())
    assert isinstance(PlaygroundApp(surface, factory).worker, SessionWorker)
    with pytest.raises(ValueError, match="worker_kind"):
        mlp_app(worker_kind="fibre")


async def test_recorded_mlp_run_in_the_session_process_replays_identically_and_the_child_exits(tmp_path):
    path = tmp_path / "mlp.toml"
    app = mlp_app(record_path=path)
    async with app.run_test(size=(120, 40)) as pilot:
        worker = app.worker
        assert isinstance(worker, ProcessSessionWorker)
        worker.submit(Step(12))
        assert worker.wait_idle(30)
        await pilot.press("tab", "+", "b")  # second lane: lr up, batch doubled
        worker.submit(Step(9))
        await pilot.press("w")  # the script query crosses too
        worker.submit(Step(7))
        assert worker.wait_idle(30)
        assert worker.latest.snapshot.clock == 28 and worker.alive
        live = worker.ask(Trajectories()).result(timeout=30)
        process = worker.process
    assert worker.join(15)  # on app exit, after the record was written, the child is reaped
    assert_gone(process)
    replay = Session.from_script(path)
    replay.run()
    ours = replay.trajectories()
    assert list(ours) == list(live)
    second = list(live)[1]
    assert live[second]["lr"][-1] > live[second]["lr"][0]  # the + landed
    for name in live:
        for key, values in live[name].items():
            np.testing.assert_array_equal(ours[name][key], values, err_msg=f"{name}.{key}")


async def test_child_errors_become_notifications_and_a_mode_switch_ends_the_child():
    app = mlp_app()
    async with app.run_test(size=(120, 40)) as pilot:
        worker = app.worker
        assert worker.wait_idle(30)
        worker.submit(SetLane("sgd", {"lr": -5.0}))  # a CommandError, raised in the child
        failed = worker.ask(NotAnswered())
        slice_too_early = worker.ask(LossSlice("sgd", "pca"))  # fewer than two recorded weight vectors
        assert worker.wait_idle(30)
        with pytest.raises(Exception, match="not available"):
            failed.result(timeout=10)
        with pytest.raises(Exception, match="pca directions need"):
            slice_too_early.result(timeout=10)
        await pilot.pause(0.2)
        app._tick()
        messages = [n.message for n in app._notifications]
        assert any("lr" in m for m in messages), messages
        assert worker.alive
        process = worker.process
        await pilot.press("m")
        for _ in range(100):  # the switch builds a surface session first: allow for a busy machine
            if app.mode == "surface":
                break
            await pilot.pause(0.1)
        assert app.mode == "surface" and isinstance(app.worker, SessionWorker)
        assert worker.join(15)
        assert_gone(process)


def test_a_frame_from_the_session_process_is_announced_as_it_arrives():
    """Like a thread worker, the process worker calls on_publish for each frame it receives, so the
    App draws it at once rather than at its next poll."""
    import threading

    assert mlp_app().worker.on_publish is not None  # the App listens to a process worker too
    session, _ = build_session(argparse.Namespace(mode="mlp", device="cpu", seed=3))
    worker = ProcessSessionWorker(session)
    announced = threading.Event()
    seen: list[int] = []

    def on_publish() -> None:
        seen.append(worker.latest.seq)
        announced.set()

    worker.on_publish = on_publish
    worker.start()
    try:
        worker.submit(Step(5))
        assert worker.wait_idle(30)
        assert announced.wait(10)
        assert seen and seen[-1] <= worker.latest.seq and worker.latest.snapshot.clock == 5
    finally:
        worker.stop()
        assert worker.join(15)
