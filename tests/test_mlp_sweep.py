"""MLP sweeps: cells in stacked chunks, each close to a single-lane replay of its settings, the
same numbers whatever the backend (a local Ray cluster, started here on loopback)."""

from __future__ import annotations

import json
import math

import pytest

from sgdtui.cli import main
from sgdtui.engine.script import dump_script, load_script
from sgdtui.engine.session import Session
from sgdtui.engine.sweep import build_sweep, cell_config
from sgdtui.mlp.sweep import run_mlp_sweep

SCRIPT = """
version = 1
seed = 3
steps = 40
[problem]
mlp = { dataset = "moons", hidden = [8], n = 300, eval_every = 10 }
device = "cpu"
[[lanes]]
name = "a"
optimizer = "adam"
lr = 0.01
batch = 16
[[lanes]]
name = "b"
optimizer = "sgd"
lr = 0.1
"""
GRID = ["lr=0.003:0.1:log:3", "beta1=0.5,0.9"]


@pytest.fixture
def script_path(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text(SCRIPT)
    return path


def test_each_cell_is_the_single_lane_replay_of_its_settings(script_path):
    sweep = build_sweep(load_script(script_path), "a", GRID)
    result = run_mlp_sweep(sweep, chunk=4)
    assert len(result.rows) == 6
    for cell, row in zip(sweep.cells, result.rows):
        cfg = cell_config(sweep.lane, cell)
        raw = dict(load_script(script_path).raw)
        raw["lanes"] = [cfg.to_table()]
        single = script_path.with_name("single.toml")
        single.write_text(dump_script(raw))
        session = Session.from_script(single)
        session.run()
        want = session.race.summary()["lanes"][0]
        # stacked lanes use batched matrix products: equal up to float32 rounding
        assert math.isclose(row["final_loss"], want["final_loss"], rel_tol=1e-4)
        assert row["final_val_acc"] == pytest.approx(want["final_val_acc"], abs=0.01)
    assert len({round(r["final_loss"], 6) for r in result.rows}) == 6


def test_chunks_are_deterministic(script_path):
    sweep = build_sweep(load_script(script_path), "a", GRID, steps=20)
    assert run_mlp_sweep(sweep, chunk=2).rows == run_mlp_sweep(sweep, chunk=2).rows


def test_the_cli_runs_an_mlp_sweep_and_refuses_surface_flags(script_path, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["sweep", str(script_path), "--lane", "a", "--grid", "lr=0.01:0.1:2", "--steps", "10",
                 "--chunk", "1", "--out", str(out), "--quiet"]) == 0
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["kind"] == "mlp" and meta["chunk"] == 1 and meta["cells"] == 2
    surface = tmp_path / "s.toml"
    surface.write_text('version = 1\nsteps = 5\n[[lanes]]\noptimizer = "sgd"\n')
    assert main(["sweep", str(surface), "--grid", "lr=0.1:0.2:2", "--chunk", "2", "--out", str(tmp_path / "x")]) == 2
    assert "--backend and --chunk are for MLP scripts" in capsys.readouterr().err


RAY_CHILD = """
import json, sys
import ray
from sgdtui.engine.script import load_script
from sgdtui.engine.sweep import build_sweep
from sgdtui.mlp.sweep import run_mlp_sweep
sweep = build_sweep(load_script(sys.argv[1]), "a", json.loads(sys.argv[2]), steps=20)
ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
try:
    result = run_mlp_sweep(sweep, backend="ray", chunk=2)
finally:
    ray.shutdown()
print(json.dumps({"backend": result.backend, "rows": result.rows}))
"""


def test_ray_results_equal_the_local_ones_bit_for_bit(script_path):
    """A local Ray cluster on loopback, in a process of its own (Ray installs signal handlers and
    worker processes that the test runner's own process should not inherit)."""
    import subprocess
    import sys

    pytest.importorskip("ray", reason="ray is not installed (pip install 'sgdtui[ray]'); CI installs it")
    sweep = build_sweep(load_script(script_path), "a", GRID, steps=20)
    local = run_mlp_sweep(sweep, chunk=2)
    done = subprocess.run([sys.executable, "-c", RAY_CHILD, str(script_path), json.dumps(GRID)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    remote = json.loads(done.stdout.strip().splitlines()[-1])
    assert remote["backend"] == "ray"
    assert remote["rows"] == json.loads(json.dumps(local.rows))  # floats round-trip exactly through JSON
