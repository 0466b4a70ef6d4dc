"""Surface races: lanes of 2-D trajectories stepping in lockstep on one surface.

A lane is one optimizer configuration applied to one or more start points at once: its
parameter is a single (N, 2) tensor, so N trajectories step as one. Each lane owns its RNG
stream, seeded from the race seed and the lane's name, so adding or removing a lane never
changes another lane's numbers.

A trajectory whose position or loss becomes non-finite, or leaves the surface's bound, is frozen
at its last finite point and marked diverged at that step; the lane's other trajectories go on.
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from sgdtui.engine.anatomy import Anatomy, next_update
from sgdtui.engine.history import History
from sgdtui.engine.lane import LaneConfig, LaneSteering, lane_seed
from sgdtui.engine.race import Race
from sgdtui.engine.snapshot import LaneSnapshot, Snapshot
from sgdtui.engine.status import WINDOW, trajectory_status
from sgdtui.engine.surfaces import DTYPE, Surface

if TYPE_CHECKING:
    from sgdtui.engine.surface_problem import SurfaceProblem

CONVERGED_TOL = 1e-3  # within this of the surface's known minimum value counts as converged
STATIONARY_GRAD = 1e-8
STAGE = 256  # steps buffered in torch before being copied into the numpy history
HISTORY_BUDGET = 4_000_000  # float64 values a lane's bounded history may hold (~32 MB)
CSV_COLUMNS = ("lane", "start", "step", "x", "y", "loss", "lr")
ANATOMY_MAX_STARTS = 4096  # the update anatomy copies the optimizer's state: not for huge clouds


class SurfaceLane(LaneSteering):
    """The running state of one lane on one surface: N start points step as one (N, 2) tensor."""

    def __init__(self, config: LaneConfig, surface: Surface, seed: int, history_capacity: int | None = 4096):
        self.config = config
        self.surface = surface
        self.seed = seed
        self.history_capacity = history_capacity
        self.wall_time = 0.0  # seconds spent stepping this lane (for replay summaries)
        self.reset()

    # --- set-up --------------------------------------------------------------------------
    def reset(self) -> None:
        cfg = self.config
        starts = cfg.starts if cfg.starts is not None else self.surface.starts
        self.params = torch.tensor(starts, dtype=DTYPE)
        self.n = self.params.shape[0]
        self.generator = torch.Generator().manual_seed(lane_seed(self.seed, cfg.name, "grad"))
        self.optimizer_generator = torch.Generator().manual_seed(lane_seed(self.seed, cfg.name, "optimizer"))
        self.optimizer = self.spec.make(
            [self.params], cfg.hyper, generator=self.optimizer_generator, per_row=True
        )
        self.t = 0
        self.start_schedule()
        self.alive = torch.ones(self.n, dtype=torch.bool)
        self.all_alive = True
        self.diverged_at = np.full(self.n, -1, dtype=np.int64)
        capacity = self.history_capacity
        if capacity is not None:
            # A cloud of N start points stores 4N values a row: fewer rows, same memory bound.
            capacity = max(64, min(capacity, HISTORY_BUDGET // (4 * self.n)))
        self.history = History({"pos": (self.n, 2), "loss": (self.n,), "gnorm": (self.n,), "lr": ()},
                               capacity=capacity)
        self._loss, self._grad = self.surface.value_and_grad(self.params)
        self.effective_lr = self.compute_lr()
        # Stage at most half the history, so a flush never compacts more than once.
        self._stage_size = STAGE if capacity is None else min(STAGE, capacity // 2)
        self._stage_pos = torch.empty(self._stage_size, self.n, 2, dtype=DTYPE)
        self._stage_loss = torch.empty(self._stage_size, self.n, dtype=DTYPE)
        self._stage_grad = torch.empty(self._stage_size, self.n, 2, dtype=DTYPE)
        self._stage_lr = np.empty(self._stage_size)
        self._staged = 0
        self._record()
        self._check_divergence(initial=True)

    # --- stepping ------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return not self.all_alive and not bool(self.alive.any())

    def step(self) -> None:
        if self.finished:
            return
        cfg = self.config
        lr = self.compute_lr()
        self.effective_lr = lr
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        stochastic = cfg.noise > 0 or (self.surface.data_driven and cfg.batch < self.surface.n)
        grad = self.surface.stochastic_grad(self.params, cfg.batch, cfg.noise, self.generator) if stochastic else self._grad
        if not self.all_alive:
            grad = torch.where(self.alive[:, None], grad, torch.zeros_like(grad))
            frozen = self.params.detach().clone()
        self.params.grad = grad
        self.optimizer.step()
        if not self.all_alive:
            with torch.no_grad():
                self.params.copy_(torch.where(self.alive[:, None], self.params, frozen))
        self.t += 1
        self._loss, self._grad = self.surface.value_and_grad(self.params)
        self._check_divergence()
        if self.schedule.stateful:
            self.schedule.observe(float(self._loss[self.alive].mean()) if self.alive.any() else math.inf, cfg.hyper["lr"])
        self._record()

    def _check_divergence(self, initial: bool = False) -> None:
        # Fast path (every step): a non-finite loss anywhere makes the sum non-finite.
        if math.isfinite(float(self._loss.sum())) and float(self.params.abs().max()) < self.surface.bound:
            return
        ok = torch.isfinite(self._loss) & (self.params.abs().amax(dim=1) < self.surface.bound)
        if not bool((self.alive & ~ok).any()):
            return
        newly = self.alive & ~ok
        idx = newly.nonzero().flatten()
        last = self._last_positions()
        with torch.no_grad():
            self.params[idx] = last[idx] if not initial else self.params[idx].nan_to_num(0.0, 0.0, 0.0)
        self.alive &= ~newly
        self.all_alive = False
        self.diverged_at[idx.numpy()] = self.t
        self._loss, self._grad = self.surface.value_and_grad(self.params)
        self._loss = torch.where(torch.isfinite(self._loss), self._loss, torch.full_like(self._loss, math.inf))

    def _last_positions(self) -> torch.Tensor:
        if self._staged:
            return self._stage_pos[self._staged - 1]
        pos = self.history.column("pos")
        return torch.from_numpy(np.array(pos[-1])) if len(pos) else self.params.detach().clone()

    def _record(self) -> None:
        i = self._staged
        self._stage_pos[i].copy_(self.params)
        self._stage_loss[i].copy_(self._loss)
        self._stage_grad[i].copy_(self._grad)
        self._stage_lr[i] = self.effective_lr
        self._staged += 1
        if self._staged == self._stage_size:
            self.flush()

    def flush(self) -> None:
        """Move staged steps into the numpy history (called before any snapshot)."""
        k = self._staged
        if not k:
            return
        first = self.t - k + 1  # staged rows are the consecutive steps ending at t
        self.history.append_block(
            np.arange(first, first + k),
            pos=self._stage_pos[:k].numpy(),
            loss=self._stage_loss[:k].numpy(),
            gnorm=self._stage_grad[:k].norm(dim=2).numpy(),
            lr=self._stage_lr[:k],
        )
        self._staged = 0

    # --- read-outs -----------------------------------------------------------------------
    @property
    def positions(self) -> np.ndarray:
        return self.params.detach().numpy().copy()

    @property
    def loss(self) -> np.ndarray:
        return self._loss.numpy().copy()

    @property
    def grad_norm(self) -> np.ndarray:
        return self._grad.norm(dim=1).numpy()

    def status(self) -> str:
        if self.finished:
            return f"diverged at {int(self.diverged_at.max())}"
        alive = self.alive.numpy()
        loss = self._loss.numpy()[alive]
        mv = self.surface.min_value
        converged = (mv is not None and bool(np.all(loss - mv < CONVERGED_TOL))) or (mv is None and bool(
            np.all(self._grad.norm(dim=1).numpy()[alive] < STATIONARY_GRAD)))
        if converged:
            text = "converged"
        else:  # what the first live trajectory is doing, from the exact tail of its history
            self.flush()
            k = int(np.argmax(alive))
            text = trajectory_status(self.t, self.history.column("pos")[-WINDOW:, k],
                                     self.history.column("loss")[-WINDOW:, k], float(self._grad[k].norm()), mv)
        if not self.all_alive:
            text += f" ({int((~alive).sum())} diverged)"
        return text


@dataclass(frozen=True)
class HessianInfo:
    eigenvalues: tuple[float, float]
    kind: str  # minimum | maximum | saddle | degenerate
    stability_lr: float | None  # 2/λmax: GD with a larger lr is unstable along the top direction

    def describe(self) -> str:
        l1, l2 = self.eigenvalues
        limit = f"2/λmax = {self.stability_lr:.3g}" if self.stability_lr else "2/λmax = ∞"
        return f"λ = ({l1:.3g}, {l2:.3g}) {self.kind}, {limit}"


def hessian_info(surface: Surface, point: np.ndarray | tuple[float, float]) -> HessianInfo:
    """Eigenvalues of the loss's Hessian at one point and what they say about it."""
    w = torch.tensor(np.asarray(point, dtype=np.float64).reshape(1, 2))
    h = surface.hessian(w)[0]
    h = 0.5 * (h + h.T)
    if not bool(torch.isfinite(h).all()):
        return HessianInfo((math.nan, math.nan), "undefined", None)
    ev = torch.linalg.eigvalsh(h).tolist()
    lo, hi = ev
    scale = max(abs(lo), abs(hi), 1e-12)
    tol = 1e-9 * scale
    if lo > tol:
        kind = "minimum-like (convex here)"
    elif hi < -tol:
        kind = "maximum-like (concave here)"
    elif lo < -tol and hi > tol:
        kind = "saddle"
    else:
        kind = "flat direction"
    return HessianInfo((lo, hi), kind, 2.0 / hi if hi > tol else None)


class SurfaceRace(Race):
    """All lanes stepping in lockstep on one surface."""

    def __init__(self, problem: "SurfaceProblem", lanes: list[LaneConfig] = (), seed: int = 0,
                 history_capacity: int | None = 4096):
        self.problem = problem
        self.seed = seed
        self.history_capacity = history_capacity
        self.lanes: list[SurfaceLane] = []
        self.step_count = 0
        for cfg in lanes:
            self.add_lane(cfg)

    @property
    def surface(self) -> Surface:
        return self.problem.surface

    def add_lane(self, config: LaneConfig) -> SurfaceLane:
        self._check_new_name(config)
        lane = SurfaceLane(config, self.surface, self.seed, self.history_capacity)
        self.lanes.append(lane)
        return lane

    def remove_lane(self, name: str) -> None:
        self.lanes.remove(self.lane(name))

    def move_starts(self, name: str, starts: tuple[tuple[float, float], ...]) -> None:
        lane = self.lane(name)
        lane.config = lane.config.with_starts(starts)
        lane.reset()

    def set_problem(self, problem: "SurfaceProblem") -> None:
        """Switch surface: every lane restarts from the new surface's default start points."""
        self.problem = problem
        for lane in self.lanes:
            lane.surface = problem.surface
            lane.config = replace(lane.config, starts=None)
            lane.reset()
        self.step_count = 0

    def reset(self) -> None:
        for lane in self.lanes:
            lane.reset()
        self.step_count = 0

    def step(self, n: int = 1) -> None:
        clock = time.perf_counter
        for _ in range(n):
            for lane in self.lanes:
                started = clock()
                lane.step()
                lane.wall_time += clock() - started
            self.step_count += 1

    def flush(self) -> None:
        for lane in self.lanes:
            lane.flush()

    # --- read-outs -----------------------------------------------------------------------
    def snapshot(self, version: int, clock: int, *, selected: str | None = None, max_rows: int | None = 2000,
                 costly: bool = True) -> Snapshot:
        """Every lane's history and point; the Hessian read-out (a double backward) only for the
        ``selected`` lane when one is named, and only when ``costly``."""
        lanes = []
        for lane in self.lanes:
            lane.flush()
            cfg = lane.config
            hist = lane.history.snapshot(max_rows)
            alive = lane.alive.numpy().copy()
            info = anatomy = None
            if costly and alive.any() and (selected is None or selected == cfg.name):
                try:
                    info = hessian_info(self.surface, lane.positions[int(np.argmax(alive))])
                except RuntimeError:
                    info = None
                if selected == cfg.name and lane.n <= ANATOMY_MAX_STARTS and bool(alive[0]):
                    anatomy = next_update(lane.optimizer, lane.params, lane._grad, lane.compute_lr())
            diverged = tuple(None if d < 0 else int(d) for d in lane.diverged_at)
            first = min((d for d in diverged if d is not None), default=None)
            lanes.append(SurfaceLaneSnapshot(
                **lane.readout(), status=lane.status(), diverged_at=first, steps=hist["step"],
                loss_curve=mean_finite_loss(hist["loss"]), lrs=hist["lr"], positions=hist["pos"],
                losses=hist["loss"], current=lane.positions, loss=lane.loss, grad_norm=lane.grad_norm,
                alive=alive, diverged_each=diverged, hessian=info, anatomy=anatomy,
            ))
        return Snapshot(version=version, clock=clock, step=self.step_count, kind=self.problem.kind, label=self.problem.label, table=self.problem.to_table(),
                        lanes=tuple(lanes), payload=SurfacePayload(self.surface))

    def trajectories(self) -> dict[str, dict[str, np.ndarray]]:
        """Per lane: 'step' (T,), 'pos' (T, N, 2), 'loss' (T, N), 'gnorm' (T, N), 'lr' (T,)."""
        self.flush()
        return {lane.config.name: lane.history.snapshot() for lane in self.lanes}

    # --- headless output -----------------------------------------------------------------
    def write_outputs(self, out: Path) -> list[str]:
        """trajectories.csv: one row per lane, start point and step; step 0 is the start point.
        Floats are written with repr, so the same script gives byte-identical files."""
        with open(Path(out) / "trajectories.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for name, hist in self.trajectories().items():
                steps, pos, loss, lr = hist["step"], hist["pos"], hist["loss"], hist["lr"]
                for start in range(pos.shape[1]):
                    xs, ys, ls = pos[:, start, 0].tolist(), pos[:, start, 1].tolist(), loss[:, start].tolist()
                    for k, step in enumerate(steps.tolist()):
                        writer.writerow((name, start, step, repr(xs[k]), repr(ys[k]), repr(ls[k]), repr(float(lr[k]))))
        return ["trajectories.csv"]

    def summary(self) -> dict[str, Any]:
        surface = self.surface
        lanes = []
        for lane in self.lanes:
            hist = lane.history.snapshot()
            per_start = []
            for k in range(lane.n):
                losses = hist["loss"][:, k]
                reached = None
                if surface.min_value is not None:
                    hit = np.nonzero(losses - surface.min_value < CONVERGED_TOL)[0]
                    reached = int(hist["step"][hit[0]]) if len(hit) else None
                per_start.append({
                    "final_loss": finite_or_none(losses[-1]),
                    "best_loss": finite_or_none(np.nanmin(losses)) if np.isfinite(losses).any() else None,
                    "steps_to_min": reached,
                    "diverged_at": None if lane.diverged_at[k] < 0 else int(lane.diverged_at[k]),
                })
            entry = {"lane": lane.config.name, "optimizer": lane.config.optimizer, **per_start[0],
                     "wall_time": lane.wall_time}
            if lane.n > 1:
                # Lane-level figures cover every start point; the details stay in per_start.
                reached = [p["steps_to_min"] for p in per_start]
                diverged = [p["diverged_at"] for p in per_start if p["diverged_at"] is not None]
                entry["final_loss"] = finite_or_none(float(np.mean(hist["loss"][-1])))
                entry["best_loss"] = min((p["best_loss"] for p in per_start if p["best_loss"] is not None),
                                         default=None)
                entry["steps_to_min"] = None if None in reached else max(reached)  # when the last start got there
                entry["diverged_at"] = min(diverged) if diverged else None  # the first divergence
                entry["per_start"] = per_start
            lanes.append(entry)
        return {"min_value": surface.min_value, "lanes": lanes}


def finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def mean_finite_loss(losses: np.ndarray) -> np.ndarray:
    """One loss value per history row: the mean over the lane's trajectories still finite."""
    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim == 1 or losses.shape[1] == 1:
        return losses.reshape(len(losses))
    finite = np.isfinite(losses)
    with np.errstate(invalid="ignore"):
        total = np.where(finite, losses, 0.0).sum(axis=1)
        count = finite.sum(axis=1)
        return np.where(count > 0, total / np.maximum(count, 1), np.inf)


@dataclass(frozen=True)
class SurfaceLaneSnapshot(LaneSnapshot):
    positions: np.ndarray  # (T, N, 2) history of every start point
    losses: np.ndarray  # (T, N)
    current: np.ndarray  # (N, 2)
    loss: np.ndarray  # (N,)
    grad_norm: np.ndarray  # (N,)
    alive: np.ndarray  # (N,) bool
    diverged_each: tuple[int | None, ...]  # per start point
    hessian: "HessianInfo | None"
    anatomy: Anatomy | None = None  # the selected lane's next update, taken apart


@dataclass(frozen=True)
class SurfacePayload:
    """What a surface problem shows besides its lanes: the surface itself (for level lines)."""

    surface: Surface
