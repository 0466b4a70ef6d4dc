"""Streamed replays: the per-step files are written as the run goes with bounded memory, byte for
byte what writing the whole history at the end gives, thinned by --every, and a bad --out is
refused before the run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sgdtui.cli import main
from sgdtui.engine.replay import REPLAY_HISTORY, run_replay
from sgdtui.engine.script import load_script
from sgdtui.engine.session import Session

EVENTFUL = """
version = 1
seed = 2
steps = 700
[problem]
surface = "himmelblau"
[[lanes]]
name = "a"
optimizer = "sgd"
lr = 0.001
noise = 1.0
[[lanes]]
name = "cloud"
optimizer = "adam"
lr = 0.05
starts = [[0.0, 0.0], [1.0, -1.0], [-2.0, 2.0]]
[[events]]
step = 100
lane = "a"
set = { lr = 0.002 }
[[events]]
step = 300
add = { name = "late", optimizer = "momentum", lr = 0.001 }
[[events]]
step = 350
lane = "cloud"
starts = [[1.0, 1.0], [2.0, 2.0]]
[[events]]
step = 400
reset = true
[[events]]
step = 500
remove = "a"
[[events]]
step = 600
surface = "rosenbrock"
"""

MLP = """
version = 1
seed = 1
steps = 60
[problem]
mlp = { dataset = "moons", hidden = [8], n = 200, eval_every = 7 }
device = "cpu"
[[lanes]]
name = "ok"
optimizer = "adam"
lr = 0.01
[[lanes]]
name = "boom"
optimizer = "sgd"
lr = 1e6
[[events]]
step = 30
add = { name = "late", optimizer = "sgd", lr = 0.1 }
"""


def whole_history_files(path: Path, out: Path) -> bytes:
    """The file as written from the full in-memory history at the end (the unstreamed way)."""
    session = Session.from_script(path, history_capacity=None)
    session.run()
    out.mkdir()
    (name,) = session.race.write_outputs(out)
    return (out / name).read_bytes()


@pytest.mark.parametrize("text,name", [(EVENTFUL, "trajectories.csv"), (MLP, "metrics.csv")], ids=["surface", "mlp"])
def test_the_streamed_file_is_byte_identical_to_the_whole_history(tmp_path, text, name):
    path = tmp_path / "s.toml"
    path.write_text(text)
    want = whole_history_files(path, tmp_path / "whole")
    summary = run_replay(load_script(path), tmp_path / "streamed")
    assert (tmp_path / "streamed" / name).read_bytes() == want
    assert summary["files"] == [name, "summary.json"]
    assert not [p for p in (tmp_path / "streamed").iterdir() if p.name.startswith(".")]  # spools cleaned up


def test_a_nan_training_loss_is_written_as_nan(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(MLP)
    run_replay(load_script(path), tmp_path / "o")
    with open(tmp_path / "o" / "metrics.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["lane"] == "boom"]
    assert any(r["train_loss"] == "nan" for r in rows)
    assert all(r["train_loss"] != "" for r in rows if r["step"] != "0")  # empty means "not evaluated" only
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert next(lane for lane in summary["lanes"] if lane["lane"] == "boom")["diverged_at"] is not None


def test_every_k_keeps_every_kth_step_and_the_last(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(EVENTFUL.replace("steps = 700", "steps = 703"))
    assert main(["replay", str(path), "--out", str(tmp_path / "all"), "--quiet"]) == 0
    assert main(["replay", str(path), "--out", str(tmp_path / "thin"), "--every", "50", "--quiet"]) == 0
    with open(tmp_path / "all" / "trajectories.csv", newline="") as fh:
        every = list(csv.reader(fh))
    with open(tmp_path / "thin" / "trajectories.csv", newline="") as fh:
        thin = list(csv.reader(fh))
    last = {}
    for row in every[1:]:
        last[(row[0], row[1])] = row
    want = [every[0]] + [r for r in every[1:] if int(r[2]) % 50 == 0 or r is last[(r[0], r[1])]]
    assert thin == want
    full = json.loads((tmp_path / "all" / "summary.json").read_text())
    sparse = json.loads((tmp_path / "thin" / "summary.json").read_text())
    assert sparse["every"] == 50
    for a, b in zip(full["lanes"], sparse["lanes"]):  # the figures cover every step either way
        assert {k: v for k, v in a.items() if k != "wall_time"} == {k: v for k, v in b.items() if k != "wall_time"}


def test_replay_memory_stays_bounded(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(EVENTFUL.replace("steps = 700", "steps = 9000").split("[[events]]")[0])
    session = Session.from_script(path, history_capacity=REPLAY_HISTORY)
    streams = session.race.stream_outputs(tmp_path, 1)
    session.run()
    session.race.finish_outputs(streams)
    assert all(len(lane.history) <= REPLAY_HISTORY for lane in session.race.lanes)
    with open(tmp_path / "trajectories.csv", newline="") as fh:
        rows = sum(1 for _ in fh) - 1
    assert rows == 9001 * (1 + 3)  # every step of every trajectory is in the file


@pytest.mark.parametrize("out,message", [
    ("file/sub", "is not a folder"),
    ("/dev/full/out", "is not a folder"),
])
def test_a_bad_out_is_refused_before_the_run(tmp_path, capsys, out, message):
    (tmp_path / "file").write_text("x")
    script = Path(__file__).resolve().parents[1] / "examples" / "rosenbrock-race.toml"
    target = tmp_path / out if not out.startswith("/") else Path(out)
    assert main(["replay", str(script), "--out", str(target), "--steps", "100000000"]) == 2  # would take hours
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_every_must_be_positive(tmp_path, capsys):
    script = Path(__file__).resolve().parents[1] / "examples" / "rosenbrock-race.toml"
    assert main(["replay", str(script), "--every", "0", "--out", str(tmp_path / "o")]) == 2
    assert "--every must be >= 1" in capsys.readouterr().err
