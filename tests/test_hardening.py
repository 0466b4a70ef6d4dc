"""Nothing lost when the session dies, hangs or a write fails: the App's own copy of the script,
a visible "not responding" state, a restart from the script, checked record paths."""

from __future__ import annotations

import argparse
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from sgdtui.engine.commands import AddLane, Caption, Nudge, SetLane, Step, SwitchProblem, Trajectories
from sgdtui.engine.session import Session
from sgdtui.engine.surfaces import SurfaceRegistry
from sgdtui.ui import process_worker, worker as worker_module
from sgdtui.ui.app import PlaygroundApp
from sgdtui.ui.launch import build_session, run_tui
from sgdtui.ui.process_worker import ProcessSessionWorker
from sgdtui.ui.script_mirror import ScriptMirror
from sgdtui.ui.session_actions import check_writable
from sgdtui.ui.worker import SessionWorker

REGISTRY = SurfaceRegistry(include_user_dir=False)


def wait_until(predicate, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def drive(worker):
    for command in (Step(5), Nudge("adam", "lr", 1), Step(3), AddLane({"optimizer": "sgd", "lr": 0.01}),
                    SetLane("rmsprop", {"batch": 4, "noise": 0.5}), Caption("half way", False), Step(4),
                    SwitchProblem({"surface": "booth"}), Step(2)):
        worker.submit(command)


def test_the_mirror_writes_what_the_session_writes():
    session = Session({"surface": "pathological"}, [], registry=REGISTRY)
    session.apply(AddLane({"name": "adam", "optimizer": "adam", "lr": 0.1}))
    session.apply(AddLane({"name": "rmsprop", "optimizer": "rmsprop", "lr": 0.1}))
    worker = SessionWorker(session)
    mirror = ScriptMirror(session.to_script(), session.pending)
    worker.start()
    try:
        drive(worker)
        assert worker.wait_idle(20)
        mirror.confirm(worker.take_logged())
        mirror.seen(worker.latest.snapshot.clock)
        assert mirror.to_toml() == session.to_toml()
        assert mirror.clock == 14
    finally:
        worker.stop()


def mlp_app(**kwargs) -> PlaygroundApp:
    session, factory = build_session(argparse.Namespace(mode="mlp", device="cpu", seed=3))
    return PlaygroundApp(session, factory, live_rates=False, costly_period=None, **kwargs)


async def settle(app, pilot):
    await pilot.pause(0.05)
    app._tick()
    await pilot.pause(0.05)


async def test_a_killed_session_process_loses_nothing_and_restarts_from_the_script(tmp_path):
    record = tmp_path / "run.toml"
    app = mlp_app(record_path=record)
    async with app.run_test(size=(120, 40)) as pilot:
        worker = app.worker
        assert isinstance(worker, ProcessSessionWorker)
        worker.submit(Step(6))
        await pilot.press("+")  # the selected lane's lr up: a logged SetLane
        worker.submit(Step(4))
        assert worker.wait_idle(60)
        await settle(app, pilot)
        before = worker.ask(Trajectories()).result(timeout=30)
        os.kill(worker.process.pid, signal.SIGKILL)
        assert wait_until(lambda: worker.health() is not None)
        await settle(app, pilot)
        assert "exited" in app.query_one("#status").text and "ctrl+r" in app.query_one("#status").text
        await pilot.press("w")  # written from the App's copy: the dead process is not asked
        assert record.exists() and "lr" in record.read_text()
        await pilot.press("ctrl+r")
        assert wait_until(lambda: app.worker is not worker and app.worker.alive, 60)
        assert app.worker.wait_idle(60)
        await settle(app, pilot)
        assert app.worker.latest.snapshot.clock == 10 and app.worker.health() is None
        after = app.worker.ask(Trajectories()).result(timeout=30)
        for name in before:  # the restarted session replayed to the same numbers
            for key, values in before[name].items():
                np.testing.assert_array_equal(after[name][key], values, err_msg=f"{name}.{key}")
        app.worker.submit(Step(2))
        assert app.worker.wait_idle(60)
        new = app.worker
    assert new.join(15) and worker.join(15)
    replay = Session.from_script(record)
    assert replay.steps == 12


async def test_a_stopped_session_process_shows_and_quitting_still_records(tmp_path, monkeypatch):
    monkeypatch.setattr(process_worker, "UNRESPONSIVE_SECONDS", 0.5)
    record = tmp_path / "run.toml"
    app = mlp_app(record_path=record)
    async with app.run_test(size=(120, 40)) as pilot:
        worker = app.worker
        worker.submit(Step(3))
        assert worker.wait_idle(60)
        await settle(app, pilot)
        os.kill(worker.process.pid, signal.SIGSTOP)
        try:
            await pilot.press("+")  # never answered
            assert wait_until(lambda: worker.health() is not None, 10)
            await settle(app, pilot)
            assert "not answered" in app.query_one("#status").text
            started = time.monotonic()
            await pilot.press("w")
            assert time.monotonic() - started < 2.0  # never waits on the session
            assert record.exists()
        finally:
            process = worker.process
    # Quitting wrote the record and the stopped child is killed, not left behind.
    assert worker.join(20)
    assert not process.is_alive()
    assert Session.from_script(record).steps == 3


@pytest.mark.parametrize("target, message", [
    ("missing-dir/run.toml", "does not exist"),
    ("/dev/full", "not a regular file"),
    (".", "is a folder"),
])
def test_record_paths_are_checked_before_the_run(tmp_path, capsys, target, message):
    path = target if target.startswith("/") else str(tmp_path / target)
    args = argparse.Namespace(record=path, surface=None, expr=None, surfaces=[], script=None, seed=0)
    assert run_tui(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--record" in err and message in err


def test_a_writable_record_path_passes(tmp_path):
    assert check_writable(tmp_path / "run.toml") is None
    (tmp_path / "run.toml").write_text("old")
    assert check_writable(tmp_path / "run.toml") is None


async def test_a_record_that_cannot_be_written_goes_to_the_state_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    session, factory = build_session(argparse.Namespace())
    app = PlaygroundApp(session, factory, record_path="/dev/full", live_rates=False, worker_kind="thread")
    async with app.run_test(size=(120, 40)) as pilot:
        app.worker.submit(Step(4))
        assert app.worker.wait_idle(20)
        await settle(app, pilot)
    assert app.record_failure is not None and "could not write /dev/full" in app.record_failure
    [saved] = list((tmp_path / "state" / "sgdtui").glob("recovered-*.toml"))
    assert str(saved) in app.record_failure
    assert Session.from_script(saved).steps == 4


def test_an_unreadable_config_folder_is_a_warning(monkeypatch, tmp_path, capsys):
    from sgdtui.cli import main

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    real = Path.is_dir

    def is_dir(self):
        if "sgdtui" in str(self) and str(self).startswith(str(tmp_path)):
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "is_dir", is_dir)
    registry = SurfaceRegistry()
    assert "pathological" in registry and "Permission denied" in registry.errors[0]
    assert main(["list", "surfaces"]) == 0
    assert "cannot read your surfaces folder" in capsys.readouterr().err


def test_quitting_the_real_program_records_ends_its_session_process_and_exits_at_once(tmp_path):
    """The command line exits right after the app (os._exit): the record is written first, the
    MLP session process is ended, not orphaned, and q to exit takes well under the teardown's second."""
    import pty
    import subprocess
    import sys
    import threading

    record = tmp_path / "run.toml"
    controller, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    child = subprocess.Popen([sys.executable, "-m", "sgdtui", "mlp", "--device", "cpu", "--record", str(record)],
                             stdin=terminal, stdout=terminal, stderr=terminal, env=env, start_new_session=True)
    os.close(terminal)
    output = bytearray()

    def drain():  # the app blocks on a full terminal otherwise
        while True:
            try:
                data = os.read(controller, 65536)
            except OSError:
                return
            if not data:
                return
            output.extend(data)
    threading.Thread(target=drain, daemon=True).start()
    try:
        assert wait_until(lambda: b"step 0" in output, 60), "no first frame"
        os.write(controller, b"..")  # two steps, once the session process has forked
        assert wait_until(lambda: b"step 2" in output, 60), "the steps were not drawn"
        sent = time.monotonic()
        os.write(controller, b"q")
        assert child.wait(20) == 0
        took = time.monotonic() - sent
    finally:
        if child.poll() is None:
            child.kill()
        os.close(controller)
    assert took < 5.0, took
    assert record.exists() and Session.from_script(record).steps == 2
    leftover = subprocess.run(["pgrep", "-f", str(record)], capture_output=True, text=True).stdout.split()
    assert leftover == [], f"processes left behind: {leftover}"


@pytest.mark.parametrize("script, target", [
    ("langevin.toml", "trajectories.csv"),
    ("langevin.toml", "density.csv"),
    ("langevin.toml", "summary.json"),
    ("mlp-moons.toml", "metrics.csv"),
])
def test_a_full_disk_names_the_file_it_could_not_write(tmp_path, capsys, script, target):
    from sgdtui.cli import main

    out = tmp_path / "out"
    out.mkdir()
    (out / target).symlink_to("/dev/full")  # every write to it: ENOSPC
    examples = Path(__file__).resolve().parents[1] / "examples"
    assert main(["replay", str(examples / script), "--steps", "30", "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"could not write {out / target}: No space left on device" in err
