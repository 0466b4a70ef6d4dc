"""Sessions: commands, the event log, export to a script and exact replays."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from sgdtui.cli import main
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.script import load_script
from sgdtui.engine.commands import (
    AddLane, CommandError, MoveStarts, RemoveLane, Reset, SetLane, Step, SwitchProblem,
)
from sgdtui.engine.session import Session
from sgdtui.engine.surfaces import SurfaceRegistry

REGISTRY = SurfaceRegistry(include_user_dir=False)


def read_csv_lanes(path):
    import csv

    rows = list(csv.DictReader(open(path)))
    return rows


def drive(session: Session) -> None:
    """A session steered the way a user would: every kind of command at various clocks."""
    session.advance(10)
    session.apply(SetLane("sgd", {"lr": 0.002, "noise": 0.5, "batch": 4}))
    session.apply(Step(15))
    session.apply(SetLane("adam", {"betas": [0.8, 0.99], "schedule": {"name": "step", "step_size": 5, "gamma": 0.5}}))
    session.apply(AddLane({"optimizer": "momentum", "lr": 0.001, "momentum": 0.8, "coupling": "momentum",
                           "batch": 2, "noise": 0.3}))
    session.advance(12)
    session.apply(SetLane("momentum", {"batch": 8}))
    session.apply(MoveStarts("sgd", ((0.5, 0.5), (-1.0, 1.5))))
    session.advance(7)
    session.apply(RemoveLane("adam"))
    session.advance(5)
    session.apply(Reset())
    session.advance(6)
    session.apply(SwitchProblem({"surface": "himmelblau"}))
    session.advance(9)
    session.apply(SwitchProblem({"expr": "(x - 1)**2 + 3*(y + 0.5)**2", "xlim": [-3.0, 3.0], "ylim": [-2.0, 2.0]}))
    session.apply(SetLane("sgd", {"schedule": "cosine", "coupling": "linear"}))
    session.advance(11)


def make_session() -> Session:
    lanes = [LaneConfig.create("sgd", "sgd", lr=0.001, starts=((-1.5, 2.0),)),
             LaneConfig.create("adam", "adam", lr=0.05, noise=1.0, batch=2)]
    return Session({"surface": "rosenbrock"}, lanes, seed=11, registry=REGISTRY, history_capacity=None)


def assert_same_trajectories(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        for col in ("step", "pos", "loss", "gnorm", "lr"):
            assert np.array_equal(a[name][col], b[name][col], equal_nan=True), (name, col)


@pytest.fixture(scope="module")
def driven():
    session = make_session()
    drive(session)
    return session


def test_the_driven_session_did_what_it_was_told(driven):
    assert driven.clock == 75
    assert [lane.config.name for lane in driven.race.lanes] == ["sgd", "momentum"]
    assert driven.problem.surface.name == "expr" and driven.problem.surface.xlim == (-3.0, 3.0)
    sgd = driven.race.lane("sgd")
    assert sgd.config.batch == 4 and sgd.config.noise == 0.5 and sgd.config.coupling == "linear"
    assert sgd.config.schedule == "cosine" and sgd.config.hyper["lr"] == 0.002
    assert sgd.t == 11 and sgd.n == 1  # the surface switch restarted it at the surface's start
    assert len(driven.log) == 10
    snap = driven.snapshot()
    assert snap.clock == 75 and snap.lane("momentum").batch == 8
    assert snap.lane("momentum").effective_lr == pytest.approx(0.2 * 8 * 0.001)


def test_export_and_replay_in_process_gives_identical_trajectories(driven, tmp_path):
    text = driven.to_toml()
    path = tmp_path / "recorded.toml"
    path.write_text(text)
    replayed = Session.from_script(path)
    replayed.run()
    assert replayed.clock == driven.clock
    assert_same_trajectories(driven.trajectories(), replayed.trajectories())
    # and the replay's own export is the same script
    assert replayed.to_script() == driven.to_script()
    assert replayed.to_toml() == text


def test_export_and_replay_through_the_cli_gives_identical_numbers(driven, tmp_path, capsys):
    path = tmp_path / "recorded.toml"
    path.write_text(driven.to_toml())
    out = tmp_path / "out"
    assert main(["replay", str(path), "--out", str(out), "--quiet"]) == 0
    rows = read_csv_lanes(out / "trajectories.csv")
    for name, hist in driven.trajectories().items():
        mine = [r for r in rows if r["lane"] == name]
        n = hist["pos"].shape[1]
        assert len(mine) == len(hist["step"]) * n
        for start in range(n):
            these = [r for r in mine if int(r["start"]) == start]
            xs = np.array([float(r["x"]) for r in these])
            ys = np.array([float(r["y"]) for r in these])
            assert np.array_equal(xs, hist["pos"][:, start, 0])
            assert np.array_equal(ys, hist["pos"][:, start, 1])
            assert [int(r["step"]) for r in these] == hist["step"].tolist()
    summary = json.loads((out / "summary.json").read_text())
    assert [lane["lane"] for lane in summary["lanes"]] == ["sgd", "momentum"]


def test_same_script_twice_gives_byte_identical_csv(driven, tmp_path, capsys):
    path = tmp_path / "recorded.toml"
    path.write_text(driven.to_toml())
    assert main(["replay", str(path), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert main(["replay", str(path), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a = (tmp_path / "a" / "trajectories.csv").read_bytes()
    assert a == (tmp_path / "b" / "trajectories.csv").read_bytes()
    assert len(a) > 1000


@pytest.mark.parametrize("command,pattern", [
    (SetLane("nobody", {"lr": 0.1}), "no lane named 'nobody'"),
    (SetLane("sgd", {"lr": -1}), r"lr: must be a number in \(0, 1e\+06\], got -1"),
    (SetLane("sgd", {"momentum": 0.5, "batch": 0}), "batch"),
    (SetLane("sgd", {"lr": 0.5, "coupling": "quadratic"}), "coupling: must be one of"),
    (SetLane("sgd", {"lr": 0.5, "schedule": "bogus"}), "bogus"),
    (SetLane("sgd", {"betas": [0.9, 0.99]}), "'sgd' has no setting 'betas'"),
    (AddLane({"optimizer": "adma"}), "did you mean 'adam'"),
    (AddLane({"name": "adam", "optimizer": "sgd"}), "already exists"),
    (RemoveLane("ghost"), "no lane named 'ghost'"),
    (MoveStarts("sgd", ((0.0, float("nan")),)), r"starts: must be a non-empty list of \[x, y\] points"),
    (SwitchProblem({"surface": "rosenbrok"}), "did you mean 'rosenbrock'"),
    (SwitchProblem({"expr": "x + import"}), "import"),
    (SwitchProblem({"expr": "x**2", "xlim": [float("-inf"), float("inf")]}), "xlim: must be"),
    (SwitchProblem({"mlp": {"dataset": "moons"}}), "cannot switch from a surface problem to a mlp problem"),
])
def test_an_invalid_command_raises_and_changes_nothing(command, pattern):
    session = make_session()
    session.advance(5)
    before_traj = copy.deepcopy(session.trajectories())
    before_cfg = [lane.config for lane in session.race.lanes]
    before = (session.clock, session.version, len(session.log), session.problem)
    with pytest.raises(CommandError, match=pattern):
        session.apply(command)
    assert (session.clock, session.version, len(session.log), session.problem) == before
    assert [lane.config for lane in session.race.lanes] == before_cfg
    assert_same_trajectories(before_traj, session.trajectories())
    lane = session.race.lane("sgd")
    assert lane.effective_lr == 0.001 and lane.optimizer.param_groups[0]["lr"] == 0.001


def test_commands_are_logged_with_the_clock_and_reset_does_not_rewind_it():
    session = make_session()
    session.advance(3)
    session.apply(SetLane("sgd", {"lr": 0.01}))
    session.advance(2)
    session.apply(Reset())
    session.advance(4)
    assert session.clock == 9
    assert [step for step, _ in session.log] == [3, 5]
    script = session.to_script()
    assert script["steps"] == 9
    assert script["events"] == [{"step": 3, "lane": "sgd", "set": {"lr": 0.01}}, {"step": 5, "reset": True}]
    assert [lane.t for lane in session.race.lanes] == [4, 4]


def test_from_script_text_of_an_example(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('version = 1\nsteps = 20\n[problem]\nsurface = "booth"\n[[lanes]]\noptimizer = "adam"\n'
                    '[[events]]\nstep = 10\nlane = "adam"\nset = { lr = 0.5 }\n')
    session = Session.from_script(load_script(path))
    session.run()
    traj = session.trajectories()["adam"]
    assert traj["step"].tolist() == list(range(21))
    assert traj["lr"][:11].tolist() == [0.1] * 11 and traj["lr"][11:].tolist() == [0.5] * 10
    assert session.clock == 20
    with pytest.raises(ValueError, match="no step count"):
        Session({"surface": "booth"}, [], registry=REGISTRY).run()


def test_a_session_switching_to_a_surfaces_dir_surface_replays_with_that_dir(tmp_path, capsys):
    # The TUI records `surface = "mine"` events for a surface loaded with --surfaces DIR; the event
    # must be checked against that same registry when the script is read back (it was refused).
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "bowl.toml").write_text('name = "my-bowl"\nexpr = "(x - 1)**2 + 3*y**2"\nstarts = [[-2.0, 2.0]]\n')
    (folder / "tilt.toml").write_text('name = "my-tilt"\nexpr = "x**2 + (y - x)**2"\nstarts = [[2.0, -2.0]]\n')
    registry = SurfaceRegistry(extra_dirs=[folder], include_user_dir=False)
    session = Session({"surface": "my-bowl"}, [LaneConfig.create("g", "sgd", lr=0.05)], registry=registry)
    session.advance(10)
    session.apply(SwitchProblem({"surface": "my-tilt"}))
    session.advance(5)
    path = tmp_path / "recorded.toml"
    path.write_text(session.to_toml())
    out = tmp_path / "out"
    assert main(["replay", str(path), "--surfaces", str(folder), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == ["my-bowl", "my-tilt"]
    replayed = Session.from_script(path, registry=registry)
    replayed.run()
    assert_same_trajectories(session.trajectories(), replayed.trajectories())
    # without the folder, the same script fails with one line naming the key
    assert main(["replay", str(path), "--out", str(tmp_path / "o2"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "problem.surface: unknown surface 'my-bowl'" in err and len(err.strip().splitlines()) == 1
