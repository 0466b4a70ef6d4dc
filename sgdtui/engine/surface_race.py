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

from sgdtui.engine.anatomy import Anatomy, anatomy_of
from sgdtui.engine.commands import CommandError, Query
from sgdtui.engine.fastgrad import build_program
from sgdtui.engine.files import open_output
from sgdtui.engine.history import History
from sgdtui.engine.lab import LaneLab, StationaryReadout
from sgdtui.engine.lane import LaneConfig, LaneSteering, lane_seed
from sgdtui.engine.race import Race
from sgdtui.engine.schedules import couple
from sgdtui.engine.snapshot import LaneSnapshot, Snapshot
from sgdtui.engine.status import WINDOW, trajectory_status
from sgdtui.engine.surfaces import DTYPE, ExpressionSurface, Surface
from sgdtui.engine.vectorized import Rows, rowwise, vector_optimizer_for

if TYPE_CHECKING:
    from sgdtui.engine.surface_problem import SurfaceProblem

CONVERGED_TOL = 1e-3  # within this of the surface's known minimum value counts as converged
STATIONARY_GRAD = 1e-8
STAGE = 256  # steps buffered in torch before being copied into the numpy history
HISTORY_BUDGET = 4_000_000  # float64 values a lane's bounded history may hold (~32 MB)
CSV_COLUMNS = ("lane", "start", "step", "x", "y", "loss", "lr")
ANATOMY_MAX_STARTS = 4096  # the update anatomy copies the optimizer's state: not for huge clouds
# A batch of trajectories is padded to a multiple of this many, so every one of them goes through
# torch's vectorized kernels (a kernel's scalar tail rounds sigmoid or softplus differently): a
# trajectory's numbers never depend on how many others step with it.
PAD = 16
# Clouds this big evaluate expression surfaces through an in-place program (engine/fastgrad.py,
# the same numbers) from their first step; clouds of at least PROGRAM_SMALL switch to it once
# they have run PROGRAM_AFTER steps (a run long enough to repay the tracing, ~35 ms, and the
# first import of torch.fx, ~1.5 s, which a short run or the app's first frame should not wait for).
PROGRAM_MIN = 512
PROGRAM_SMALL = 16
PROGRAM_AFTER = 64


def padded_width(n: int) -> int:
    return n if n == 1 else -(-n // PAD) * PAD


class SurfaceLane(LaneSteering):
    """The running state of one lane on one surface: its N trajectories step as one (2, n)
    structure-of-arrays tensor (row 0 the x's, row 1 the y's; n is N padded) through the
    vectorized optimizer core.

    ``rows`` gives settings one value per *cell* (a sweep's grid point): a hyperparameter by
    name (``betas`` as a pair of Rows), ``batch`` or ``noise``; each cell runs the lane's start
    points, so the lane has cells x starts trajectories. Every cell draws the random numbers a
    lane of its own would draw (the lane's stream, seeded from ``seed_name``), so each cell is a
    single-lane run of its settings.
    """

    def __init__(self, config: LaneConfig, surface: Surface, seed: int, history_capacity: int | None = 4096,
                 *, rows: dict[str, Any] | None = None, cells: int = 1, seed_name: str | None = None,
                 burn_in: int | None = None, sink=None):
        self.config = config
        self.surface = surface
        self.seed = seed
        self.history_capacity = history_capacity
        self.rows = dict(rows or {})
        self.cells = cells
        self.seed_name = seed_name or config.name
        self.burn_in = burn_in
        self.sink = sink
        self.wall_time = 0.0  # seconds spent stepping this lane (for replay summaries)
        self.reset()

    # --- set-up --------------------------------------------------------------------------
    def reset(self) -> None:
        cfg = self.config
        starts = cfg.starts if cfg.starts is not None else self.surface.starts
        self.starts_per_cell = len(starts)
        self.n = self.cells * self.starts_per_cell
        width = self.width = padded_width(self.n)
        block = torch.tensor(starts, dtype=DTYPE).T  # (2, starts)
        self.P = torch.empty(2, width, dtype=DTYPE)
        self.P[:, : self.n] = block.repeat(1, self.cells)
        self.P[:, self.n:] = block[:, :1]
        self.L = torch.empty(width, dtype=DTYPE)
        self.G = torch.empty(2, width, dtype=DTYPE)
        self._P_np, self._L_np, self._G_np = self.P.numpy(), self.L.numpy(), self.G.numpy()
        self.generator = torch.Generator().manual_seed(lane_seed(self.seed, self.seed_name, "grad"))
        self.optimizer_generator = torch.Generator().manual_seed(lane_seed(self.seed, self.seed_name, "optimizer"))
        self.row_values = {key: self._expand(value) for key, value in self.rows.items()}
        hyper = cfg.optimizer_hyper()
        for key, value in self.row_values.items():
            if key in hyper:
                hyper[key] = value
        self.optimizer = vector_optimizer_for(self.spec, hyper, noise=self._draw_optimizer_noise, columns=self.n)
        self._program = None
        expression = isinstance(self.surface, ExpressionSurface)
        # (only where value_and_grad is the base class's: an override must keep being called)
        plain = expression and type(self.surface).value_and_grad is ExpressionSurface.value_and_grad
        self._at_point = self.surface.value_and_grad_at if width == 1 and plain else None
        self._program_at = PROGRAM_AFTER if expression and PROGRAM_SMALL <= self.n < PROGRAM_MIN else None
        if self.n >= PROGRAM_MIN and expression:
            self._program = build_program(self.surface, self.P, self.L, self.G)
        self.t = 0
        self.sum_lr = self.sum_lr2 = 0.0
        self.start_schedule()
        self._alive = torch.ones(width, dtype=torch.bool)  # pad rows stay alive, never checked
        self._frozen_grad = torch.zeros(2, width, dtype=DTYPE)  # what a diverged trajectory's optimizer sees
        self.all_alive = True
        self.diverged_at = np.full(self.n, -1, dtype=np.int64)
        capacity = self.history_capacity
        if capacity is not None:
            # A cloud of N start points stores 4N values a row: fewer rows, same memory bound.
            capacity = max(64, min(capacity, HISTORY_BUDGET // (4 * self.n)))
        self.history = History({"pos": (self.n, 2), "loss": (self.n,), "gnorm": (self.n,), "lr": ()},
                               capacity=capacity) if self.history_capacity != 0 else None
        self.measures = Measures(self.n, self.surface.min_value, self.burn_in)
        self._evaluate()
        self.effective_lr = self.compute_lr()
        # Stage at most half the history, so a flush never compacts more than once.
        self._stage_size = STAGE if capacity is None else min(STAGE, capacity // 2)
        # A big cloud's bounded history holds few rows (the memory budget): it keeps the latest
        # step of each staged block, so recording costs less than stepping.
        self._history_stride = 1 if capacity is None or capacity >= 1024 else self._stage_size
        self._stage_pos = torch.empty(self._stage_size, 2, width, dtype=DTYPE)
        self._stage_loss = torch.empty(self._stage_size, width, dtype=DTYPE)
        self._stage_grad = torch.empty(self._stage_size, 2, width, dtype=DTYPE)
        self._stage_lr = np.empty(self._stage_size)
        self._stage_np = (self._stage_pos.numpy(), self._stage_loss.numpy(), self._stage_grad.numpy())
        self._stage_lr_rows: list[Any] = []
        self._staged = 0
        self._last_flushed_pos = self.P.clone()
        # A lean block stages only the losses (what the measures read): nothing else reads every
        # step's positions when the history keeps one row a block and no sink or Lab statistic
        # wants them. The position before the update, for freezing a diverged trajectory, is then
        # kept in one buffer that stays in cache instead of a fresh staging row each step.
        self._lean = False
        self._before_update = torch.empty_like(self.P) if self._history_stride > 1 and width > 1 else None
        self.lab = LaneLab(self)
        self._hessian_cache: tuple[tuple[float, float], HessianInfo | None] | None = None
        if self.sink is not None:
            self.sink.restart(self)
        self._record()
        self._check_divergence(initial=True)

    def _expand(self, value: Any) -> Any:
        """Per-cell values (a Rows over cells, or a pair of them) as per-trajectory Rows over the
        padded width (pad rows copy the first trajectory)."""
        if isinstance(value, tuple):
            return tuple(self._expand(v) for v in value)
        if not isinstance(value, Rows):
            return value
        index = value.index.repeat_interleave(self.starts_per_cell)
        if self.width > self.n:
            index = torch.cat([index, index[:1].expand(self.width - self.n)])
        return Rows(value.uniques, index)

    def setting(self, key: str) -> Any:
        """A lane setting (batch, noise) or hyperparameter as a float or per-trajectory Rows."""
        if key in self.row_values:
            return self.row_values[key]
        return getattr(self.config, key) if key in ("batch", "noise") else self.config.hyper[key]

    # --- the gradient ----------------------------------------------------------------------
    def _evaluate(self) -> None:
        """The full loss into L and its gradient into G at every trajectory's point."""
        if self._program_at is not None and self.t >= self._program_at:
            self._program_at = None
            self._program = build_program(self.surface, self.P, self.L, self.G)
        if self._program is not None:
            self._program.run()
            return
        if self._at_point is not None:  # one point of an expression surface: floats in, floats out
            value, gx, gy = self._at_point(*self._P_np[:, 0].tolist())
            self._L_np[0], self._G_np[0, 0], self._G_np[1, 0] = value, gx, gy
            return
        loss, grad = self.surface.value_and_grad(self.P.T if self.width == 1 else self.P.T.contiguous())
        if self.width == 1:  # one point: numpy views copy two numbers faster than torch ops
            self._L_np[0] = float(loss.reshape(-1)[0])
            self._G_np[:, 0] = grad.reshape(2).numpy()
            return
        self.L.copy_(loss.reshape(-1).expand(self.width) if loss.numel() == 1 and self.width > 1 else loss)
        self.G.copy_(grad.T)

    def _draw_normal(self, generator: torch.Generator) -> torch.Tensor:
        """The (2, n) standard normal draw a lane of one cell makes, the same for every cell."""
        xi = torch.randn((self.starts_per_cell, 2), generator=generator, dtype=DTYPE).T
        if self.cells == 1 and self.width == self.n:
            return xi.contiguous()
        tiled = torch.empty(2, self.width, dtype=DTYPE)
        tiled[:, : self.n] = xi.repeat(1, self.cells)
        tiled[:, self.n:] = xi[:, :1]
        return tiled

    def _draw_optimizer_noise(self) -> torch.Tensor:
        return self._draw_normal(self.optimizer_generator)

    def _stochastic_grad(self) -> torch.Tensor:
        """The minibatch gradient estimate this step sees (G itself when the lane is exact)."""
        cfg = self.config
        noise, batch = self.setting("noise"), self.setting("batch")
        noisy = (noise.constant() != 0.0 if isinstance(noise, Rows) and noise.constant() is not None
                 else isinstance(noise, Rows) or noise > 0)
        surface = self.surface
        if surface.data_driven and _smaller(batch, surface.n):
            if self.cells > 1:
                raise ValueError("a swept lane samples minibatches of a data surface one cell at a time")
            grad = surface.stochastic_grad(self.P.T.contiguous(), cfg.batch, cfg.noise, self.generator)
            return grad.T.contiguous()
        if not noisy:
            return self.G
        # surfaces._add_noise: grad + (noise / sqrt(B)) * xi, as two roundings
        scale = rowwise(lambda s, b: s / math.sqrt(b), noise, batch)
        xi = self._draw_normal(self.generator)
        return self.G + xi.mul_(scale.values if isinstance(scale, Rows) else scale)

    # --- stepping ------------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return not self.all_alive and not bool(self.alive.any())

    def _lr_at(self, t: int):
        """Per cell where the lane's settings are swept (a Rows), else the scalar lr."""
        if not self.row_values:
            return super()._lr_at(t)
        cfg = self.config
        scheduled = rowwise(lambda base: self.schedule.lr(t, base), self.setting("lr"))
        rule = cfg.coupling
        if rule != "none":
            spec = self.spec
            momentum = self.setting("momentum") if spec.heavy_ball and "momentum" in cfg.hyper else 0.0
            eps = cfg.hyper.get("eps")
            scheduled = rowwise(lambda lr, b, mu: couple(rule, lr, int(b), mu, eps), scheduled, self.setting("batch"),
                                momentum)
        return scheduled

    def apply_config(self, new: LaneConfig) -> None:
        old = self.config
        for key in list(self.row_values):  # a scripted change overrides a swept value
            current = old.hyper.get(key, getattr(old, key, None))
            changed = new.hyper.get(key, getattr(new, key, None))
            if current != changed:
                self.row_values.pop(key)
                self.rows.pop(key, None)
        self.flush()  # the steps so far belong to the old settings
        super().apply_config(new)
        self.lab.settings_changed(old, new)

    def step(self) -> None:
        if self.finished:
            return
        lr = self.compute_lr()
        self.effective_lr = lr
        self.optimizer.param_groups[0]["lr"] = lr
        grad = self._stochastic_grad()
        if self._lean:
            self._before_update.copy_(self.P)
        if not self.all_alive:
            grad = torch.where(self._alive, grad, self._frozen_grad)
            frozen = self._before_update if self._lean else self.P.clone()
        self.optimizer.step(self.P, grad, lr)
        if not self.all_alive:  # diverged trajectories stay where they stopped
            torch.where(self._alive, self.P, frozen, out=self.P)
        self.t += 1
        self._evaluate()
        self._check_divergence()
        if self.schedule.stateful:
            alive = self.alive
            self.schedule.observe(float(self.L[: self.n][alive].mean()) if alive.any() else math.inf,
                                  self.config.hyper["lr"])
        self._record()

    def _check_divergence(self, initial: bool = False) -> None:
        n = self.n
        # Fast path (every step): a non-finite loss anywhere makes the sum non-finite.
        if n == 1:
            x, y = self._P_np[:, 0].tolist()
            if math.isfinite(float(self._L_np[0])) and max(abs(x), abs(y)) < self.surface.bound:
                return
        loss, pos = self.L[:n], self.P[:, :n]
        if n > 1:
            low, high = torch.aminmax(pos)
            if math.isfinite(float(loss.sum())) and max(-float(low), float(high)) < self.surface.bound:
                return
        ok = torch.isfinite(loss) & (pos.abs().amax(dim=0) < self.surface.bound)
        newly = self.alive & ~ok
        if not bool(newly.any()):
            return
        idx = newly.nonzero().flatten()
        if initial:
            self.P[:, idx] = self.P[:, idx].nan_to_num(0.0, 0.0, 0.0)
        else:
            self.P[:, idx] = self._last_positions()[:, idx]
        self._alive[idx] = False
        self.all_alive = False
        self.diverged_at[idx.numpy()] = self.t
        self._evaluate()
        self.L.copy_(torch.where(torch.isfinite(self.L), self.L, torch.full_like(self.L, math.inf)))

    def _last_positions(self) -> torch.Tensor:
        if self._lean:
            return self._before_update
        if self._staged:
            return self._stage_pos[self._staged - 1]
        return self._last_flushed_pos

    def _record(self) -> None:
        i = self._staged
        if i == 0:  # a block's kind is settled at its first row; what changes it flushes first
            self._lean = self._before_update is not None and self.sink is None and not self.lab.wants_positions
        if self.width == 1:  # one point: numpy copies of three pairs beat torch op dispatch
            self._stage_np[0][i] = self._P_np
            self._stage_np[1][i] = self._L_np
            self._stage_np[2][i] = self._G_np
        elif self._lean:
            self._stage_loss[i].copy_(self.L)
        else:
            self._stage_pos[i].copy_(self.P)
            self._stage_loss[i].copy_(self.L)
            if self._history_stride == 1:  # a strided history keeps only the latest row: G is at hand
                self._stage_grad[i].copy_(self.G)
        lr = self.effective_lr
        if isinstance(lr, Rows):
            self._stage_lr[i] = math.nan
            self._stage_lr_rows.append(lr)
        else:
            self._stage_lr[i] = lr
        self._staged += 1
        if self._staged == self._stage_size:
            self.flush()

    def flush(self) -> None:
        """Move staged steps into the numpy history (called before any snapshot)."""
        k = self._staged
        if not k:
            return
        n = self.n
        first = self.t - k + 1  # staged rows are the consecutive steps ending at t
        steps = np.arange(first, first + k)
        # (k, N, 2), a view; a lean block has only its latest row, the lane's position now
        pos = (self.P[:, :n].T.unsqueeze(0) if self._lean else self._stage_pos[:k, :, :n].transpose(1, 2)).numpy()
        loss = self._stage_loss[:k, :n].numpy()
        lrs = self._stage_lr[:k].copy()
        self.count_lrs(lrs[steps >= 1])  # the start row (step 0) is no update
        self.measures.add(steps, loss)
        self.lab.block(steps, pos, loss, lrs)
        if self.history is not None:
            stride = self._history_stride
            keep = slice(None) if stride == 1 else np.array([k - 1])  # the latest staged row: now
            kept_pos = pos[-1:] if self._lean else pos[keep]
            grads = self._stage_grad[:k, :, :n] if stride == 1 else self.G[:, :n].unsqueeze(0)
            gnorm = torch.addcmul(grads[:, 0] * grads[:, 0], grads[:, 1], grads[:, 1]).numpy()
            np.sqrt(gnorm, out=gnorm)  # correctly rounded, as vector_norm
            self.history.append_block(steps[keep], pos=kept_pos, loss=loss[keep], gnorm=gnorm, lr=lrs[keep])
        if self.sink is not None:
            assert not self._lean, "a sink reads every step's positions: attach it after a flush"
            self.sink.block(self, steps, pos, loss, lrs)
        if not self._lean:
            self._last_flushed_pos = self._stage_pos[k - 1].clone()
        self._stage_lr_rows = []
        self._staged = 0

    # --- read-outs -----------------------------------------------------------------------
    @property
    def alive(self) -> torch.Tensor:
        """(N,) which trajectories are still stepping."""
        return self._alive[: self.n]

    @property
    def positions(self) -> np.ndarray:
        return self.P[:, : self.n].T.numpy().copy()

    @property
    def loss(self) -> np.ndarray:
        return self.L[: self.n].numpy().copy()

    @property
    def grad_norm(self) -> np.ndarray:
        g = self.G[:, : self.n]
        out = torch.addcmul(g[0] * g[0], g[1], g[1]).numpy()
        return np.sqrt(out, out=out)

    def status(self) -> str:
        if self.finished:
            return f"diverged at {int(self.diverged_at.max())}"
        alive = self.alive.numpy()
        loss = self.L[: self.n].numpy()[alive]
        mv = self.surface.min_value
        converged = (mv is not None and bool(np.all(loss - mv < CONVERGED_TOL))) or bool(
            np.all(self.grad_norm[alive] < STATIONARY_GRAD)
        )
        if converged:
            text = "converged"
        else:  # what the first live trajectory is doing, from the exact tail of its history
            self.flush()
            k = int(np.argmax(alive))
            text = trajectory_status(self.t, self.history.column("pos")[-WINDOW:, k],
                                     self.history.column("loss")[-WINDOW:, k], float(self.grad_norm[k]), mv)
        if not self.all_alive:
            text += f" ({int((~alive).sum())} diverged)"
        return text

    @property
    def temperature(self) -> float | None:
        lab = getattr(self, "lab", None)
        return lab.temperature() if lab is not None else None

    def hessian_here(self) -> HessianInfo | None:
        """The Hessian read-out at the first live trajectory's point (kept while it stands still)."""
        alive = self.alive.numpy()
        if not alive.any():
            return None
        point = tuple(self.P[:, int(np.argmax(alive))].tolist())
        if self._hessian_cache is not None and self._hessian_cache[0] == point:
            return self._hessian_cache[1]
        try:
            info = hessian_info(self.surface, point)
        except RuntimeError:
            info = None
        self._hessian_cache = (point, info)
        return info

    def next_update(self) -> Anatomy:
        """What the next step will do at the first trajectory's point with the full gradient,
        taken for real on a copy of the optimizer (its state and its random stream copied)."""
        generator = torch.Generator().set_state(self.optimizer_generator.get_state())
        twin = self.optimizer.twin(lambda: self._draw_normal(generator))
        lr = self.compute_lr()
        point = self.P.clone()
        twin.step(point, self.G.clone(), lr)
        delta = (point[:, 0] - self.P[:, 0]).tolist()
        return anatomy_of(delta, self.G[:, 0].tolist(), float(lr))

    def figures(self) -> list[dict[str, Any]]:
        """Per trajectory: final_loss, best_loss, steps_to_min, diverged_at (and stationary_loss
        with a burn-in), from every step since the lane (re)started."""
        return self.measures.figures(self.L[: self.n].numpy(), self.diverged_at)


def _smaller(batch: Any, n: int) -> bool:
    if isinstance(batch, Rows):
        return any(b < n for b in batch.uniques)
    return batch < n


class Measures:
    """What a replay summary and a sweep report per trajectory, accumulated over every step as it
    is staged: the best loss, the first step within CONVERGED_TOL of the known minimum, and with a
    burn-in the mean loss after it (the stationary loss)."""

    def __init__(self, n: int, min_value: float | None, burn_in: int | None = None):
        self.min_value = min_value
        self.burn_in = burn_in
        self.best = np.full(n, np.nan)
        self.reached = np.full(n, -1, dtype=np.int64)
        self.tail_sum = np.zeros(n)
        self.tail_count = 0

    def add(self, steps: np.ndarray, loss: np.ndarray) -> None:
        self.best = np.fmin(self.best, np.fmin.reduce(loss, axis=0))  # NaN only where every loss was NaN
        if self.min_value is not None and (self.reached < 0).any():
            with np.errstate(invalid="ignore"):
                hit = loss - self.min_value < CONVERGED_TOL
            new = np.flatnonzero(hit.any(axis=0) & (self.reached < 0))  # argmax only where it is needed
            if len(new):
                self.reached[new] = steps[np.argmax(hit[:, new], axis=0)]
        if self.burn_in is not None:
            tail = steps > self.burn_in
            if tail.any():
                self.tail_sum += loss[tail].sum(axis=0)
                self.tail_count += int(tail.sum())

    def figures(self, final: np.ndarray, diverged_at: np.ndarray) -> list[dict[str, Any]]:
        out = []
        for k in range(len(final)):
            entry = {
                "final_loss": finite_or_none(float(final[k])),
                "best_loss": finite_or_none(float(self.best[k])),
                "steps_to_min": None if self.reached[k] < 0 else int(self.reached[k]),
                "diverged_at": None if diverged_at[k] < 0 else int(diverged_at[k]),
            }
            if self.burn_in is not None:
                entry["stationary_loss"] = (finite_or_none(float(self.tail_sum[k] / self.tail_count))
                                            if self.tail_count else None)
            out.append(entry)
        return out


@dataclass(frozen=True)
class LaneSettings(Query):
    """A lane's table with the problem's and the seed: what a sweep of that lane (the app's phase
    diagram) replays. Answered with {"problem": ..., "lane": ..., "seed": ...}."""

    lane: str


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
                 history_capacity: int | None = 4096, sink=None):
        self.problem = problem
        self.seed = seed
        self.history_capacity = history_capacity
        self.sink = sink  # receives every staged block (streaming replays): see engine/replay.py
        self.lanes: list[SurfaceLane] = []
        self.step_count = 0
        for cfg in lanes:
            self.add_lane(cfg)

    @property
    def surface(self) -> Surface:
        return self.problem.surface

    def add_lane(self, config: LaneConfig, **options: Any) -> SurfaceLane:
        """Add a lane; ``options`` (rows, cells, seed_name, burn_in) make it a swept lane."""
        self._check_new_name(config)
        lane = SurfaceLane(config, self.surface, self.seed, self.history_capacity, sink=self.sink, **options)
        self.lanes.append(lane)
        return lane

    def remove_lane(self, name: str) -> None:
        lane = self.lane(name)
        self.lanes.remove(lane)
        if self.sink is not None:
            self.sink.removed(lane)

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

    def answer(self, query: Query) -> Any:
        if isinstance(query, LaneSettings):
            try:
                lane = self.lane(query.lane)
            except KeyError as exc:
                raise CommandError(exc.args[0]) from None
            return {"problem": self.problem.to_table(), "lane": lane.config.to_table(), "seed": self.seed}
        return super().answer(query)

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
                 costly: bool = True, live: bool = False) -> Snapshot:
        """Every lane's history and point; the Hessian read-out (a double backward) only for the
        ``selected`` lane when one is named, and only when ``costly``."""
        lanes = []
        for lane in self.lanes:
            lane.flush()
            cfg = lane.config
            hist = lane.history.snapshot(max_rows)
            alive = lane.alive.numpy().copy()
            info = anatomy = None
            warnings: list[str] = []
            if costly and alive.any():
                info = lane.hessian_here()  # every lane: its stability warning needs it
                warning = lane.lab.stability_warning(info.eigenvalues[1] if info is not None else None)
                if warning:
                    warnings.append(warning)
                if selected is not None and selected != cfg.name:
                    info = None  # only the selected lane's Hessian is shown
                if selected == cfg.name and lane.n <= ANATOMY_MAX_STARTS and bool(alive[0]) and not lane.row_values:
                    anatomy = lane.next_update()
            diverged = tuple(None if d < 0 else int(d) for d in lane.diverged_at)
            first = min((d for d in diverged if d is not None), default=None)
            curve = mean_finite_loss(hist["loss"])
            lab = lane.lab
            swa = lab.swa_average()
            stationary = lab.stationary_readout(with_density=costly and (selected is None or selected == cfg.name))
            if stationary is not None and stationary.warning:
                warnings.append(stationary.warning)
            swa_curve = np.array(lab.swa_curve, dtype=np.float64).reshape(-1, 2)
            lanes.append(SurfaceLaneSnapshot(
                **lane.readout(), status=lane.status(), diverged_at=first, steps=hist["step"],
                loss_curve=curve, lrs=hist["lr"], positions=hist["pos"],
                losses=hist["loss"], current=lane.positions, loss=lane.loss, grad_norm=lane.grad_norm,
                alive=alive, diverged_each=diverged, hessian=info, anatomy=anatomy,
                gibbs_temperature=lab.gibbs_temperature(), range_test=lab.range_test_reading(),
                swa_steps=swa_curve[:, 0] if len(swa_curve) else None,
                swa_loss=swa_curve[:, 1] if len(swa_curve) else None, warnings=tuple(warnings),
                stationary=stationary, swa_points=swa,
                flow_path=np.array(lab.flow_path) if lab.flow_path else None,
            ))
        return Snapshot(version=version, clock=clock, step=self.step_count, kind=self.problem.kind, label=self.problem.label, table=self.problem.to_table(),
                        lanes=tuple(lanes), payload=SurfacePayload(self.surface))

    def trajectories(self) -> dict[str, dict[str, np.ndarray]]:
        """Per lane: 'step' (T,), 'pos' (T, N, 2), 'loss' (T, N), 'gnorm' (T, N), 'lr' (T,)."""
        self.flush()
        return {lane.config.name: lane.history.snapshot() for lane in self.lanes}

    # --- headless output -----------------------------------------------------------------
    def stream_outputs(self, out: Path, every: int = 1) -> list:
        """Stream trajectories.csv into ``out`` from now on (engine/replay.py); every lane's rows
        since its last reset, every ``every``-th step and its last."""
        from sgdtui.engine.replay import CsvStream

        stream = CsvStream(out, "trajectories.csv", CSV_COLUMNS, every)
        self.flush()  # what the lanes recorded before the stream began goes in first
        self.sink = _TrajectoryRows(stream)
        for lane in self.lanes:
            lane.sink = self.sink
            stream.restart(lane)
            if lane.history is not None and len(lane.history):
                hist = lane.history.snapshot()
                self.sink.block(lane, hist["step"], hist["pos"], hist["loss"], hist["lr"])
        return [stream]

    def finish_outputs(self, streams: list) -> list[str]:
        self.flush()
        (stream,) = streams
        stream.finish([(lane, list(range(lane.n))) for lane in self.lanes])
        return ["trajectories.csv", *self.write_density(stream.path.parent)]

    def write_density(self, out: Path) -> list[str]:
        """density.csv (lane, x, y, count, gibbs) for lanes with stationary statistics: each
        histogram cell's centre, its sample count and the Gibbs density's mass there."""
        lanes = [lane for lane in self.lanes if lane.lab.stationary is not None]
        if not lanes:
            return []
        with open_output(Path(out) / "density.csv", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(("lane", "x", "y", "count", "gibbs"))
            for lane in lanes:
                for x, y, count, gibbs in lane.lab.stationary.density_rows():
                    writer.writerow((lane.config.name, repr(x), repr(y), count, repr(gibbs)))
        return ["density.csv"]

    def write_outputs(self, out: Path) -> list[str]:
        """trajectories.csv: one row per lane, start point and step; step 0 is the start point.
        Floats are written with repr, so the same script gives byte-identical files."""
        with open_output(Path(out) / "trajectories.csv", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for name, hist in self.trajectories().items():
                steps, pos, loss, lr = hist["step"], hist["pos"], hist["loss"], hist["lr"]
                for start in range(pos.shape[1]):
                    xs, ys, ls = pos[:, start, 0].tolist(), pos[:, start, 1].tolist(), loss[:, start].tolist()
                    for k, step in enumerate(steps.tolist()):
                        writer.writerow((name, start, step, repr(xs[k]), repr(ys[k]), repr(ls[k]), repr(float(lr[k]))))
        return ["trajectories.csv", *self.write_density(Path(out))]

    def summary(self) -> dict[str, Any]:
        lanes = []
        for lane in self.lanes:
            lane.flush()
            per_start = lane.figures()
            entry = {"lane": lane.config.name, "optimizer": lane.config.optimizer,
                     **combine_figures(per_start, lane.L[: lane.n].numpy()), "wall_time": lane.wall_time,
                     **lane.lab.summary()}
            reading = lane.lab.range_test_reading()
            if reading is not None:
                entry["suggested_lr"] = reading.suggested_lr
                entry["suggestions"] = reading.suggestions
            if lane.n > 1:
                entry["per_start"] = per_start
            lanes.append(entry)
        return {"min_value": self.surface.min_value, "lanes": lanes}


class _TrajectoryRows:
    """A surface race's sink for streamed replays: each staged block as trajectories.csv rows."""

    def __init__(self, stream):
        self.stream = stream

    def restart(self, lane: SurfaceLane) -> None:
        self.stream.restart(lane)

    def removed(self, lane: SurfaceLane) -> None:
        self.stream.removed(lane)

    def block(self, lane: SurfaceLane, steps: np.ndarray, pos: np.ndarray, loss: np.ndarray, lrs: np.ndarray) -> None:
        stream, name = self.stream, lane.config.name
        step_list = steps.tolist()
        keep = [k for k, step in enumerate(step_list) if stream.keep(step)]
        lr_text = [repr(v) for v in lrs.tolist()]
        last = len(step_list) - 1
        for start in range(pos.shape[1]):
            xs, ys, ls = pos[:, start, 0].tolist(), pos[:, start, 1].tolist(), loss[:, start].tolist()
            stream.rows(lane, start, [(name, start, step_list[k], repr(xs[k]), repr(ys[k]), repr(ls[k]), lr_text[k])
                                      for k in keep], step_list[keep[-1]] if keep else None)
            if stream.every != 1:
                stream.last(lane, start, step_list[last], (name, start, step_list[last], repr(xs[last]), repr(ys[last]),
                                                          repr(ls[last]), lr_text[last]))


def combine_figures(per_start: list[dict[str, Any]], final: np.ndarray) -> dict[str, Any]:
    """A lane's (or a sweep cell's) figures over its start points: the mean final loss, the best
    loss of any, when the last one got to the minimum, the first divergence."""
    if len(per_start) == 1:
        return dict(per_start[0])
    reached = [p["steps_to_min"] for p in per_start]
    diverged = [p["diverged_at"] for p in per_start if p["diverged_at"] is not None]
    out = {
        "final_loss": finite_or_none(float(np.mean(final))),
        "best_loss": min((p["best_loss"] for p in per_start if p["best_loss"] is not None), default=None),
        "steps_to_min": None if None in reached else max(reached),
        "diverged_at": min(diverged) if diverged else None,
    }
    if "stationary_loss" in per_start[0]:
        values = [p["stationary_loss"] for p in per_start]
        out["stationary_loss"] = None if None in values else float(np.mean(values))
    return out


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
    stationary: StationaryReadout | None = None  # with burn_in: the stationary statistics
    swa_points: np.ndarray | None = None  # (N, 2) the averaged iterate of each trajectory
    flow_path: np.ndarray | None = None  # (M, 2) the first trajectory's gradient-flow reference


@dataclass(frozen=True)
class SurfacePayload:
    """What a surface problem shows besides its lanes: the surface itself (for level lines)."""

    surface: Surface
