"""The Lab's claims, checked numerically against the theory (tolerances from the theory and the
runs' own standard errors, never from timing)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.replay import run_replay
from sgdtui.engine.script import load_script
from sgdtui.engine.session import Session
from sgdtui.engine.commands import SetLane
from sgdtui.engine.params import SettingError

QUADRATIC = {"expr": "0.5*x**2 + 5*y**2", "xlim": [-2.0, 2.0], "ylim": [-2.0, 2.0]}  # lambda_max = 10

# lr * lambda_max <= 0.2 for each (the heavy-ball ones through lr / (1 - mu)).
STATIONARY_LANES = [
    ("sgd", {"lr": 0.02}), ("momentum", {"lr": 0.002, "momentum": 0.9}),
    ("nesterov", {"lr": 0.002, "momentum": 0.9}), ("ema-momentum", {"lr": 0.02, "beta": 0.9}),
    ("vanilla-momentum", {"lr": 0.002, "momentum": 0.9}), ("adam", {"lr": 0.002}),
    ("rmsprop", {"lr": 0.002}), ("sgld", {"lr": 0.02, "temperature": 0.05}),
]


def cloud(name, optimizer, particles=16, burn_in=400, noise=1.0, **hyper):
    return LaneConfig.from_table({"name": name, "optimizer": optimizer, **hyper, "noise": noise,
                                  "starts": {"copies": particles, "at": [0.0, 0.0]}, "burn_in": burn_in})


@pytest.fixture(scope="module")
def stationary_session():
    session = Session(QUADRATIC, [cloud(n, n, **h) for n, h in STATIONARY_LANES], history_capacity=64)
    session.advance(2400)
    return session


@pytest.mark.parametrize("name", [n for n, _ in STATIONARY_LANES])
def test_the_stationary_loss_is_d_times_the_gibbs_temperature_over_two(stationary_session, name):
    stats = stationary_session.race.lane(name).lab.stationary
    predicted = 2 * stats.t_gibbs / 2  # d = 2 coordinates, each holding T_G / 2
    assert stats.mean_loss == pytest.approx(predicted, rel=0.15)
    assert stats.predicted_mean_loss() == pytest.approx(predicted, rel=0.01)  # the Gibbs density's own mean


def test_the_gibbs_temperature_follows_each_optimizers_rule(stationary_session):
    lanes = {lane.config.name: lane.lab for lane in stationary_session.race.lanes}
    sigma2 = 1.0
    assert lanes["sgd"].temperature() == pytest.approx(0.02)  # lr / B
    assert lanes["momentum"].temperature() == pytest.approx(0.02)  # lr / (B (1 - mu))
    assert lanes["ema-momentum"].temperature() == pytest.approx(0.02)  # EMA: lr, whatever beta
    assert lanes["sgd"].gibbs_temperature() == pytest.approx(sigma2 * 0.02 / 2)
    assert lanes["sgld"].gibbs_temperature() == pytest.approx(0.05 + sigma2 * 0.02 / 2)  # its T plus the noise's
    # Adam: lr / (sqrt(v_hat) + eps) with v_hat ~ sigma^2 near the minimum: about lr / sigma.
    assert lanes["adam"].temperature() == pytest.approx(0.002, rel=0.1)


def test_adagrad_has_no_stationary_temperature_it_anneals():
    # Its accumulated squared gradients grow like t: lr_eff ~ 1/sqrt(t), a cooling schedule.
    session = Session(QUADRATIC, [cloud("adagrad", "adagrad", lr=0.05)], history_capacity=64)
    session.advance(200)
    early = session.race.lane("adagrad").lab.temperature()
    session.advance(1400)
    late = session.race.lane("adagrad").lab.temperature()
    assert late == pytest.approx(early * (200 / 1600) ** 0.5, rel=0.1)


def test_no_temperature_where_none_is_defined():
    session = Session(QUADRATIC, [LaneConfig.from_table({"name": "a", "optimizer": "adam", "lr": 0.01}),
                                  LaneConfig.from_table({"name": "l", "optimizer": "lars", "lr": 0.01})])
    adam, lars = session.race.lane("a").lab, session.race.lane("l").lab
    assert adam.temperature() is None and adam.gibbs_temperature() is None  # no second moment yet
    session.advance(1)
    assert adam.temperature() is not None
    assert lars.gibbs_temperature() is None  # a step size that depends on the point: no exp(-L/T)


def test_a_steered_lane_restarts_its_stationary_statistics():
    session = Session(QUADRATIC, [cloud("sgd", "sgd", burn_in=100, lr=0.02)], history_capacity=64)
    session.advance(400)
    session.race.flush()
    before = session.race.lane("sgd").lab.stationary
    assert before.steps == 300
    session.apply(SetLane("sgd", {"lr": 0.01}))
    session.advance(150)
    session.race.flush()
    after = session.race.lane("sgd").lab.stationary
    assert after is not before and after.steps == 50  # counted again after a new burn-in from the change
    session.apply(SetLane("sgd", {"burn_in": False}))
    assert session.race.lane("sgd").lab.stationary is None


def test_a_replay_writes_the_stationary_figures_and_density(tmp_path):
    script = tmp_path / "s.toml"
    script.write_text('''version = 1
steps = 1200
[problem]
expr = "0.5*x**2 + 5*y**2"
xlim = [-2.0, 2.0]
ylim = [-2.0, 2.0]
[[lanes]]
name = "sgd"
optimizer = "sgd"
lr = 0.02
noise = 1.0
starts = { sample = 16, x = [-0.1, 0.1], y = [-0.1, 0.1], seed = 1 }
burn_in = 200
''')
    summary = run_replay(load_script(script), tmp_path / "out")
    (lane,) = json.loads((tmp_path / "out" / "summary.json").read_text())["lanes"]
    stationary = lane["stationary"]
    assert set(stationary) >= {"burn_in", "mean_loss", "mean_loss_se", "predicted_mean_loss", "tv_to_gibbs",
                               "basin_masses", "tv_grid", "tv_sampling_noise"}
    assert stationary["burn_in"] == 200 and stationary["mean_loss_se"] > 0
    assert stationary["tv_to_gibbs"] < 0.15
    assert lane["sum_lr"] == pytest.approx(0.02 * 1200) and lane["sum_lr2"] == pytest.approx(0.02 ** 2 * 1200)
    assert "density.csv" in summary["files"]
    rows = (tmp_path / "out" / "density.csv").read_text().splitlines()
    assert rows[0] == "lane,x,y,count,gibbs" and len(rows) == 1 + 64 * 64
    counts = sum(int(r.split(",")[3]) for r in rows[1:])
    assert counts <= 16 * 1000 and counts > 0.99 * 16 * 1000
    again = run_replay(load_script(script), tmp_path / "again")
    assert again["lanes"][0]["stationary"] == summary["lanes"][0]["stationary"]  # bit for bit


@pytest.mark.parametrize("starts, message", [
    ({"copies": 0, "at": [0, 0]}, "starts.copies"),
    ({"sample": 4, "x": [1, 0], "y": [0, 1]}, "starts.x"),
    ({"copies": 3}, "copies cloud"),
    ({"cloud": 3}, "must be a list"),
])
def test_bad_cloud_starts_name_the_key(starts, message):
    with pytest.raises(SettingError, match=message):
        LaneConfig.from_table({"optimizer": "sgd", "name": "a", "starts": starts})


def test_cloud_starts_round_trip_through_the_table():
    cfg = LaneConfig.from_table({"optimizer": "sgd", "name": "a", "starts": {"sample": 5, "x": [0, 1], "y": [2, 3], "seed": 7}})
    assert len(cfg.starts) == 5 and all(0 <= x <= 1 and 2 <= y <= 3 for x, y in cfg.starts)
    again = LaneConfig.from_table(cfg.to_table())
    assert again.starts == cfg.starts and again.to_table()["starts"]["sample"] == 5


def test_a_step_past_two_over_lambda_max_is_marked():
    # The old batch-coupling example: 16 x 0.002 on ill-conditioned, where 2/lambda_max = 0.02.
    lanes = [LaneConfig.from_table({"name": "coupled", "optimizer": "sgd", "lr": 0.002, "batch": 16,
                                    "coupling": "linear", "noise": 5.0}),
             LaneConfig.from_table({"name": "fine", "optimizer": "sgd", "lr": 0.002, "noise": 5.0})]
    session = Session({"surface": "ill-conditioned"}, lanes)
    snapshot = session.snapshot(costly=True)
    coupled, fine = snapshot.lane("coupled"), snapshot.lane("fine")
    assert any(w.startswith("lr·λmax = 3.2") for w in coupled.warnings), coupled.warnings
    assert not fine.warnings
    from sgdtui.ui.present import temperature_cell

    assert temperature_cell(coupled).endswith("!") and not temperature_cell(fine).endswith("!")
