"""`sgdtui export-torch SCRIPT --lane NAME`: a runnable PyTorch program that steps the lane's
trajectory as the replay records it (optimizer, schedule, coupling, noise, events, divergence)."""

from __future__ import annotations

import bisect
import csv
import math
import os
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sgdtui.cli import main
from sgdtui.engine.export_torch import export_lane, schedule_source
from sgdtui.engine.schedules import SCHEDULES, make_schedule
from sgdtui.engine.script import load_script
from sgdtui.engine.surfaces import SurfaceRegistry

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = SurfaceRegistry(include_user_dir=False)
COLUMNS = ("start", "step", "x", "y", "loss", "lr")

EVENTS_SCRIPT = """version = 1
seed = 3
steps = 240
[problem]
surface = "rosenbrock"

[[lanes]]
name = "steered"
optimizer = "momentum"
start = [-1.5, 2.0]
lr = 0.0005
batch = 4
noise = 0.5
schedule = { name = "cosine", T_max = 200 }

[[lanes]]
name = "other"
optimizer = "adam"
lr = 0.05

[[events]]
step = 30
lane = "steered"
set = { lr = 0.0008, momentum = 0.8 }

[[events]]
step = 60
lane = "steered"
set = { schedule = { name = "warmup-cosine", warmup_steps = 20, T_max = 150 }, coupling = "sqrt" }

[[events]]
step = 90
lane = "steered"
set = { batch = 16, noise = 0.2 }

[[events]]
step = 120
lane = "steered"
set = { coupling = "momentum" }

[[events]]
step = 150
add = { name = "late", optimizer = "lamb", lr = 0.02, start = [0.5, 0.5] }

[[events]]
step = 200
reset = true

[[events]]
step = 210
lane = "late"
set = { lr = 0.01 }
"""


def replay_rows(script_path: Path, lane: str, tmp_path: Path) -> np.ndarray:
    out = tmp_path / "replay"
    assert main(["replay", str(script_path), "--out", str(out), "--quiet"]) == 0
    with open(out / "trajectories.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["lane"] == lane]
    return np.array([[float(r[c]) for c in COLUMNS] for r in rows])


def exported_rows(source: str, path: Path, autograd: bool = False) -> np.ndarray:
    """Run the program in this process (runpy) and read its rows like its --csv does."""
    path.write_text(source)
    namespace = runpy.run_path(str(path), run_name="exported")
    rows = sorted(namespace["run"](autograd=autograd), key=lambda row: (row[1], row[0]))
    return np.array([[i, step, x, y, loss, lr] for step, i, x, y, loss, lr in rows], dtype=float)


def assert_same_trajectory(replayed: np.ndarray, exported: np.ndarray, exact: bool = True) -> None:
    assert replayed.shape == exported.shape and len(replayed) > 1
    assert np.array_equal(replayed[:, :2], exported[:, :2])  # the same (start, step) rows
    assert np.array_equal(replayed[:, 5], exported[:, 5])  # the lr of every update, to the bit
    if exact:
        assert np.array_equal(replayed, exported, equal_nan=True)
    else:  # --autograd: the playground's symbolic gradient and autograd differ in the last bits
        np.testing.assert_allclose(exported[:, 2:5], replayed[:, 2:5], rtol=1e-9, atol=1e-11)


def schedule_cases():
    for name in SCHEDULES:
        yield name, {}
    yield "multistep", {"milestones": [10, 10, 70], "gamma": 0.3}
    yield "cosine-restarts", {"T_0": 17, "T_mult": 2, "eta_min": 0.001}
    yield "warmup-cosine", {"warmup_steps": 0, "T_max": 90}
    yield "cyclic", {"max_lr": 2.0, "step_size_down": 13, "mode": "triangular2"}
    yield "cyclic", {"mode": "exp_range", "gamma": 0.99}
    yield "one-cycle", {"max_lr": 0.5, "three_phase": True, "anneal_strategy": "linear", "total_steps": 200}
    yield "inverse-time", {"tau": 7.5, "power": 0.5}


@pytest.mark.parametrize("name, params", list(schedule_cases()))
def test_written_schedules_equal_sgdtuis_to_the_bit(name, params):
    schedule = make_schedule(name, **params)
    namespace = {"math": math, "bisect": bisect}
    exec(schedule_source("written", schedule), namespace)  # noqa: S102 - our own generated code
    written = namespace["written"]
    if schedule.stateful:
        written = written()
        losses = [1.0 / (1 + (t % 37)) if t < 150 else 0.5 for t in range(400)]
        for t, loss in enumerate(losses):
            assert written(t, 0.3) == schedule.lr(t, 0.3), t
            written.observe(loss, 0.3)
            schedule.observe(loss, 0.3)
        assert schedule.current_factor < 1.0  # the losses did trigger cuts
        return
    for base in (0.3, 1.7e-3):
        assert [written(t, base) for t in range(700)] == [schedule.lr(t, base) for t in range(700)]


def test_the_program_runs_in_a_subprocess_and_follows_a_steered_lane(tmp_path):
    script_path = tmp_path / "events.toml"
    script_path.write_text(EVENTS_SCRIPT)
    program = tmp_path / "steered.py"
    assert main(["export-torch", str(script_path), "--lane", "steered", "-o", str(program)]) == 0
    out_csv = tmp_path / "steered.csv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(program), "--csv", str(out_csv)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "start 0: step 40" in done.stdout  # the reset at step 200 restarted it: 40 updates since
    with open(out_csv, newline="") as fh:
        exported = np.array([[float(r[c]) for c in COLUMNS] for r in csv.DictReader(fh)])
    assert_same_trajectory(replay_rows(script_path, "steered", tmp_path), exported)


def test_a_lane_added_by_an_event_exports_from_its_restart(tmp_path):
    script_path = tmp_path / "events.toml"
    script_path.write_text(EVENTS_SCRIPT)
    source = export_lane(load_script(script_path, registry=REGISTRY), "late")
    assert "from sgdtui.engine.variants import LAMB" in source and "per_run=True" not in source
    assert "per_row=True" in source and "CHANGES = [(10, {'lr': 0.01})]" in source
    assert_same_trajectory(replay_rows(script_path, "late", tmp_path), exported_rows(source, tmp_path / "late.py"))


@pytest.mark.parametrize("example, lane", [
    ("linear-regression-gd-vs-sgd", "sgd-b4"),  # minibatches drawn from the lane's stream
    ("pathological-gd-lrs", "gd-3.0"),  # oscillating: any round-off would grow
    ("pathological-four-at-2.5", "rmsprop"),  # across the kink of |y| again and again
    ("lr-range-test", "adam-range"),
])
def test_examples_export_to_the_replays_trajectory_to_the_bit(example, lane, tmp_path):
    script = load_script(ROOT / "examples" / f"{example}.toml", registry=REGISTRY)
    source = export_lane(script, lane)
    assert_same_trajectory(replay_rows(ROOT / "examples" / f"{example}.toml", lane, tmp_path),
                           exported_rows(source, tmp_path / "program.py"))


CLOUD_AND_DIVERGENCE = """version = 1
seed = 3
steps = 200
[problem]
surface = "himmelblau"
[[lanes]]
name = "sgld"
optimizer = "sgld"
lr = 0.001
temperature = 2.0
starts = { sample = 19, x = [-2.0, 2.0], y = [-2.0, 2.0], seed = 4 }
[[lanes]]
name = "b16-linear"
optimizer = "sgd"
lr = 0.002
batch = 16
coupling = "linear"
noise = 5.0
[[events]]
step = 0
caption = "a caption is no lane event"
"""


@pytest.mark.parametrize("lane", [
    "sgld",  # 19 start points (the tensor path, padded to 32), SGLD's own noise stream
    "b16-linear",  # diverges: stopped where it left the bound
])
def test_a_cloud_and_a_diverging_lane_export_to_the_bit(lane, tmp_path):
    path = tmp_path / "s.toml"
    # SGLD's cloud on himmelblau; the coupled lane on ill-conditioned, where 16 x 0.002 > 2/lambda_max.
    path.write_text(CLOUD_AND_DIVERGENCE if lane == "sgld"
                    else CLOUD_AND_DIVERGENCE.replace('surface = "himmelblau"', 'surface = "ill-conditioned"'))
    source = export_lane(load_script(path, registry=REGISTRY), lane)
    assert_same_trajectory(replay_rows(path, lane, tmp_path), exported_rows(source, tmp_path / "program.py"))


def test_autograd_mode_agrees_to_round_off_on_a_smooth_trajectory(tmp_path):
    example = ROOT / "examples" / "rosenbrock-race.toml"
    source = export_lane(load_script(example, registry=REGISTRY), "adam", steps=400)
    assert "def surface_loss(w)" in source and "torch.autograd.grad(loss.sum(), w)" in source
    replayed = replay_rows(example, "adam", tmp_path)
    exported = exported_rows(source, tmp_path / "program.py", autograd=True)
    assert_same_trajectory(replayed[replayed[:, 1] <= 400], exported, exact=False)


def test_formulas_with_every_function_and_an_imported_optimizer(tmp_path):
    script_path = tmp_path / "expr.toml"
    script_path.write_text("""version = 1
steps = 150
[problem]
expr = "0.1*x**2 + softplus(y) + 0.05*abs(x - 1) + relu(x - 2) + min(x, 1.5) - max(y, -1) + sigmoid(x*y)/(2*pi) + sqrt(1 + x**2) + tanh(y)**2 + 0.01*sin(x)*cos(y) + exp(-x**2) + log(2 + y**2) + tan(0.1*x) + 2**-3"
xlim = [-3.0, 3.0]
ylim = [-3.0, 3.0]
[[lanes]]
name = "sign"
optimizer = "tests.custom_optimizers:SignMomentum"
lr = 0.01
beta = 0.8
start = [-2.0, 2.0]
[[lanes]]
name = "cloud"
optimizer = "nadam"
lr = 0.05
starts = [[-2.0, 2.0], [1.0, -2.5], [2.5, 2.5], [0.0, 0.0]]
[[events]]
step = 50
lane = "sign"
set = { lr = 0.004, weight_decay = 0.001 }
""")
    script = load_script(script_path, registry=REGISTRY)
    source = export_lane(script, "sign")
    assert "from tests.custom_optimizers import SignMomentum" in source
    assert "torch.clamp(x, max=1.5)" in source and "torch.clamp(y, min=(-1.0))" in source
    assert "0.125" in source  # 2**-3 folded as sgdtui folds it
    for lane in ("sign", "cloud"):  # one point: the float path; four: the tensor path
        source = export_lane(script, lane)
        assert_same_trajectory(replay_rows(script_path, lane, tmp_path), exported_rows(source, tmp_path / "p.py"))


def test_a_formula_outside_float_arithmetic_falls_back_as_sgdtui_does(tmp_path):
    script_path = tmp_path / "log.toml"  # log of a negative number: float math raises, tensors give nan
    script_path.write_text('version = 1\nsteps = 60\n[problem]\nexpr = "log(x) + (y - 1)**2 + x"\n'
                           '[[lanes]]\nname = "gd"\noptimizer = "sgd"\nlr = 0.4\nstart = [0.3, 0.0]\n')
    replayed = replay_rows(script_path, "gd", tmp_path)
    # Its first step lands at x < 0: a nan loss, so the point is stopped where it was and the lane ends.
    assert len(replayed) == 2 and np.array_equal(replayed[0, 2:5], replayed[1, 2:5])
    assert_same_trajectory(replayed, exported_rows(export_lane(load_script(script_path), "gd"), tmp_path / "p.py"))


@pytest.mark.parametrize("argv, message", [
    (["--lane", "stered"], "no lane 'stered'; did you mean 'steered'? (lanes: gone, late, other, steered)"),
    (["--lane", "gone"], "lane 'gone' is removed at step 20: the replay keeps no trajectory of it"),
])
def test_bad_lanes_are_one_line_exit_2(argv, message, tmp_path, capsys):
    script_path = tmp_path / "events.toml"
    script_path.write_text(EVENTS_SCRIPT.replace('[[events]]\nstep = 30', '[[events]]\nstep = 10\n'
                                                 'add = { name = "gone", optimizer = "sgd" }\n\n[[events]]\n'
                                                 'step = 20\nremove = "gone"\n\n[[events]]\nstep = 30', 1))
    assert main(["export-torch", str(script_path), *argv, "-o", str(tmp_path / "x.py")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"events.toml: {message}" in err, err
    assert not (tmp_path / "x.py").exists()


def test_mlp_scripts_are_refused(tmp_path, capsys):
    assert main(["export-torch", str(ROOT / "examples" / "mlp-moons.toml"), "--lane", "sgd",
                 "-o", str(tmp_path / "x.py")]) == 2
    assert "export-torch exports lanes on a surface; this script's problem is mlp" in capsys.readouterr().err
