"""Races: the course tutorial reproduced, lockstep lanes, per-lane RNG, divergence, coupling,
schedules, batch noise, status and temperature."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sgdtui.engine.lane import LaneConfig, lane_seed
from sgdtui.engine.schedules import make_schedule
from sgdtui.engine.surface_problem import SurfaceProblem
from sgdtui.engine.surface_race import SurfaceRace
from sgdtui.engine.surfaces import DTYPE, SurfaceRegistry, surface_from_expr


def Race(surface, lanes=(), **kwargs) -> SurfaceRace:
    """A surface race on ``surface`` (a Surface object, as these tests build them)."""
    return SurfaceRace(SurfaceProblem(surface, {"surface": surface.name}), list(lanes), **kwargs)


def steer(lane, **settings) -> None:
    """What a SetLane does to a lane: its config with ``settings``, validated, applied."""
    lane.apply_config(lane.config.with_settings(settings))

REGISTRY = SurfaceRegistry(include_user_dir=False)


def tutorial_gd(lr: float, steps: int = 300) -> np.ndarray:
    """A direct transcription of the course tutorial's GD loop, in float64; returns (steps+1, 2)."""
    w = torch.nn.Parameter(torch.tensor([-4.0, 5.0], dtype=torch.float64))

    class GD(torch.optim.Optimizer):
        def __init__(self, params, lr):
            super().__init__(params, {"lr": lr})

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                for p in group["params"]:
                    p += -group["lr"] * p.grad

    opt = GD([w], lr)
    path = [w.detach().clone()]
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.tanh(w[0]) ** 2 + 0.01 * torch.abs(w[1]) + torch.sigmoid(w[1])
        loss.backward()
        opt.step()
        path.append(w.detach().clone())
    return torch.stack(path).numpy()


@pytest.fixture(scope="module")
def tutorial_paths():
    return {lr: tutorial_gd(lr) for lr in (3.0, 1.0, 0.1)}


CHAOTIC_FROM = 70  # lr 3.0 bounces across the tanh well (lr > 2/curvature): one ulp grows to O(1)


def test_race_reproduces_the_tutorials_gd(tutorial_paths):
    lanes = [LaneConfig.create(f"gd-{lr}", "sgd", lr=lr, starts=((-4.0, 5.0),)) for lr in (3.0, 1.0, 0.1)]
    race = Race(REGISTRY.get("pathological"), lanes, history_capacity=None)
    race.step(300)
    race.flush()
    for lr in (1.0, 0.1):
        hist = race.lane(f"gd-{lr}").history.snapshot()
        assert hist["step"].tolist() == list(range(301))
        np.testing.assert_allclose(hist["pos"][:, 0, :], tutorial_paths[lr], rtol=0, atol=1e-12)
    # lr 3.0: y (separable from x) matches all 300 steps; x matches until the bouncing turns chaotic.
    pos = race.lane("gd-3.0").history.snapshot()["pos"][:, 0, :]
    ref = tutorial_paths[3.0]
    np.testing.assert_allclose(pos[:, 1], ref[:, 1], rtol=0, atol=1e-12)
    np.testing.assert_allclose(pos[:CHAOTIC_FROM, 0], ref[:CHAOTIC_FROM, 0], rtol=0, atol=1e-12)
    # lr 3.0 crosses the cliff and ends in the valley; lr 0.1 is still on the plateau
    assert pos[-1, 1] == pytest.approx(-4.585, abs=1e-3)
    assert race.lane("gd-0.1").positions[0, 1] > 4


def test_the_tutorials_lr_3_path_is_chaotic_in_x():
    """Why lr 3.0 is compared in x only up to step 70: the tutorial loop itself, with torch.optim.SGD's
    fused ``p.add_(g, alpha=-lr)`` instead of ``p += -lr * g`` (a one-ulp difference), ends O(1) apart."""
    ref = tutorial_gd(3.0)
    w = torch.nn.Parameter(torch.tensor([-4.0, 5.0], dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=3.0)
    path = [w.detach().clone()]
    for _ in range(300):
        opt.zero_grad()
        (torch.tanh(w[0]) ** 2 + 0.01 * torch.abs(w[1]) + torch.sigmoid(w[1])).backward()
        opt.step()
        path.append(w.detach().clone())
    other = torch.stack(path).numpy()
    np.testing.assert_allclose(other[:CHAOTIC_FROM], ref[:CHAOTIC_FROM], rtol=0, atol=1e-12)
    assert np.abs(other[-50:, 0] - ref[-50:, 0]).max() > 0.1


def test_lanes_step_in_lockstep():
    s = REGISTRY.get("rosenbrock")
    race = Race(s, [LaneConfig.create("a", "sgd", lr=1e-4), LaneConfig.create("b", "adam", lr=0.01)])
    race.step(7)
    assert race.step_count == 7
    assert [lane.t for lane in race.lanes] == [7, 7]
    race.add_lane(LaneConfig.create("c", "momentum", lr=1e-4))
    race.step(3)
    assert [lane.t for lane in race.lanes] == [10, 10, 3]
    race.reset()
    assert [lane.t for lane in race.lanes] == [0, 0, 0] and race.step_count == 0
    with pytest.raises(ValueError, match="already exists"):
        race.add_lane(LaneConfig.create("a", "sgd"))
    with pytest.raises(KeyError, match="no lane named 'zz'"):
        race.lane("zz")
    assert race.unique_name("a") == "a-2"


def _positions(race, name):
    race.flush()
    return race.lane(name).history.snapshot()["pos"]


@pytest.mark.parametrize("surface_name,settings", [
    ("himmelblau", {"noise": 3.0, "batch": 2}),
    ("linear-regression", {"batch": 4}),
    ("linear-regression", {"batch": 4, "noise": 0.5}),
])
def test_adding_or_removing_a_lane_never_changes_another_lanes_numbers(surface_name, settings):
    s = REGISTRY.get(surface_name)
    a = LaneConfig.create("a", "sgd", lr=0.01, starts=((1.0, 1.0), (-1.0, 2.0)), **settings)
    b = LaneConfig.create("b", "adam", lr=0.05, **settings)
    c = LaneConfig.create("c", "sgld", lr=0.001, **settings)
    alone = Race(s, [a], seed=5)
    alone.step(50)
    crowd = Race(s, [c, b, a], seed=5)
    crowd.step(20)
    crowd.remove_lane("c")
    crowd.step(30)
    assert np.array_equal(_positions(alone, "a"), _positions(crowd, "a"))
    # the noise is real: another seed gives other numbers, and two lanes differ
    other = Race(s, [a], seed=6)
    other.step(50)
    assert not np.array_equal(_positions(alone, "a"), _positions(other, "a"))
    assert lane_seed(5, "a", "grad") != lane_seed(5, "b", "grad")


def test_a_diverging_lane_is_frozen_and_others_go_on():
    s = REGISTRY.get("rosenbrock")
    hot = LaneConfig.create("hot", "sgd", lr=1e6, starts=((-1.5, 2.5), (1.0, 1.0)))
    cool = LaneConfig.create("cool", "sgd", lr=1e-4)
    race = Race(s, [hot, cool], history_capacity=None)
    race.step(30)
    race.flush()
    lane = race.lane("hot")
    k = int(lane.diverged_at[0])
    assert k >= 1
    assert lane.diverged_at[1] == -1  # started at the minimum: zero gradient, never diverges
    assert lane.alive.tolist() == [False, True]
    hist = lane.history.snapshot()
    pos = hist["pos"][:, 0, :]
    assert np.isfinite(pos).all() and np.isfinite(hist["loss"][:, 0][: k]).all()
    # frozen at its last finite point from step k on
    assert (np.abs(pos[k - 1]) < s.bound).all()
    assert (pos[k:] == pos[k - 1]).all()
    assert lane.positions[0].tolist() == pos[k - 1].tolist()
    assert lane.t == 30  # the other trajectory kept stepping
    assert lane.status() == "converged (1 diverged)"
    cool_pos = race.lane("cool").history.snapshot()["pos"]
    assert len(cool_pos) == 31 and not np.array_equal(cool_pos[-1], cool_pos[0])


def test_a_lane_whose_every_trajectory_diverged_stops():
    race = Race(REGISTRY.get("rosenbrock"), [LaneConfig.create("hot", "sgd", lr=1e6)])
    race.step(40)
    lane = race.lane("hot")
    assert lane.finished
    k = int(lane.diverged_at[0])
    assert lane.status() == f"diverged at {k}"
    assert lane.t == k  # it stopped stepping once nothing was alive


def test_coupling_changes_the_effective_lr_with_batch():
    s = REGISTRY.get("ill-conditioned")
    lin = LaneConfig.create("lin", "sgd", lr=0.001, batch=1, coupling="linear")
    mom = LaneConfig.create("mom", "momentum", lr=0.001, momentum=0.9, batch=1, coupling="momentum")
    none = LaneConfig.create("none", "sgd", lr=0.001, batch=1)
    race = Race(s, [lin, mom, none])
    race.step(1)
    assert race.lane("lin").effective_lr == pytest.approx(0.001)
    assert race.lane("mom").effective_lr == pytest.approx(0.1 * 0.001)
    for lane in race.lanes:
        steer(lane, batch=16)
    race.step(1)
    assert race.lane("lin").effective_lr == pytest.approx(16 * 0.001)
    assert race.lane("mom").effective_lr == pytest.approx((1 - 0.9) * 16 * 0.001)
    assert race.lane("none").effective_lr == 0.001
    assert race.lane("lin").optimizer.param_groups[0]["lr"] == pytest.approx(0.016)
    race.flush()
    assert race.lane("lin").history.snapshot()["lr"].tolist() == pytest.approx([0.001, 0.001, 0.016])
    # temperature eta / (B (1 - mu)): coupled lanes keep theirs, the uncoupled one cools
    assert race.lane("lin").temperature == pytest.approx(0.001)
    assert race.lane("mom").temperature == pytest.approx(0.001)
    assert race.lane("none").temperature == pytest.approx(0.001 / 16)


@pytest.mark.parametrize("name,params", [
    ("step", {"step_size": 7, "gamma": 0.5}),
    ("cosine", {"T_max": 40}),
    ("exponential", {"gamma": 0.95}),
])
def test_schedules_drive_the_effective_lr(name, params):
    base = 0.02
    cfg = LaneConfig.create("s", "sgd", lr=base, schedule=name, schedule_params=params)
    race = Race(REGISTRY.get("ill-conditioned"), [cfg], history_capacity=None)
    race.step(50)
    race.flush()
    sched = make_schedule(name, **params)
    lrs = race.lane("s").history.snapshot()["lr"]
    # row t records the lr of the step that produced it: row 0 (the start) is lr(0), row t >= 1 is lr(t - 1)
    expected = [sched.lr(0, base)] + [sched.lr(t, base) for t in range(50)]
    assert lrs.tolist() == expected
    assert len(set(expected)) > 3


def test_a_schedule_changes_the_path_like_a_manual_lr_loop():
    base = 0.01
    cfg = LaneConfig.create("s", "sgd", lr=base, schedule="step", schedule_params={"step_size": 5, "gamma": 0.1})
    s = REGISTRY.get("ill-conditioned")
    race = Race(s, [cfg])
    race.step(12)
    w = s.start_tensor().clone()
    for t in range(12):
        _, g = s.value_and_grad(w)
        w = w - (base * 0.1 ** (t // 5)) * g
    np.testing.assert_allclose(race.lane("s").positions, w.numpy(), rtol=0, atol=1e-14)


def test_batch_size_divides_the_gradient_noise_variance():
    flat = surface_from_expr("0*x + 0*y", xlim=(-1e3, 1e3), ylim=(-1e3, 1e3))
    starts = tuple((0.0, 0.0) for _ in range(20000))
    lanes = [LaneConfig.create(f"b{b}", "sgd", lr=1.0, batch=b, noise=3.0, starts=starts) for b in (1, 4, 64)]
    race = Race(flat, lanes)
    race.step(1)
    for b in (1, 4, 64):
        var = race.lane(f"b{b}").positions.var(axis=0)
        np.testing.assert_allclose(var, 9.0 / b, rtol=0.05)


def test_status_converged_running_and_temperature():
    s = REGISTRY.get("ill-conditioned")
    race = Race(s, [LaneConfig.create("fast", "sgd", lr=0.015), LaneConfig.create("slow", "sgd", lr=1e-5),
                    LaneConfig.create("hot", "sgd", lr=0.03)])
    race.step(2000)
    assert race.lane("fast").status() == "converged"
    assert race.lane("slow").status() == "running"
    assert race.lane("hot").status().startswith("diverged at ")  # 0.03 > 2/100: unstable
    lane = race.lane("fast")
    assert lane.temperature == pytest.approx(0.015)
    steer(lane, batch=10)
    assert lane.temperature == pytest.approx(0.0015)
    steer(lane, lr=0.02)
    assert lane.effective_lr == 0.02
    # a stationary point of a surface without a known minimum counts as converged
    saddle = Race(REGISTRY.get("saddle"), [LaneConfig.create("still", "sgd", lr=0.1, starts=((0.0, 0.0),))])
    saddle.step(3)
    assert saddle.lane("still").status() == "converged"


def test_set_hyper_live_and_validated():
    race = Race(REGISTRY.get("rosenbrock"), [LaneConfig.create("m", "momentum", lr=1e-4, momentum=0.5)])
    lane = race.lane("m")
    steer(lane, momentum=0.9)
    assert lane.optimizer.param_groups[0]["momentum"] == 0.9
    with pytest.raises(ValueError, match=r"momentum: must be a number in \[0, 1\), got 2"):
        steer(lane, momentum=2)
    assert lane.config.hyper["momentum"] == 0.9


def test_surface_switch_restarts_every_lane():
    race = Race(REGISTRY.get("rosenbrock"), [LaneConfig.create("a", "sgd", lr=1e-4, starts=((0.0, 0.0),))])
    race.step(5)
    bowl = surface_from_expr("x**2 + y**2", starts=[(2.0, 2.0)])
    race.set_problem(SurfaceProblem(bowl, {"expr": "x**2 + y**2"}))
    lane = race.lane("a")
    assert lane.t == 0 and lane.positions.tolist() == [[2.0, 2.0]]
    race.step(1)
    np.testing.assert_allclose(lane.positions, [[2.0 - 4e-4, 2.0 - 4e-4]], rtol=1e-15)


def test_lane_config_validation():
    with pytest.raises(ValueError, match="batch"):
        LaneConfig.create("x", "sgd", batch=0)
    with pytest.raises(ValueError, match="coupling: must be one of .*got 'lin'; did you mean 'linear'"):
        LaneConfig.create("x", "sgd", coupling="lin")
    with pytest.raises(ValueError, match="noise"):
        LaneConfig.create("x", "sgd", noise=-1)
    with pytest.raises(ValueError, match=r"starts: must be a non-empty list of \[x, y\] points"):
        LaneConfig.create("x", "sgd", starts=((0.0, math.inf),))
    with pytest.raises(ValueError):
        LaneConfig.create("x", "sgd", schedule="nope")
    cfg = LaneConfig.create("x", "adam", lr=0.5)
    assert cfg.hyper["betas"] == (0.9, 0.999) and cfg.hyper["lr"] == 0.5
    assert torch.tensor(REGISTRY.get("pathological").starts, dtype=DTYPE).shape == (1, 2)


def test_a_constant_lr_is_remembered_only_until_the_lane_is_steered():
    surface = SurfaceRegistry(include_user_dir=False).get("ill-conditioned")
    race = SurfaceRace(SurfaceProblem(surface, {"surface": "ill-conditioned"}),
                       [LaneConfig.create("m", "momentum", lr=0.01, momentum=0.9)])
    lane = race.lane("m")
    race.step(3)
    assert lane.effective_lr == 0.01 and lane._constant_lr is not None
    race.set_lane("m", lane.config.with_settings({"lr": 0.02}))
    race.step(1)
    assert lane.effective_lr == 0.02
    race.set_lane("m", lane.config.with_settings({"batch": 4, "coupling": "linear"}))
    race.step(1)
    assert lane.effective_lr == pytest.approx(0.08)  # eta = B eta_0
    race.set_lane("m", lane.config.with_settings({"schedule": {"name": "step", "step_size": 2, "gamma": 0.5}}))
    race.step(3)
    assert lane.effective_lr == pytest.approx(0.04)  # halved once the new schedule's step 2 is reached
