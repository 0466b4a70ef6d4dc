"""Event `set` tables are checked against the lane's own optimizer when the script is read."""

import pytest

from sgdtui.cli import main

SCRIPT = """version = 1
steps = 10

[[lanes]]
optimizer = "adam"

[[events]]
step = 2
add = {{ name = "m", optimizer = "momentum", lr = 0.1 }}

[[events]]
step = 3
lane = "{lane}"
set = {{ {setting} }}
"""


@pytest.mark.parametrize("lane,setting,message", [
    ("adam", "momentum = 0.5", "set.momentum: 'adam' has no setting 'momentum'"),
    ("adam", "lr = -2", "set.lr: must be a number in (0, 1e+06], got -2"),
    ("adam", "betas = [0.9]", "set.betas: must be a pair of numbers"),
    ("m", "betas = [0.9, 0.99]", "set.betas: 'momentum' has no setting 'betas'"),
    ("m", "momentum = 1.0", "set.momentum: must be a number in [0, 1), got 1.0"),
    ("adam", "batch = 0", "set.batch: must be an int in [1, 1e+06], got 0"),
    ("adam", 'schedule = { name = "step", step_size = 0 }', "set.schedule.step_size: must be an int >= 1, got 0"),
])
def test_bad_event_settings_exit_2_before_running(tmp_path, capsys, lane, setting, message):
    path = tmp_path / "s.toml"
    path.write_text(SCRIPT.format(lane=lane, setting=setting))
    assert main(["replay", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path}:14: events[1].{message}" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()  # refused before any step ran


def test_valid_event_settings_for_an_added_lane_replay(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text(SCRIPT.format(lane="m", setting="momentum = 0.5, lr = 0.2"))
    assert main(["replay", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    rows = (tmp_path / "out" / "trajectories.csv").read_text().splitlines()
    m_lrs = [r.split(",")[-1] for r in rows if r.startswith("m,")]
    assert m_lrs[0] == "0.1" and m_lrs[-1] == "0.2"


def test_a_schedule_set_by_an_event_counts_from_that_step():
    from sgdtui.engine.lane import LaneConfig
    from sgdtui.engine.commands import SetLane
    from sgdtui.engine.session import Session
    from sgdtui.engine.surfaces import SurfaceRegistry

    session = Session({"surface": "booth"}, [LaneConfig.create("g", "sgd", lr=0.01)],
                      registry=SurfaceRegistry(include_user_dir=False))
    session.advance(100)
    session.apply(SetLane("g", {"schedule": {"name": "step", "step_size": 10, "gamma": 0.5}}))
    session.advance(25)
    lrs = dict(zip(*[session.trajectories()["g"][k].tolist() for k in ("step", "lr")]))
    # row k holds the lr of update k: updates 101-110 use the new schedule's t = 0..9
    assert lrs[100] == lrs[101] == lrs[110] == 0.01
    assert lrs[111] == lrs[120] == 0.005 and lrs[121] == 0.0025
