"""The stationary statistics against densities whose answers are known in closed form."""

import math

import numpy as np
import pytest

from sgdtui.engine.stationary import (
    BARRIER_WARN, FINE_BINS, Box, StationaryStats, basin_barriers, basin_labels, cell_point_losses,
    sampling_tv, total_variation,
)

LAM = np.array([1.0, 10.0])


def quadratic(points):
    return 0.5 * (LAM * points ** 2).sum(axis=1)


def double_well(points):
    return (points[:, 0] ** 2 - 1.0) ** 2 + 0.5 * points[:, 1] ** 2


def feed(stats, sample, loss, blocks=20, particles=64, steps=256, t_gibbs=None, start=0):
    for b in range(blocks):
        s = np.arange(start + b * steps, start + (b + 1) * steps)
        pos = sample((steps, particles, 2))
        stats.add(s, pos, loss(pos.reshape(-1, 2)).reshape(steps, particles), t_gibbs)


def test_exact_gibbs_samples_match_their_density_and_mean_loss():
    rng = np.random.default_rng(1)
    t = 0.05
    stats = StationaryStats(10, quadratic, Box((-5, 5), (-5, 5)), minima=((0.0, 0.0),))
    feed(stats, lambda shape: rng.normal(size=shape) * np.sqrt(t / LAM), quadratic, t_gibbs=t)
    report = stats.report()
    assert report["predicted_mean_loss"] == pytest.approx(t, rel=0.01)  # d T / 2 with d = 2
    assert report["mean_loss"] == pytest.approx(t, rel=0.02)
    assert abs(report["mean_loss"] - t) < 4 * report["mean_loss_se"]
    assert report["tv_to_gibbs"] < 0.05
    assert report["tv_sampling_noise"] <= 0.02 + 1e-12
    assert report["outside_box"] == 0.0
    # The box holds the density (5 sigma each way) rather than the whole view.
    assert report["box"]["x"][1] < 2.0 and report["box"]["y"][1] < 1.0


def test_a_wrong_temperature_shows_as_a_large_distance():
    rng = np.random.default_rng(2)
    stats = StationaryStats(0, quadratic, Box((-5, 5), (-5, 5)))
    feed(stats, lambda shape: rng.normal(size=shape) * np.sqrt(0.2 / LAM), quadratic, t_gibbs=0.05, blocks=5)
    assert stats.report()["tv_to_gibbs"] > 0.3


def test_samples_before_the_burn_in_are_not_counted():
    stats = StationaryStats(300, quadratic, Box((-1, 1), (-1, 1)))
    pos = np.ones((256, 4, 2))
    stats.add(np.arange(256), pos, quadratic(pos.reshape(-1, 2)).reshape(256, 4), 0.1)
    assert stats.samples == 0 and stats.report()["mean_loss"] is None
    stats.add(np.arange(256, 512), pos, quadratic(pos.reshape(-1, 2)).reshape(256, 4), 0.1)
    assert stats.steps == 511 - 300 and stats.samples == 4 * (511 - 300)


def test_diverged_particles_are_left_out():
    stats = StationaryStats(0, quadratic, Box((-1, 1), (-1, 1)))
    pos = np.zeros((100, 3, 2))
    pos[:, 2] = np.nan
    losses = quadratic(pos.reshape(-1, 2)).reshape(100, 3)
    stats.add(np.arange(1, 101), pos, losses, None)
    assert stats.samples == 200 and stats.mean_loss == 0.0
    assert stats.report()["tv_to_gibbs"] is None  # no temperature, no Gibbs density


def test_batch_means_see_correlated_steps():
    # An AR(1) series with coefficient a has integrated autocorrelation time (1 + a)/(1 - a).
    rng = np.random.default_rng(3)
    a, n = 0.9, 200_000
    x = np.empty(n)
    x[0] = 0.0
    noise = rng.normal(size=n)
    for k in range(1, n):
        x[k] = a * x[k - 1] + noise[k]
    stats = StationaryStats(0, quadratic, Box((-1, 1), (-1, 1)))
    stats.step_means = list(x)
    se, tau = stats.batch_means()
    assert tau == pytest.approx((1 + a) / (1 - a), rel=0.25)
    assert se == pytest.approx(math.sqrt(tau * x.var() / n), rel=0.05)


def test_the_tv_grid_coarsens_until_sampling_noise_is_small():
    gibbs = np.full((FINE_BINS, FINE_BINS), 1.0 / FINE_BINS ** 2)
    many = total_variation(gibbs * 1e9, 0, gibbs, 1e9)
    few = total_variation(gibbs * 1e3, 0, gibbs, 1e3)
    assert many.cells == FINE_BINS and few.cells < FINE_BINS
    assert few.noise <= 0.02 or few.cells == FINE_BINS // 16
    # The noise estimate is the binomial mean absolute deviation.
    assert sampling_tv(np.array([0.5, 0.5]), 100) == pytest.approx(math.sqrt(2 * 0.25 / (math.pi * 100)))


def test_double_well_basins_and_barrier():
    box = Box((-2, 2), (-2, 2))
    values = cell_point_losses(double_well, box)
    labels = basin_labels(values, box, ((-1.0, 0.0), (1.0, 0.0)))
    cx, _ = box.centres()
    assert (labels[cx < -0.1] == 0).all() and (labels[cx > 0.1] == 1).all()
    saddle = basin_barriers(values, labels, 2)
    assert saddle[0, 1] == pytest.approx(1.0, abs=0.01)  # the saddle at the origin has loss 1


def test_a_cloud_stuck_in_one_well_is_warned_about():
    rng = np.random.default_rng(4)
    t = 0.05
    stats = StationaryStats(0, double_well, Box((-2, 2), (-2, 2)), minima=((-1.0, 0.0), (1.0, 0.0)))
    feed(stats, lambda shape: rng.normal(size=shape) * 0.08 + np.array([-1.0, 0.0]), double_well,
         t_gibbs=t, blocks=2)
    report = stats.report()
    assert report["basin_masses"]["measured"][0] > 0.99
    assert report["basin_masses"]["gibbs"] == pytest.approx([0.5, 0.5], abs=0.01)
    assert report["barrier"] > BARRIER_WARN * t and "cannot mix" in report["warning"]


def test_density_rows_cover_the_box():
    rng = np.random.default_rng(5)
    stats = StationaryStats(0, quadratic, Box((-5, 5), (-5, 5)))
    feed(stats, lambda shape: rng.normal(size=shape) * 0.1, quadratic, t_gibbs=0.01, blocks=1)
    rows = stats.density_rows()
    assert len(rows) == FINE_BINS ** 2
    assert sum(r[2] for r in rows) + stats.outside == stats.samples
    assert sum(r[3] for r in rows) == pytest.approx(1.0)
