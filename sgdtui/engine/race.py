"""Lanes and races: several optimizer configurations stepping in lockstep on one surface.

A lane is one optimizer configuration (hyperparameters, schedule, batch size, coupling rule,
gradient noise) applied to one or more start points at once: its parameter is a single (N, 2)
tensor, so N trajectories step as one. Each lane owns its RNG stream, seeded from the race seed
and the lane's name, so adding or removing a lane never changes another lane's numbers.

A trajectory whose position or loss becomes non-finite, or leaves the surface's bound, is frozen
at its last finite point and marked diverged at that step; the lane's other trajectories go on.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from sgdtui.engine.history import History
from sgdtui.engine.optimizers import OptimizerSpec, get_optimizer, set_hyper
from sgdtui.engine.schedules import (
    COUPLINGS,
    CouplingError,
    couple,
    make_schedule,
    temperature,
)
from sgdtui.engine.surfaces import DTYPE, Surface

CONVERGED_TOL = 1e-3  # within this of the surface's known minimum value counts as converged
STATIONARY_GRAD = 1e-8
STAGE = 256  # steps buffered in torch before being copied into the numpy history
HISTORY_BUDGET = 4_000_000  # float64 values a lane's bounded history may hold (~32 MB)


def lane_seed(seed: int, name: str, stream: str = "") -> int:
    """A stable 63-bit seed from the race seed and the lane's name (independent of other lanes)."""
    digest = hashlib.sha256(f"{seed}:{name}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


@dataclass(frozen=True)
class LaneConfig:
    """Everything that defines a lane; ``hyper`` holds the optimizer's full hyperparameters."""

    name: str
    optimizer: str
    hyper: dict[str, Any]
    batch: int = 1
    schedule: str = "constant"
    schedule_params: dict[str, Any] = field(default_factory=dict)
    coupling: str = "none"
    noise: float = 0.0
    starts: tuple[tuple[float, float], ...] | None = None  # None: the surface's default starts

    @staticmethod
    def create(name: str, optimizer: str, **settings: Any) -> "LaneConfig":
        """Validate and fill in defaults; hyperparameters are given by name among ``settings``."""
        spec = get_optimizer(optimizer)
        fields = {"batch", "schedule", "schedule_params", "coupling", "noise", "starts"}
        hyper = {k: v for k, v in settings.items() if k not in fields}
        rest = {k: v for k, v in settings.items() if k in fields}
        cfg = LaneConfig(name=name, optimizer=optimizer, hyper=spec.validate(hyper), **rest)
        cfg.check()
        return cfg

    def check(self) -> None:
        if not isinstance(self.batch, int) or isinstance(self.batch, bool) or not 1 <= self.batch <= 1_000_000:
            raise ValueError(f"batch must be an integer in [1, 1000000], got {self.batch!r}")
        if self.coupling not in COUPLINGS:
            raise CouplingError(f"unknown coupling {self.coupling!r} (choose from {', '.join(COUPLINGS)})")
        if not isinstance(self.noise, (int, float)) or isinstance(self.noise, bool) or not 0 <= self.noise <= 1e6:
            raise ValueError(f"noise must be a number in [0, 1e6], got {self.noise!r}")
        make_schedule(self.schedule, **self.schedule_params)
        if self.starts is not None:
            if not self.starts:
                raise ValueError("starts needs at least one [x, y] point")
            for p in self.starts:
                if len(p) != 2 or not all(math.isfinite(v) for v in p):
                    raise ValueError(f"start point {list(p)!r} must be two finite numbers")

    @property
    def spec(self) -> OptimizerSpec:
        return get_optimizer(self.optimizer)

    def with_changes(self, **changes: Any) -> "LaneConfig":
        cfg = replace(self, **changes)
        cfg.check()
        return cfg


@dataclass(frozen=True)
class LaneReadout:
    """What a lanes table shows of any lane (surface or MLP): its steering state now."""

    name: str
    optimizer: str
    hyper: dict[str, Any]
    base_lr: float
    effective_lr: float  # after schedule and coupling
    decay_name: str | None
    decay: float | None
    batch: int
    schedule: str  # a short label
    coupling: str
    temperature: float
    t: int


class LaneSteering:
    """What a lane's keys and events change, shared by surface lanes and MLP lanes: the
    hyperparameters (written into the optimizer's param groups, torch's way), the schedule, the
    batch size and the coupling rule that together give the effective lr.

    A schedule counts steps from when it was set: from the lane's start, or from the step at
    which an event (or the ``s`` key) switched to it.
    """

    config: LaneConfig
    t: int
    optimizer: torch.optim.Optimizer

    @property
    def spec(self) -> OptimizerSpec:
        return self.config.spec

    def start_schedule(self) -> None:
        self.schedule = make_schedule(self.config.schedule, **self.config.schedule_params)
        self.schedule_origin = self.t

    def compute_lr(self) -> float:
        cfg = self.config
        scheduled = self.schedule.lr(self.t - self.schedule_origin, cfg.hyper["lr"])
        return couple(cfg.coupling, scheduled, cfg.batch, self.spec.momentum_of(cfg.hyper))

    def set_hyper(self, name: str, value: Any) -> None:
        hyper = self.spec.validate({**self.config.hyper, name: value})
        self.config = replace(self.config, hyper=hyper)
        if name != "lr":  # lr is written every step from the schedule and coupling
            set_hyper(self.optimizer, name, hyper[name])
        self.effective_lr = self.compute_lr()

    def set_config(self, **changes: Any) -> None:
        """Change batch, schedule, coupling or noise; takes effect at the next step."""
        self.config = self.config.with_changes(**changes)
        if "schedule" in changes or "schedule_params" in changes:
            self.start_schedule()
        self.effective_lr = self.compute_lr()

    def readout(self) -> dict[str, Any]:
        """The LaneReadout fields of this lane (a snapshot adds its own)."""
        cfg = self.config
        return dict(
            name=cfg.name, optimizer=cfg.optimizer, hyper=dict(cfg.hyper), base_lr=float(cfg.hyper["lr"]),
            effective_lr=float(self.effective_lr), decay_name=self.spec.decay_param,
            decay=self.spec.decay_value(cfg.hyper), batch=cfg.batch, schedule=self.schedule.label(),
            coupling=cfg.coupling, temperature=self.temperature, t=self.t,
        )

    @property
    def temperature(self) -> float:
        # torch SGD's dampening d scales every gradient's total effect by (1 - d).
        hyper = self.config.hyper
        damped_lr = self.effective_lr * (1.0 - float(hyper.get("dampening", 0.0)))
        return temperature(damped_lr, self.config.batch, self.spec.momentum_of(hyper))


class Lane(LaneSteering):
    """The running state of one lane on one surface."""

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
        converged = (mv is not None and bool(np.all(loss - mv < CONVERGED_TOL))) or bool(
            np.all(self._grad.norm(dim=1).numpy()[alive] < STATIONARY_GRAD)
        )
        text = "converged" if converged else "running"
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


def unique_name(base: str, taken) -> str:
    """``base``, or ``base-2``, ``base-3``, ... whichever is not taken (a lane's default name)."""
    taken = set(taken)
    if base not in taken:
        return base
    k = 2
    while f"{base}-{k}" in taken:
        k += 1
    return f"{base}-{k}"


class LaneRoster:
    """Looking lanes up by name; shared by surface races and MLP races."""

    lanes: list

    def lane(self, name: str):
        for lane in self.lanes:
            if lane.config.name == name:
                return lane
        raise KeyError(f"no lane named {name!r} (lanes: {', '.join(self.lane_names()) or 'none'})")

    def lane_names(self) -> list[str]:
        return [lane.config.name for lane in self.lanes]

    def unique_name(self, base: str) -> str:
        return unique_name(base, self.lane_names())


class Race(LaneRoster):
    """All lanes stepping in lockstep on one surface."""

    def __init__(self, surface: Surface, lanes: list[LaneConfig] = (), seed: int = 0,
                 history_capacity: int | None = 4096):
        self.surface = surface
        self.seed = seed
        self.history_capacity = history_capacity
        self.lanes: list[Lane] = []
        self.step_count = 0
        for cfg in lanes:
            self.add_lane(cfg)

    def add_lane(self, config: LaneConfig) -> Lane:
        if config.name in self.lane_names():
            raise ValueError(f"a lane named {config.name!r} already exists")
        lane = Lane(config, self.surface, self.seed, self.history_capacity)
        self.lanes.append(lane)
        return lane

    def remove_lane(self, name: str) -> None:
        self.lanes.remove(self.lane(name))

    def set_surface(self, surface: Surface) -> None:
        """Switch surface: every lane restarts from the new surface's default start points."""
        self.surface = surface
        for lane in self.lanes:
            lane.surface = surface
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
