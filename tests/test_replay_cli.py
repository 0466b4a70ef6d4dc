"""`sgdtui replay` and `sgdtui list`: the examples run, the outputs are documented, the tutorial
is reproduced, and the entry points work from a real process."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sgdtui.cli import main
from sgdtui.engine.optimizers import OPTIMIZERS
from sgdtui.engine.surface_race import CSV_COLUMNS
from sgdtui.engine.schedules import SCHEDULES
from sgdtui.engine.surfaces import SurfaceRegistry

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))
LANE_KEYS = {"final_loss", "best_loss", "steps_to_min", "diverged_at", "wall_time"}
# sha256 of every example's CSV output (the first REPLAY_STEPS steps, every EVERY-th row): refactors
# must keep replays byte-identical. A change to an example's numbers updates this file on purpose
# (tests/fixtures/rehash.py). The lessons' full runs are checked for what they show in test_lessons.py.
CSV_HASHES = json.loads((ROOT / "tests" / "fixtures" / "example_csv_sha256.json").read_text())
REPLAY_STEPS, EVERY = 300, 25


def replay_arguments(script: Path) -> list[str]:
    """The pinned replay of an example: at most REPLAY_STEPS steps, every EVERY-th row."""
    import tomllib

    steps = tomllib.loads(script.read_text()).get("steps", REPLAY_STEPS)
    return ["--steps", str(min(steps, REPLAY_STEPS)), "--every", str(EVERY)]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_there_are_examples():
    assert len(EXAMPLES) >= 8


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_replays(script, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["replay", str(script), "--out", str(out), *replay_arguments(script)]) == 0
    printed = capsys.readouterr()
    assert printed.err == ""
    summary = json.loads((out / "summary.json").read_text())
    files = summary["files"]
    assert "wrote" in printed.out and files[0] in printed.out
    assert all((out / name).is_file() for name in files)
    assert summary["script"] == str(script) and summary["steps"] > 0
    assert summary["lanes"]
    for lane in summary["lanes"]:
        assert LANE_KEYS <= set(lane), lane
        assert lane["final_loss"] is None or np.isfinite(lane["final_loss"])
        assert isinstance(lane["wall_time"], float) and lane["wall_time"] > 0  # the lane did step
    rows = read_csv(out / files[0])
    assert {r["lane"] for r in rows} == {lane["lane"] for lane in summary["lanes"]}
    assert max(int(r["step"]) for r in rows) <= summary["steps"]
    if files[0] == "trajectories.csv":  # surface scripts; MLP scripts write metrics.csv
        assert tuple(rows[0]) == CSV_COLUMNS
        assert max(int(r["step"]) for r in rows) == summary["steps"]
    for name in files:
        if name.endswith(".csv"):
            digest = hashlib.sha256((out / name).read_bytes()).hexdigest()
            assert digest == CSV_HASHES[f"{script.name}:{name}"], f"{script.name}: {name} changed"


def test_replay_reproduces_the_tutorials_gd(tmp_path, capsys):
    from tests.test_race import CHAOTIC_FROM, tutorial_gd

    out = tmp_path / "gd"
    assert main(["replay", str(ROOT / "examples" / "pathological-gd-lrs.toml"), "--out", str(out), "--quiet"]) == 0
    rows = read_csv(out / "trajectories.csv")
    for lr in (3.0, 1.0, 0.1):
        mine = [r for r in rows if r["lane"] == f"gd-{lr}"]
        assert [int(r["step"]) for r in mine] == list(range(301))
        xy = np.array([[float(r["x"]), float(r["y"])] for r in mine])
        ref = tutorial_gd(lr)
        upto = 301 if lr != 3.0 else CHAOTIC_FROM  # see test_race: lr 3.0 is chaotic in x after ~70 steps
        np.testing.assert_allclose(xy[:upto], ref[:upto], rtol=0, atol=1e-12)
        np.testing.assert_allclose(xy[:, 1], ref[:, 1], rtol=0, atol=1e-12)
        assert {float(r["lr"]) for r in mine} == {lr}


def test_steps_override_and_summary_numbers(tmp_path, capsys):
    out = tmp_path / "o"
    script = ROOT / "examples" / "linear-regression-gd-vs-sgd.toml"
    assert main(["replay", str(script), "--out", str(out), "--steps", "40", "--quiet"]) == 0
    assert capsys.readouterr().out == ""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 40
    gd = summary["lanes"][0]
    assert gd["lane"] == "gd" and gd["diverged_at"] is None
    rows = [r for r in read_csv(out / "trajectories.csv") if r["lane"] == "gd"]
    losses = [float(r["loss"]) for r in rows]
    assert gd["final_loss"] == losses[-1] and gd["best_loss"] == min(losses)
    # Normalized GD at lr 0.5 (the tutorial's update): every step is 0.5 long; it walks to the
    # least-squares fit near (-1, 3) and then hops around it, never further than one step.
    xy = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    np.testing.assert_allclose(np.linalg.norm(np.diff(xy, axis=0), axis=1), 0.5, rtol=1e-12)
    assert np.hypot(xy[-1, 0] + 1.0, xy[-1, 1] - 3.0) <= 0.5 + 0.01


def test_a_diverging_lane_in_the_summary(tmp_path, capsys):
    path = tmp_path / "hot.toml"
    path.write_text('version = 1\nsteps = 50\n[problem]\nsurface = "rosenbrock"\n'
                    '[[lanes]]\nname = "hot"\noptimizer = "sgd"\nlr = 1e6\n'
                    '[[lanes]]\nname = "cool"\noptimizer = "sgd"\nlr = 1e-4\n')
    assert main(["replay", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    hot, cool = summary["lanes"]
    assert isinstance(hot["diverged_at"], int) and hot["diverged_at"] >= 1
    assert hot["final_loss"] is not None  # frozen at its last finite point
    assert cool["diverged_at"] is None


def test_user_surface_dir_in_replay_and_list(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folder = tmp_path / "surf"
    folder.mkdir()
    (folder / "bowl.toml").write_text('name = "my-bowl"\nexpr = "x**2 + y**2"\nminima = [[0.0, 0.0]]\n')
    (folder / "bad.toml").write_text('name = "bad"\n')
    script = tmp_path / "s.toml"
    script.write_text('version = 1\nsteps = 30\n[problem]\nsurface = "my-bowl"\n[[lanes]]\noptimizer = "sgd"\n')
    assert main(["replay", str(script), "--surfaces", str(folder), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["problem"] == "my-bowl" and summary["lanes"][0]["steps_to_min"] is not None
    capsys.readouterr()
    assert main(["replay", str(script), "--out", str(tmp_path / "o2")]) == 2
    assert "unknown surface 'my-bowl'" in capsys.readouterr().err  # not known without --surfaces
    assert main(["list", "surfaces", "--surfaces", str(folder)]) == 0
    printed = capsys.readouterr()
    assert "my-bowl" in printed.out and "bad.toml" in printed.err


@pytest.mark.parametrize("what,names", [
    ("surfaces", SurfaceRegistry(include_user_dir=False).names()),
    ("optimizers", list(OPTIMIZERS)),
    ("schedules", list(SCHEDULES)),
])
def test_list_mentions_every_registered_name(what, names, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    assert main(["list", what]) == 0
    out = capsys.readouterr().out
    for name in names:
        assert name in out, name


def _env():
    env = dict(os.environ)
    env["XDG_CONFIG_HOME"] = "/nonexistent-sgdtui-test"
    return env


def test_python_m_sgdtui_replay_in_a_real_process(tmp_path):
    script = tmp_path / "s.toml"
    script.write_text('version = 1\nsteps = 20\n[problem]\nsurface = "booth"\n[[lanes]]\noptimizer = "adam"\n')
    proc = subprocess.run([sys.executable, "-m", "sgdtui", "replay", str(script), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "trajectories.csv").exists() and (tmp_path / "o" / "summary.json").exists()
    assert "adam" in proc.stdout


def test_python_m_sgdtui_bad_script_in_a_real_process(tmp_path):
    script = tmp_path / "bad.toml"
    script.write_text('version = 1\nsteps = 20\n[[lanes]]\noptimizer = "adma"\n')
    proc = subprocess.run([sys.executable, "-m", "sgdtui", "replay", str(script)],
                          capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{script}:4: lanes[0].optimizer" in lines[0] and "did you mean 'adam'" in lines[0]
    assert "Traceback" not in proc.stderr


def test_multi_start_summary_covers_every_start(tmp_path, capsys):
    script = tmp_path / "cloud.toml"
    script.write_text(
        'version = 1\nsteps = 200\n[problem]\nsurface = "booth"\n'
        '[[lanes]]\nname = "cloud"\noptimizer = "sgd"\nlr = 0.05\nstarts = [[0.0, 0.0], [9.0, 9.0], [1.0, 3.0]]\n'
        '[[lanes]]\nname = "wild"\noptimizer = "sgd"\nlr = 2.0\nstarts = [[1.0, 3.0], [9.0, -9.0]]\n'
    )
    assert main(["replay", str(script), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    lanes = {lane["lane"]: lane for lane in json.loads((tmp_path / "o" / "summary.json").read_text())["lanes"]}
    cloud, wild = lanes["cloud"], lanes["wild"]
    reached = [p["steps_to_min"] for p in cloud["per_start"]]
    assert None not in reached and cloud["steps_to_min"] == max(reached)  # when the last start got there
    # (1, 3) is Booth's minimum: that start is there at step 0, the others later
    assert min(reached) == 0 < cloud["steps_to_min"]
    assert all(p["diverged_at"] is not None for p in wild["per_start"][1:])
    assert wild["diverged_at"] == min(p["diverged_at"] for p in wild["per_start"] if p["diverged_at"] is not None)
    assert wild["steps_to_min"] is None  # not every start got there
