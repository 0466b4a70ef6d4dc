"""The Lab's per-lane measurements on a surface: stationary statistics after a burn-in, the
running average of the iterate (SWA), the gradient-flow reference, the temperatures, the range
test's reading and the stability warning. A ``SurfaceLane`` owns one ``LaneLab`` and feeds it
each staged block of steps; what it measures goes into the lane's snapshot and the replay's
summary.json (and density.csv).

Everything accumulated for summary.json is added step by step in step order, so a replay's
figures do not depend on how the steps were grouped into blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sgdtui.engine.flow import GradientFlow
from sgdtui.engine.rangetest import read_range_test
from sgdtui.engine.stationary import Box, StationaryStats
from sgdtui.engine.temperature import (
    ADAPTIVE,
    course_temperature,
    gibbs_temperature,
    preconditioned_lr,
    stability_limit,
)

if TYPE_CHECKING:
    from sgdtui.engine.surface_race import SurfaceLane

FLOW_POINTS = 4096  # a flow path longer than this is thinned (every other point) to stay bounded
SWA_POINTS = 4096
# Settings that change the equilibrium: a change restarts the stationary statistics.
EQUILIBRIUM_KEYS = ("batch", "noise", "coupling", "schedule", "schedule_params", "hyper", "burn_in")


@dataclass(frozen=True)
class StationaryReadout:
    """What the app shows of a lane's stationary statistics (the selected lane's status line and
    the density view)."""

    burn_in: int
    steps: int
    mean_loss: float | None
    mean_loss_se: float | None
    predicted_mean_loss: float | None
    t_gibbs: float | None
    tv: float | None
    tv_cells: int | None
    basins: tuple[tuple[float, float | None], ...]  # (measured, gibbs) per known minimum
    warning: str | None
    box: tuple[tuple[float, float], tuple[float, float]] | None
    counts: np.ndarray | None  # (bins, bins) histogram, [ix, iy]
    gibbs: np.ndarray | None  # (bins, bins) Gibbs weights


def _surface_loss(surface):
    def loss(points: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return surface.loss(torch.as_tensor(points, dtype=torch.float64)).numpy()
    return loss


def _surface_grad(surface):
    def grad(points: np.ndarray) -> np.ndarray:
        _, g = surface.value_and_grad(torch.as_tensor(points, dtype=torch.float64))
        return g.numpy()
    return grad


class LaneLab:
    def __init__(self, lane: "SurfaceLane"):
        self.lane = lane
        self.restart()

    # --- life cycle --------------------------------------------------------------------------
    def restart(self) -> None:
        """The lane (re)started: everything measured begins again."""
        lane, cfg = self.lane, self.lane.config
        surface = lane.surface
        self.stationary: StationaryStats | None = None
        self._burn_from = 0
        if cfg.burn_in is not None:
            self._new_stationary(0)
        self.swa_sum: np.ndarray | None = None
        self.swa_count = 0
        self.swa_curve: list[tuple[int, float]] = []
        self.flow: GradientFlow | None = None
        self.flow_path: list[np.ndarray] = []
        if cfg.flow:
            self._new_flow(lane.P[:, : lane.n].T.numpy())
        self._range_cache: tuple[int, Any] | None = None
        self.range_rows: list[tuple[float, float]] = []  # (lr, mean loss after it), range-test lanes
        self._loss = _surface_loss(surface)

    def _new_stationary(self, origin: int) -> None:
        lane, cfg = self.lane, self.lane.config
        surface = lane.surface
        self._burn_from = origin
        self.stationary = StationaryStats(origin + cfg.burn_in, _surface_loss(surface),
                                          Box(tuple(surface.xlim), tuple(surface.ylim)), tuple(surface.minima))

    def _new_flow(self, starts: np.ndarray) -> None:
        self.flow = GradientFlow(_surface_grad(self.lane.surface), starts, bound=self.lane.surface.bound)
        self.flow_path = [self.flow.x[0].copy()]

    def settings_changed(self, old, new) -> None:
        """Steered: a new equilibrium means new stationary statistics, counted from now; SWA and
        the flow switch on or off."""
        t = self.lane.t
        if new.burn_in is None:
            self.stationary = None
        elif self.stationary is None or any(getattr(old, k) != getattr(new, k) for k in EQUILIBRIUM_KEYS):
            self._new_stationary(t)
        if (new.schedule, new.schedule_params) != (old.schedule, old.schedule_params):
            self.range_rows, self._range_cache = [], None
        if new.swa_start != old.swa_start:
            self.swa_sum, self.swa_count, self.swa_curve = None, 0, []
        if new.flow and not old.flow:
            self._new_flow(self.lane.P[:, : self.lane.n].T.numpy())
        elif not new.flow:
            self.flow, self.flow_path = None, []

    # --- each staged block --------------------------------------------------------------------
    @property
    def wants_positions(self) -> bool:
        """Whether ``block`` reads every step's positions (the stationary statistics and SWA do;
        the range test and the flow read only losses and lrs)."""
        return self.stationary is not None or self.lane.config.swa_start is not None

    def block(self, steps: np.ndarray, pos: np.ndarray, loss: np.ndarray, lrs: np.ndarray) -> None:
        """Steps ``steps`` (k,), positions (k, N, 2), losses (k, N), the lr of each update (k,)."""
        lane, cfg = self.lane, self.lane.config
        if self.stationary is not None:
            self.stationary.add(steps, pos, loss, self.gibbs_temperature())
        if cfg.swa_start is not None:
            after = steps > cfg.swa_start
            if after.any():
                if self.swa_sum is None:
                    self.swa_sum = np.zeros(pos.shape[1:])
                for row in pos[after]:  # one row at a time: the same sum however steps were grouped
                    self.swa_sum += row
                self.swa_count += int(after.sum())
                average = self.swa_average()
                swa_loss = self._loss(average)
                finite = swa_loss[np.isfinite(swa_loss)]
                self.swa_curve.append((int(steps[-1]), float(finite.mean()) if finite.size else math.inf))
                if len(self.swa_curve) > SWA_POINTS:
                    self.swa_curve = self.swa_curve[::2]
        if cfg.schedule == "range-test":
            finite = np.where(np.isfinite(loss), loss, np.nan)
            with np.errstate(invalid="ignore"):
                means = np.nanmean(finite, axis=1) if finite.shape[1] > 1 else finite[:, 0]
            self.range_rows.extend((float(a), float(b)) for a, b, s in zip(lrs, means, steps) if s >= 1)
        if self.flow is not None:
            updates = lrs[steps >= 1]
            elapsed = float(np.nansum(updates))
            if elapsed > 0:
                self.flow.advance(elapsed)
                self.flow_path.append(self.flow.x[0].copy())
                if len(self.flow_path) > FLOW_POINTS:
                    self.flow_path = self.flow_path[::2]

    def swa_average(self) -> np.ndarray | None:
        return None if self.swa_sum is None or not self.swa_count else self.swa_sum / self.swa_count

    # --- temperatures ---------------------------------------------------------------------------
    def temperature(self) -> float | None:
        lane = self.lane
        if lane.row_values:
            return None
        lr = lane.effective_lr
        return course_temperature(lane.spec.name, lane.config.optimizer_hyper(), lane.optimizer.state, lr,
                                  lane.config.batch, columns=slice(0, lane.n))

    def gibbs_temperature(self) -> float | None:
        lane, cfg = self.lane, self.lane.config
        if lane.row_values:
            return None
        minibatch = lane.surface.data_driven and cfg.batch < lane.surface.n
        return gibbs_temperature(cfg.optimizer, self.temperature(), cfg.noise,
                                 sgld_temperature=cfg.hyper.get("temperature"), isotropic_noise=not minibatch)

    def stability_warning(self, lambda_max: float | None) -> str | None:
        """lr_eff * lambda_max past the step's stability limit at the lane's point."""
        lane = self.lane
        if lane.row_values or lambda_max is None or not math.isfinite(lambda_max) or lambda_max <= 0:
            return None
        if lane.spec.name in ADAPTIVE and lane.config.noise == 0:
            # Without gradient noise an adaptive step lr/sqrt(v) only mirrors the gradient's size
            # (huge near a minimum, where the update itself is tiny): no temperature to protect.
            return None
        lr_eff = preconditioned_lr(lane.spec.name, lane.config.optimizer_hyper(), lane.optimizer.state, lane.effective_lr,
                                   columns=slice(0, lane.n))
        if lr_eff is None:
            return None
        limit = stability_limit(lane.spec.name, lane.config.hyper)
        product = lr_eff * lambda_max
        if product <= limit:
            return None
        return f"lr·λmax = {product:.3g} > {limit:.3g}: past the stable step (the coupling rules stop holding)"

    # --- read-outs ------------------------------------------------------------------------------
    def range_test_reading(self):
        """The range test's suggestions from every (lr, loss) pair of a range-test lane."""
        if self.lane.config.schedule != "range-test" or not self.range_rows:
            return None
        cached = self._range_cache
        if cached is not None and cached[0] == len(self.range_rows):
            return cached[1]
        rows = np.array(self.range_rows)
        reading = read_range_test(rows[:, 0], rows[:, 1])
        self._range_cache = (len(self.range_rows), reading)
        return reading

    def stationary_readout(self, with_density: bool) -> StationaryReadout | None:
        stats = self.stationary
        if stats is None:
            return None
        se, _ = stats.batch_means()
        tv = stats.tv() if with_density else None
        basins = stats.basins() if with_density else None
        pairs: tuple = ()
        if basins is not None:
            gibbs = basins.gibbs or (None,) * len(basins.measured)
            pairs = tuple(zip(basins.measured, gibbs))
        box = (stats.box.xlim, stats.box.ylim) if stats.box is not None else None
        return StationaryReadout(
            burn_in=self.lane.config.burn_in, steps=stats.steps, mean_loss=stats.mean_loss, mean_loss_se=se,
            predicted_mean_loss=stats.predicted_mean_loss() if with_density else None, t_gibbs=stats.t_gibbs,
            tv=tv.distance if tv else None, tv_cells=tv.cells if tv else None, basins=pairs,
            warning=stats.barrier_warning(basins) if basins is not None else None, box=box,
            counts=stats.counts.copy() if with_density and stats.box is not None else None,
            gibbs=stats.gibbs() if with_density else None)

    def summary(self) -> dict[str, Any]:
        cfg = self.lane.config
        out: dict[str, Any] = {"temperature": self.temperature(), "gibbs_temperature": self.gibbs_temperature(),
                               "sum_lr": self.lane.sum_lr, "sum_lr2": self.lane.sum_lr2}
        if self.stationary is not None:
            out["stationary"] = self.stationary.report()
        if cfg.swa_start is not None:
            average = self.swa_average()
            out["swa"] = {"start": cfg.swa_start, "steps_averaged": self.swa_count,
                          "final_loss": None if average is None else _finite(float(np.mean(self._loss(average)))),
                          "point": None if average is None else average[0].tolist()}
        return out


def _finite(v: float) -> float | None:
    return v if math.isfinite(v) else None
