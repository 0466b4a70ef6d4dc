"""MLP mode through sessions, scripts and headless replays."""

import json

import numpy as np
import pytest

from sgdtui.cli import main
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.script import ScriptError, load_script
from sgdtui.engine.commands import AddLane, CommandError, MoveStarts, RemoveLane, Reset, SetLane
from sgdtui.engine.session import Session
from sgdtui.mlp.problem import MLPProblem

SCRIPT = """
version = 1
seed = 3
steps = 60

[problem]
mlp = {{ dataset = "{dataset}", hidden = [16, 16], activation = "tanh", norm = "{norm}", n = 400, noise = 0.1, eval_every = 5 }}
device = "cpu"

[[lanes]]
optimizer = "adam"
lr = 0.02

[[lanes]]
optimizer = "sgd"
lr = 0.1
momentum = 0.9
batch = 16

[[events]]
step = 30
lane = "sgd"
set = {{ lr = 0.05, batch = 8, weight_decay = 0.001 }}
"""


def write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_mlp_script_parses_with_default_batch(tmp_path):
    script = load_script(write(tmp_path, SCRIPT.format(dataset="moons", norm="none")))
    assert isinstance(script.problem, MLPProblem)
    assert script.problem.hidden == (16, 16) and script.problem.device == "cpu"
    assert [lane.batch for lane in script.lanes] == [32, 16]  # MLP lanes default to batch 32


@pytest.mark.parametrize("norm", ["none", "batchnorm"])
def test_mlp_replay_is_byte_identical(tmp_path, norm, capsys):
    path = write(tmp_path, SCRIPT.format(dataset="circles", norm=norm))
    assert main(["replay", str(path), "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert main(["replay", str(path), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    a = (tmp_path / "a" / "metrics.csv").read_bytes()
    assert a == (tmp_path / "b" / "metrics.csv").read_bytes()
    header, *rows = a.decode().splitlines()
    assert header == ("lane,step,train_loss,val_loss,val_acc,lr,weight_norm,effective_lr,effective_lr_layers,"
                      "collapsed,lr_wd,grad_noise,swa_val_loss,swa_val_acc")
    sgd_rows = [r.split(",") for r in rows if r.startswith("sgd,")]
    assert len(sgd_rows) == 61  # steps 0..60
    assert sgd_rows[31][5] == "0.05" and sgd_rows[30][5] == "0.1"  # the event took effect at step 30
    assert sgd_rows[5][3] != "" and sgd_rows[6][3] == ""  # validation every 5 steps
    if norm == "batchnorm":
        lr, norm_sq_lr = float(sgd_rows[5][5]), float(sgd_rows[5][7])
        assert 0 < norm_sq_lr < lr * 10  # lr / ||W||^2 of the first normalized layer
        layers = sgd_rows[5][8].split(";")  # ... and of every normalized layer (hidden = [16, 16]: two)
        assert len(layers) == 2 and float(layers[0]) == norm_sq_lr and sgd_rows[5][9] == ""
        assert sgd_rows[0][7] != ""  # step 0 too: the lr of the first update
    else:
        assert sgd_rows[5][7] == sgd_rows[5][8] == sgd_rows[5][9] == ""
    assert float(sgd_rows[40][10]) == 0.05 * 0.001  # lr_wd, every step
    assert float(sgd_rows[5][11]) > 0 and sgd_rows[6][11] == ""  # gradient noise at evaluations
    assert sgd_rows[5][12] == sgd_rows[5][13] == ""  # no SWA on this lane
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    for lane in summary["lanes"]:
        assert set(lane) >= {"final_loss", "best_loss", "steps_to_min", "diverged_at", "wall_time", "final_val_acc"}


def test_adam_reaches_97_percent_on_moons_in_a_few_hundred_steps():
    problem = MLPProblem(dataset="moons", hidden=(32, 32), n=1000, noise=0.1, device="cpu")
    session = Session(problem, [LaneConfig.create("adam", "adam", lr=0.01, batch=32)])
    session.advance(300)
    snap = session.snapshot()
    assert snap.lanes[0].val_acc[-1] >= 0.97


def test_commands_in_mlp_mode_and_script_round_trip(tmp_path):
    problem = MLPProblem(dataset="xor", hidden=(16,), n=300, device="cpu", eval_every=4)
    lanes = [LaneConfig.create("a", "adam", lr=0.02, batch=16), LaneConfig.create("s", "sgd", lr=0.2, batch=16)]
    session = Session(problem, lanes, seed=5)
    session.advance(10)
    session.apply(SetLane("s", {"lr": 0.1, "batch": 32, "weight_decay": 0.01,
                                "schedule": {"name": "cosine", "T_max": 50}, "coupling": "sqrt"}))
    session.advance(7)
    session.apply(AddLane({"optimizer": "lamb", "lr": 0.01, "batch": 16}))
    session.advance(5)
    session.apply(RemoveLane("a"))
    session.advance(3)
    session.apply(Reset())
    session.advance(6)
    with pytest.raises(CommandError):
        session.apply(MoveStarts("s", ((0.0, 0.0),)))
    with pytest.raises(CommandError):
        session.apply(SetLane("s", {"batch": 10_000}))  # larger than the training set
    assert session.race.lane("s").config.batch == 32  # the bad command changed nothing
    path = write(tmp_path, session.to_toml(), "recorded.toml")
    replayed = Session.from_script(path)
    replayed.run()
    ours, theirs = session.trajectories(), replayed.trajectories()
    assert list(ours) == list(theirs) == ["s", "lamb"]
    for name in ours:
        np.testing.assert_array_equal(ours[name]["train_loss"], theirs[name]["train_loss"])
        np.testing.assert_array_equal(ours[name]["lr"], theirs[name]["lr"])


def test_diverging_mlp_lane_is_marked_and_others_survive():
    problem = MLPProblem(dataset="moons", hidden=(16,), n=300, device="cpu")
    lanes = [LaneConfig.create("wild", "sgd", lr=1e6, batch=16), LaneConfig.create("calm", "adam", lr=0.01, batch=16)]
    session = Session(problem, lanes)
    session.advance(40)
    snap = session.snapshot()
    wild, calm = snap.lane("wild"), snap.lane("calm")
    assert wild.diverged_at is not None and wild.status.startswith("diverged at")
    assert calm.diverged_at is None and np.isfinite(calm.train_loss).all()
    assert snap.payload.grid is not None and snap.payload.grid.shape[:2] == (60, 60)


@pytest.mark.parametrize("problem,message", [
    ('mlp = { dataset = "moon" }', "did you mean 'moons'"),
    ('mlp = { dataset = "moons", hidden = [0] }', "mlp.hidden"),
    ('mlp = { dataset = "moons", norm = "groupnorm" }', "mlp.norm"),
    ('mlp = { dataset = "moons", layers = 3 }', "mlp.layers"),
    ('mlp = { dataset = "moons" }\nsurface = "rosenbrock"', "problem.surface"),
    ('mlp = { dataset = "moons" }\ndevice = "tpu"', "device"),
    ('surface = "rosenbrock"\ndevice = "cpu"', "problem.device"),
])
def test_bad_mlp_problems_exit_2_naming_the_key(tmp_path, capsys, problem, message):
    text = f"version = 1\nsteps = 5\n\n[problem]\n{problem}\n\n[[lanes]]\noptimizer = \"adam\"\n"
    path = write(tmp_path, text)
    assert main(["replay", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err and len(err.strip().splitlines()) == 1


def test_start_points_are_refused_in_mlp_scripts(tmp_path):
    text = 'version = 1\nsteps = 5\n[problem]\nmlp = { dataset = "moons" }\n[[lanes]]\noptimizer = "adam"\nstart = [1.0, 2.0]\n'
    with pytest.raises(ScriptError, match=r"lanes\[0\]\.start: MLP lanes have no start points"):
        load_script(write(tmp_path, text))


def test_mlp_numbers_do_not_depend_on_when_snapshots_are_taken():
    """A diverging lane is marked at flush time; flushing must never feed back into the numbers."""
    def run(flush_every):
        problem = MLPProblem(dataset="moons", hidden=(16,), n=300, device="cpu", eval_every=5)
        lanes = [LaneConfig.create("wild", "sgd", lr=50.0, batch=16), LaneConfig.create("calm", "adam", lr=0.01, batch=16)]
        session = Session(problem, lanes)
        for _ in range(60 // flush_every):
            session.advance(flush_every)
            session.race.flush()
        return session.trajectories(), session.race.evaluations(), session.snapshot().lane("wild").diverged_at

    (traj_a, eval_a, div_a), (traj_b, eval_b, div_b) = run(1), run(60)
    assert div_a is not None and div_a == div_b
    for name in traj_a:
        for key in ("train_loss", "lr"):
            np.testing.assert_array_equal(traj_a[name][key], traj_b[name][key])
        np.testing.assert_array_equal(eval_a[name]["val_loss"], eval_b[name]["val_loss"])


def test_a_lanes_validation_numbers_do_not_depend_on_how_many_lanes_there_are():
    def val_loss(n_lanes):
        problem = MLPProblem(dataset="circles", hidden=(16,), n=300, device="cpu", eval_every=5)
        lanes = [LaneConfig.create(f"l{i}", "adam", lr=0.01, batch=16) for i in range(n_lanes)]
        session = Session(problem, lanes)
        session.advance(10)
        return session.race.evaluations()["l0"]["val_loss"]

    np.testing.assert_array_equal(val_loss(1), val_loss(9))


def test_a_running_views_frames_reuse_the_prediction_grid_between_fresh_ones_and_never_a_stale_one():
    from sgdtui.mlp.race import LIVE_GRID_EVERY

    def session():
        problem = MLPProblem(dataset="moons", hidden=(16,), n=300, device="cpu", eval_every=5)
        return Session(problem, [LaneConfig.create("a", "adam", lr=0.01, batch=16),
                                 LaneConfig.create("b", "sgd", lr=0.1, batch=16)])

    def grid(s, costly=False, selected="a", live=True):
        return s.snapshot(200, selected=selected, costly=costly, live=live).payload.grid

    s = session()
    s.advance(5)
    first = grid(s, live=False)
    assert grid(s, live=False) is first  # the same weights, the same grid
    s.advance(5)
    assert grid(s, live=False) is not first  # not a running view's frame: its own grid, always

    assert LIVE_GRID_EVERY == 3
    fresh = grid(s)
    s.advance(5)
    assert grid(s) is fresh  # a running view's next frame: reused, one snapshot old ...
    s.advance(5)
    assert grid(s) is fresh  # ... two
    s.advance(5)
    renewed = grid(s)  # the third: computed anew, and it is the grid of these weights
    assert renewed is not fresh
    np.testing.assert_array_equal(renewed, s.race.trainer.predict_grid(0, *_view(s), 60))
    s.advance(5)
    assert grid(s, live=False) is not renewed  # the run paused: the frame that stays is fresh
    s.advance(5)
    assert grid(s, costly=True) is not renewed  # a costly snapshot always brings a new one
    assert grid(s, selected="b") is not grid(s, selected="a")  # another lane: its own

    kept = grid(s)
    s.apply(Reset())  # back to step 0: never the old weights' picture
    assert grid(s) is not kept
    s.advance(5)
    kept = grid(s, selected="b")
    s.apply(RemoveLane("b"))
    s.apply(AddLane({"name": "b", "optimizer": "sgd", "lr": 0.1, "batch": 16}))  # same name and place, new weights
    assert grid(s, selected="b") is not kept


def _view(session):
    from sgdtui.mlp.race import data_view

    return data_view(session.race.dataset.x_train.numpy())
