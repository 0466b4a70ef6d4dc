"""`sgdtui sweep`: every cell equals a single-lane replay of its settings, the outputs are what the
README says, and bad grids or tables fail with one line (exit 2) before any cell runs."""

from __future__ import annotations

import csv
import itertools
import json
from pathlib import Path

import pytest

from sgdtui.cli import main
from sgdtui.engine.script import dump_script, load_script
from sgdtui.engine.session import Session
from sgdtui.engine.sweep import build_sweep, cell_config, run_surface_sweep

MEASURES = ("final_loss", "best_loss", "steps_to_min", "diverged_at")


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def single_lane_figures(script_path: Path, lane: str, cell: dict, steps: int) -> dict:
    """Replay the script with only ``lane``, set to the cell's settings (events for it kept)."""
    script = load_script(script_path)
    base = next(c for c in script.lanes if c.name == lane)
    cfg = cell_config(base, cell)
    raw = dict(script.raw)
    raw.pop("sweep", None)
    raw["lanes"] = [cfg.to_table()]
    raw["events"] = [e for e in raw.get("events", []) if e.get("lane") in (None, lane) and "add" not in e
                     and e.get("remove") is None]
    raw["steps"] = steps
    path = script_path.with_name("single.toml")
    path.write_text(dump_script(raw))
    session = Session.from_script(path, history_capacity=None)
    session.run()
    return session.race.summary()["lanes"][0]


ROSENBROCK = """
version = 1
seed = 4
steps = 150
[problem]
surface = "rosenbrock"
[[lanes]]
name = "hb"
optimizer = "momentum"
lr = 0.0005
momentum = 0.9
[[lanes]]
name = "other"
optimizer = "adam"
lr = 0.05
[[events]]
step = 60
lane = "hb"
set = { weight_decay = 0.001 }
[[events]]
step = 70
lane = "other"
set = { lr = 0.01 }
"""


@pytest.mark.parametrize("text,lane,grid", [
    (ROSENBROCK, "hb", ["lr=1e-4:2e-3:log:3", "momentum=0:0.95:3"]),
    (ROSENBROCK.replace('surface = "rosenbrock"', 'surface = "pathological"').replace("lr = 0.0005", "lr = 0.5")
     .replace('name = "hb"', 'name = "hb"\nstarts = [[-4.0, 5.0], [2.0, 1.0]]'), "hb", ["lr=0.1:3:log:3", "momentum=0:0.9:2"]),
    (ROSENBROCK.replace('surface = "rosenbrock"', 'surface = "himmelblau"').replace("lr = 0.0005", "lr = 0.002\nnoise = 2.0"),
     "hb", ["noise=0:3:3", "lr=1e-3:4e-3:2"]),
    (ROSENBROCK, "other", ["beta1=0.5:0.9:2", "optimizer=adam,nadam,adam-nobias"]),
    (ROSENBROCK.replace('surface = "rosenbrock"', 'surface = "himmelblau"'), "hb",
     ["optimizer=sgld,momentum", "lr=1e-4:1e-3:2"]),
    (ROSENBROCK.replace('surface = "rosenbrock"', 'surface = "linear-regression"').replace("lr = 0.0005", "lr = 0.01"),
     "hb", ["batch=1,4,2000", "lr=0.005:0.02:2"]),
], ids=["rosenbrock-lr-momentum", "pathological-two-starts", "himmelblau-noise", "adam-beta1-optimizers", "sgld",
        "minibatches"])
def test_every_cell_equals_a_single_lane_replay(tmp_path, text, lane, grid):
    path = write(tmp_path, text)
    sweep = build_sweep(load_script(path), lane, grid)
    result = run_surface_sweep(sweep)
    assert len(result.rows) == len(sweep.cells) == len(list(itertools.product(*(a.values for a in sweep.axes))))
    for cell, row in zip(sweep.cells, result.rows):
        want = single_lane_figures(path, lane, cell, sweep.steps)
        got = {k: row[k] for k in MEASURES}
        assert got == {k: want[k] for k in MEASURES}, (cell, got, want)
    assert len({row["final_loss"] for row in result.rows}) > 1  # the axes matter


def test_sweep_cli_writes_csv_and_json(tmp_path, capsys):
    path = write(tmp_path, ROSENBROCK)
    out = tmp_path / "out"
    code = main(["sweep", str(path), "--lane", "hb", "--grid", "lr=1e-4:3e-2:log:4", "--grid", "momentum=0:0.9:3",
                 "--steps", "100", "--burn-in", "50", "--out", str(out)])
    assert code == 0
    assert "12 cells x 100 steps" in capsys.readouterr().out
    with open(out / "sweep.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["lr", "momentum", *MEASURES, "stationary_loss"]
    assert len(rows) == 12 and rows[0]["lr"] == "0.0001" and rows[3]["lr"] != rows[0]["lr"]
    assert any(r["diverged_at"] for r in rows) and any(not r["diverged_at"] for r in rows)
    meta = json.loads((out / "sweep.json").read_text())
    assert meta["seed"] == 4 and meta["steps"] == 100 and meta["shape"] == [4, 3] and meta["wall_time"] > 0
    assert [a["name"] for a in meta["axes"]] == ["lr", "momentum"] and meta["axes"][0]["log"] is True
    assert meta["measures"] == [*MEASURES, "stationary_loss"]


def test_a_sweep_table_in_the_script(tmp_path, capsys):
    text = ROSENBROCK + '\n[sweep]\nlane = "hb"\ngrid = ["lr=1e-4:1e-3:log:2", "momentum=0.5,0.9"]\nsteps = 20\n'
    path = write(tmp_path, text)
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--quiet"]) == 0
    meta = json.loads((tmp_path / "o" / "sweep.json").read_text())
    assert meta["shape"] == [2, 2] and meta["steps"] == 20 and meta["lane"] == "hb"
    # the script still replays: [sweep] is only for sweeps
    assert main(["replay", str(path), "--out", str(tmp_path / "r"), "--quiet"]) == 0


@pytest.mark.parametrize("args,message", [
    (["--lane", "hb", "--grid", "lrr=1:2:3"], "has no setting 'lrr'; did you mean 'lr'"),
    (["--lane", "hb", "--grid", "momentum=0:1.5:3"], "grid momentum: value 1.5 is out of range"),
    (["--lane", "hb", "--grid", "lr=1e-4:1:log:2000", "--grid", "momentum=0:0.9:2000"], "over the cap of"),
    (["--lane", "hb", "--grid", "lr=0:1:log:3"], "a log range needs LOW and HIGH > 0"),
    (["--lane", "hb", "--grid", "lr=1:2"], "a range is LOW:HIGH:COUNT"),
    (["--lane", "nope", "--grid", "lr=1:2:2"], "unknown lane 'nope'"),
    (["--lane", "hb", "--grid", "optimizer=sgd,adma"], "unknown optimizer 'adma'; did you mean 'adam'"),
    (["--lane", "hb", "--grid", "momentum=0:0.5:2", "--grid", "optimizer=nesterov"], "Nesterov momentum needs"),
    (["--lane", "hb"], "no grid"),
    (["--lane", "hb", "--grid", "lr=1e-3:1e-2:2", "--steps", "-1"], "--steps must be >= 0"),
])
def test_bad_grids_exit_2_with_one_line(tmp_path, capsys, args, message):
    path = write(tmp_path, ROSENBROCK)
    out = tmp_path / "never"
    assert main(["sweep", str(path), *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (out / "sweep.csv").exists()


def test_a_bad_sweep_table_names_file_line_and_key(tmp_path, capsys):
    text = ROSENBROCK + '\n[sweep]\nlane = "hb"\ngrid = ["lr=1e-4:1e-3:log:2", "beta=0:1:2"]\n'
    path = write(tmp_path, text)
    assert main(["sweep", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    line = text.splitlines().index('grid = ["lr=1e-4:1e-3:log:2", "beta=0:1:2"]') + 1
    assert err.startswith(f"sgdtui: error: {path}:{line}: sweep.grid: grid: optimizer 'momentum' has no setting 'beta'")
    write(tmp_path, ROSENBROCK + "\n[sweep]\nsteps = 'ten'\n", "t.toml")
    assert main(["sweep", str(tmp_path / "t.toml")]) == 2
    assert ": sweep.steps: must be a whole number" in capsys.readouterr().err
    text = ROSENBROCK + '\n[sweep]\nlane = "hbb"\ngrid = ["lr=1e-4:1e-3:2"]\n'
    write(tmp_path, text, "l.toml")
    assert main(["sweep", str(tmp_path / "l.toml")]) == 2
    line = text.splitlines().index('lane = "hbb"') + 1
    assert f"l.toml:{line}: sweep.lane: unknown lane 'hbb'; did you mean 'hb'" in capsys.readouterr().err
    write(tmp_path, ROSENBROCK + "\n[sweep]\ngird = []\n", "k.toml")
    assert main(["sweep", str(tmp_path / "k.toml")]) == 2
    assert "sweep.gird: unknown key; did you mean 'grid'" in capsys.readouterr().err


def test_a_bad_out_folder_is_refused_before_the_run(tmp_path, capsys):
    path = write(tmp_path, ROSENBROCK)
    (tmp_path / "file").write_text("x")
    assert main(["sweep", str(path), "--lane", "hb", "--grid", "lr=1e-4:1e-3:2", "--out", str(tmp_path / "file" / "o")]) == 2
    assert "is not a folder" in capsys.readouterr().err
