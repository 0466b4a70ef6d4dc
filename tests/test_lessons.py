"""Each lesson in examples/ shows what its comments claim: checked numerically, with tolerances
from the theory (and the runs' own standard errors), on the lesson's own script."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sgdtui.engine.commands import Caption
from sgdtui.engine.script import load_script
from sgdtui.engine.session import Session

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LESSONS = ("temperature-and-batch", "batch-coupling", "momentum-ema-vs-pytorch", "adam-bias-correction", "langevin",
           "lr-range-test", "convergence-theorem", "swa", "gd-vs-flow")


def run(name: str, steps: int | None = None, lanes: tuple[str, ...] | None = None, capacity=64) -> Session:
    script = load_script(EXAMPLES / f"{name}.toml")
    if lanes is not None:
        script.lanes = [cfg for cfg in script.lanes if cfg.name in lanes]
        script.events = [(s, c) for s, c in script.events if isinstance(c, Caption)]
    session = Session.from_script(script, history_capacity=capacity)
    session.run(steps)
    session.race.flush()
    return session


def stats(session: Session, lane: str):
    return session.race.lane(lane).lab.stationary


@pytest.mark.parametrize("name", LESSONS)
def test_every_lesson_says_what_to_watch(name):
    script = load_script(EXAMPLES / f"{name}.toml")
    captions = [c for _, c in script.events if isinstance(c, Caption)]
    assert captions and all(len(c.text) > 40 for c in captions)


def test_temperature_and_batch_each_batch_quadrupling_cools_fourfold():
    session = run("temperature-and-batch", steps=2000)
    losses = {name: stats(session, name).mean_loss for name in ("b1", "b4", "b16")}
    for name, batch in (("b1", 1), ("b4", 4), ("b16", 16)):
        t_gibbs = 0.02 / (2 * batch)  # sigma^2 lr / (2B)
        assert stats(session, name).t_gibbs == pytest.approx(t_gibbs)
        # <L> = T_G, up to the finite-lr factor 1/(1 - lr*lambda/2) (at most 1.11 here).
        assert losses[name] == pytest.approx(t_gibbs, rel=0.15)
    assert losses["b1"] / losses["b4"] == pytest.approx(4, rel=0.1)
    assert losses["b4"] / losses["b16"] == pytest.approx(4, rel=0.1)


@pytest.fixture(scope="module")
def coupling():
    return run("batch-coupling", steps=2200)


@pytest.mark.parametrize("reference, coupled", [
    ("sgd-b1", "sgd-b16-linear"), ("mom-b1", "mom-b16"), ("adam-b1", "adam-b16-sqrt"), ("adamr-b1", "adamr-b16")])
def test_each_coupling_rule_keeps_its_temperature(coupling, reference, coupled):
    ref, new = stats(coupling, reference), stats(coupling, coupled)
    assert new.t_gibbs == pytest.approx(ref.t_gibbs, rel=0.05)  # the temperature the rule holds fixed
    for lane in (ref, new):  # and each sits at its Gibbs prediction d T_G / 2 (B lr0 lambda_max = 0.2)
        assert lane.mean_loss == pytest.approx(lane.t_gibbs, rel=0.15)
    if reference != "adamr-b1":  # its b1 lane keeps beta1 = 0.9, its b16 lane none: 14 % apart at lr*lambda 0.2
        assert new.mean_loss == pytest.approx(ref.mean_loss, rel=0.15)  # flat within 15 %


def test_without_coupling_and_with_linear_adam_the_temperature_moves(coupling):
    assert stats(coupling, "sgd-b16-none").mean_loss == pytest.approx(stats(coupling, "sgd-b1").mean_loss / 16, rel=0.15)
    ratio = stats(coupling, "adam-b16-linear").mean_loss / stats(coupling, "adam-b1").mean_loss
    assert ratio == pytest.approx(4, rel=0.15)  # sqrt(16): linear coupling overheats Adam


def test_ema_momentum_ignores_beta_and_heavy_ball_runs_hotter():
    session = run("momentum-ema-vs-pytorch", steps=2000)
    ema5, ema9 = stats(session, "ema-0.5").mean_loss, stats(session, "ema-0.9").mean_loss
    assert ema9 == pytest.approx(ema5, rel=0.15)
    torch5, torch9 = stats(session, "torch-0.5").mean_loss, stats(session, "torch-0.9").mean_loss
    assert torch9 / torch5 == pytest.approx((1 - 0.5) / (1 - 0.9), rel=0.15)
    assert stats(session, "vanilla-0.9").mean_loss == pytest.approx(ema9, rel=0.15)


def test_uncorrected_adam_takes_larger_early_steps():
    session = run("adam-bias-correction", steps=30, capacity=None)
    paths = {name: h["pos"][:, 0, :] for name, h in session.trajectories().items()}
    step = {name: np.linalg.norm(np.diff(p, axis=0), axis=1) for name, p in paths.items()}
    ratio = step["adam-nobias"][:20] / step["adam"][:20]
    assert ratio[0] > 2.5 and 3.0 <= ratio[1:20].max() <= 6.5 and ratio[1:20].min() >= 2.5
    np.testing.assert_allclose(step["adam-minbias"][:10], step["adam"][:10], rtol=0.05)


def test_langevin_hot_particles_fill_the_wells_as_gibbs_cold_ones_cannot():
    session = run("langevin", steps=6000)
    hot, cold = stats(session, "hot"), stats(session, "cold")
    hot_basins = hot.basins()
    np.testing.assert_allclose(hot_basins.measured, hot_basins.gibbs, atol=0.04)
    assert hot.tv().distance < 0.05
    assert hot.barrier_warning() is None
    cold_basins = cold.basins()
    assert cold_basins.measured[1] > 0.99 and cold_basins.gibbs[0] > 0.99  # stuck right, Gibbs says left
    assert "cannot mix" in cold.barrier_warning()


def test_the_range_test_suggests_the_tutorials_lr():
    session = run("lr-range-test")
    reading = session.race.lane("adam-range").lab.range_test_reading()
    assert 1.5 <= reading.suggested_lr <= 3.0


def test_the_convergence_theorem_under_three_schedules():
    session = run("convergence-theorem", steps=3000)
    lanes = {lane.config.name: lane for lane in session.race.lanes}
    mean_loss = {name: float(lane.L[: lane.n].numpy().mean()) for name, lane in lanes.items()}
    assert lanes["exponential"].sum_lr == pytest.approx(0.02 / (1 - 0.95), rel=1e-6)  # a finite sum: it froze
    assert lanes["inverse-time"].sum_lr2 < 0.02 ** 2 * 100 * 1.05  # sum (lr/(1+t/100))^2 < lr^2 * 100 * pi^2/6 / ...
    assert lanes["constant"].sum_lr2 == pytest.approx(0.02 ** 2 * 3000)  # grows without bound
    assert mean_loss["inverse-time"] < mean_loss["constant"] / 5  # still closing in
    assert mean_loss["exponential"] > mean_loss["constant"]  # stopped short of the minimum


def test_swa_sits_at_the_clouds_centre():
    session = run("swa")
    for name in ("sgd", "momentum"):
        lab = session.race.lane(name).lab
        summary = lab.summary()["swa"]
        assert summary["steps_averaged"] == 4000 - 500
        assert summary["final_loss"] < 0.02 * 0.01  # the iterate's own stationary loss is ~0.01


def test_gd_follows_the_flow_at_a_small_lr_and_zigzags_off_it_at_a_large_one():
    session = run("gd-vs-flow", steps=40, capacity=None)
    tr = session.trajectories()
    small, large = tr["small-lr"]["pos"][:, 0, :], tr["large-lr"]["pos"][:, 0, :]
    flow_small = session.race.lane("small-lr").lab.flow
    assert np.abs(small[-1] - flow_small.x[0]).max() < 5e-3  # GD = Euler on the flow: close at lr 0.01
    assert flow_small.time == pytest.approx(40 * 0.01)
    signs = np.sign(large[1:12, 1])
    assert (signs[1:] != signs[:-1]).all()  # y flips every step: a zigzag across the valley
    assert (np.diff(small[:, 1]) < 0).all()  # the small lr slides down monotonically, like the flow
