"""Stationary statistics of a cloud of trajectories: what SGD at a finite learning rate settles
into, measured and compared with the Gibbs density exp(-L/T_G)/Z.

After a burn-in the cloud's positions are binned into a 2-D histogram over a fixed box and its
losses averaged over time and particles. The standard error of that mean comes from batch means
(the per-step cloud averages cut into BATCHES consecutive blocks), which accounts for the
correlation between steps; the same figure gives the integrated autocorrelation time and so the
effective number of independent samples.

The total-variation distance to the Gibbs density is computed on a grid coarser than the
histogram's: sampling noise alone makes a histogram of n_eff samples over k cells differ from
its density by about 1/2 sum_i sqrt(2 p_i / (pi n_eff)) in TV (the mean absolute deviation of a
binomial count), so the finest grid whose expected noise is under TV_NOISE_TARGET is used and
that noise is reported next to the distance.

Basins: every cell of the box flows downhill to its lowest neighbour until it reaches a local
minimum of the grid; a cell belongs to the known minimum its flow ends nearest to. The barrier
out of a basin is the lowest level at which the sublevel set joins it to another basin (a
union-find over cells sorted by loss), minus the basin's lowest loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

FINE_BINS = 64  # histogram cells per side of the box
BATCHES = 32  # batch means for the standard error
TV_NOISE_TARGET = 0.02  # the coarsening keeps the expected TV from sampling alone below this
COARSE_FACTORS = (1, 2, 4, 8, 16)  # FINE_BINS / factor cells per side
GIBBS_MASS_KEPT = 1.0 - 1e-6  # the box holds at least this much of the Gibbs density
BOX_MARGIN = 0.25  # the cloud's extent at burn-in, widened by this fraction on each side
# Warn when the barrier out of every basin the cloud sits in is this many T_G high: the
# Boltzmann factor exp(-5) ~ 0.007 makes crossings too rare for a run to mix.
BARRIER_WARN = 5.0
BASIN_SNAP = 0.05  # a grid minimum within this fraction of the box's diagonal of a known minimum is it

LossOnGrid = Callable[[np.ndarray], np.ndarray]  # (M, 2) points -> (M,) full losses


@dataclass(frozen=True)
class Box:
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    def edges(self, bins: int = FINE_BINS) -> tuple[np.ndarray, np.ndarray]:
        return np.linspace(*self.xlim, bins + 1), np.linspace(*self.ylim, bins + 1)

    def centres(self, bins: int = FINE_BINS) -> tuple[np.ndarray, np.ndarray]:
        ex, ey = self.edges(bins)
        return 0.5 * (ex[1:] + ex[:-1]), 0.5 * (ey[1:] + ey[:-1])

    def union(self, other: "Box") -> "Box":
        return Box((min(self.xlim[0], other.xlim[0]), max(self.xlim[1], other.xlim[1])),
                   (min(self.ylim[0], other.ylim[0]), max(self.ylim[1], other.ylim[1])))

    def widened(self, fraction: float) -> "Box":
        dx = max(self.xlim[1] - self.xlim[0], 1e-9) * fraction
        dy = max(self.ylim[1] - self.ylim[0], 1e-9) * fraction
        return Box((self.xlim[0] - dx, self.xlim[1] + dx), (self.ylim[0] - dy, self.ylim[1] + dy))


def points_box(points: np.ndarray) -> Box | None:
    finite = points[np.isfinite(points).all(axis=1)]
    if not len(finite):
        return None
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    # A cloud collapsed to a point still gets a box of some size.
    span = np.maximum(hi - lo, 1e-6 * np.maximum(1.0, np.abs(lo)))
    mid = 0.5 * (lo + hi)
    lo, hi = mid - span / 2, mid + span / 2
    return Box((float(lo[0]), float(hi[0])), (float(lo[1]), float(hi[1]))).widened(BOX_MARGIN)


def cell_losses(loss: LossOnGrid, box: Box, bins: int = FINE_BINS) -> np.ndarray:
    """The loss averaged over each cell (bins, bins) indexed [ix, iy], from a 2x2 sub-grid per
    cell, so a coarse cell's Gibbs weight is not its centre's."""
    ex, ey = box.edges(bins)
    wx, wy = (ex[1] - ex[0]) / 4, (ey[1] - ey[0]) / 4
    cx, cy = box.centres(bins)
    sx = np.concatenate([cx - wx, cx + wx])
    sy = np.concatenate([cy - wy, cy + wy])
    gx, gy = np.meshgrid(sx, sy, indexing="ij")
    values = np.asarray(loss(np.stack([gx.ravel(), gy.ravel()], axis=1)), dtype=np.float64).reshape(2 * bins, 2 * bins)
    values = np.where(np.isfinite(values), values, np.inf)
    quarters = [values[i * bins:(i + 1) * bins, j * bins:(j + 1) * bins] for i in (0, 1) for j in (0, 1)]
    return np.mean(quarters, axis=0)


def cell_point_losses(loss: LossOnGrid, box: Box, bins: int = FINE_BINS) -> np.ndarray:
    """The loss at each cell's centre (bins, bins), for basins and barriers."""
    cx, cy = box.centres(bins)
    gx, gy = np.meshgrid(cx, cy, indexing="ij")
    values = np.asarray(loss(np.stack([gx.ravel(), gy.ravel()], axis=1)), dtype=np.float64).reshape(bins, bins)
    return np.where(np.isfinite(values), values, np.inf)


def gibbs_weights(cell_loss: np.ndarray, t_gibbs: float, cell_area: float) -> np.ndarray:
    """exp(-L/T_G) integrated over each cell, normalized over the box (log-sum-exp for T_G small)."""
    log_w = -cell_loss / t_gibbs
    peak = np.max(log_w)
    if not np.isfinite(peak):
        return np.full(cell_loss.shape, 1.0 / cell_loss.size)
    w = np.exp(log_w - peak) * cell_area
    return w / w.sum()


def gibbs_box(loss: LossOnGrid, view: Box, t_gibbs: float, refinements: int = 3) -> Box:
    """The smallest grid-aligned box of ``view`` holding GIBBS_MASS_KEPT of the Gibbs density,
    refined a few times so a cold (narrow) density still spans many cells."""
    box = view
    for _ in range(refinements):
        weights = gibbs_weights(cell_point_losses(loss, box), t_gibbs, 1.0)
        order = np.sort(weights.ravel())[::-1]
        cut = order[min(np.searchsorted(np.cumsum(order), GIBBS_MASS_KEPT), order.size - 1)]
        ix, iy = np.nonzero(weights >= cut)
        ex, ey = box.edges()
        new = Box((float(ex[max(ix.min() - 1, 0)]), float(ex[min(ix.max() + 2, FINE_BINS)])),
                  (float(ey[max(iy.min() - 1, 0)]), float(ey[min(iy.max() + 2, FINE_BINS)])))
        if new == box:
            break
        box = new
    return box


def coarsen(grid: np.ndarray, factor: int) -> np.ndarray:
    n = grid.shape[0] // factor
    return grid.reshape(n, factor, n, factor).sum(axis=(1, 3))


def sampling_tv(probabilities: np.ndarray, n_eff: float) -> float:
    """The TV distance a histogram of n_eff independent samples is expected to show from its own
    density, from sampling alone: 1/2 sum_i E|p_hat_i - p_i| ~ 1/2 sum_i sqrt(2 p_i (1-p_i) / (pi n))."""
    if n_eff <= 0:
        return math.inf
    p = probabilities.ravel()
    return float(0.5 * np.sum(np.sqrt(2.0 * p * (1.0 - p) / (math.pi * n_eff))))


@dataclass(frozen=True)
class TVResult:
    distance: float
    cells: int  # per side of the grid it was computed on
    noise: float  # the distance sampling alone would give on that grid


def total_variation(counts: np.ndarray, outside: int, gibbs: np.ndarray, n_eff: float) -> TVResult:
    """TV distance between the histogram (plus the samples outside the box) and the Gibbs
    weights, on the finest coarsening whose sampling noise stays under TV_NOISE_TARGET."""
    total = counts.sum() + outside
    chosen = COARSE_FACTORS[-1]
    for factor in COARSE_FACTORS:
        if sampling_tv(coarsen(gibbs, factor), n_eff) <= TV_NOISE_TARGET:
            chosen = factor
            break
    measured = coarsen(counts, chosen) / total
    expected = coarsen(gibbs, chosen)
    distance = 0.5 * (float(np.abs(measured - expected).sum()) + outside / total)
    return TVResult(distance, FINE_BINS // chosen, sampling_tv(expected, n_eff))


# --- basins -------------------------------------------------------------------------------
def basin_labels(values: np.ndarray, box: Box, minima: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Each cell's basin: the index of the known minimum its steepest-descent flow on the grid
    ends at, or -1 where it ends at none of them (another local minimum, a region off to inf)."""
    n = values.shape[0]
    padded = np.pad(values, 1, constant_values=np.inf)
    best = np.arange(n * n).reshape(n, n)
    best_value = values.copy()
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            if di == dj == 0:
                continue
            neighbour = padded[1 + di:n + 1 + di, 1 + dj:n + 1 + dj]
            lower = neighbour < best_value
            best_value = np.where(lower, neighbour, best_value)
            target = (np.clip(ii + di, 0, n - 1) * n + np.clip(jj + dj, 0, n - 1))
            best = np.where(lower, target, best)
    pointer = best.ravel()
    for _ in range(int(math.ceil(math.log2(n * n))) + 1):  # pointer jumping to the sinks
        pointer = pointer[pointer]
    cx, cy = box.centres(n)
    diagonal = math.hypot(box.xlim[1] - box.xlim[0], box.ylim[1] - box.ylim[0])
    sink_label = {}
    for sink in np.unique(pointer):
        point = np.array([cx[sink // n], cy[sink % n]])
        label = -1
        if minima and np.isfinite(values.ravel()[sink]):
            distances = [math.hypot(*(point - np.asarray(m))) for m in minima]
            k = int(np.argmin(distances))
            cell = max(cx[1] - cx[0], cy[1] - cy[0]) * 1.5
            if distances[k] <= max(BASIN_SNAP * diagonal, cell):
                label = k
        sink_label[int(sink)] = label
    return np.vectorize(sink_label.get)(pointer).reshape(n, n)


def basin_barriers(values: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """saddle[a, b]: the lowest loss level at which basins a and b join in the sublevel set on
    the grid (4-neighbour), inf where they never do inside the box."""
    n = values.shape[0]
    flat = values.ravel()
    order = np.argsort(flat, kind="stable")
    parent = np.full(n * n, -1)
    members: dict[int, set[int]] = {}
    saddle = np.full((count, count), np.inf)

    def find(a: int) -> int:
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    lab = labels.ravel()
    for cell in order:
        if not np.isfinite(flat[cell]):
            break
        parent[cell] = cell
        members[cell] = {int(lab[cell])} if lab[cell] >= 0 else set()
        i, j = divmod(int(cell), n)
        for ni, nj in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if 0 <= ni < n and 0 <= nj < n and parent[ni * n + nj] >= 0:
                a, b = find(cell), find(ni * n + nj)
                if a == b:
                    continue
                for p in members[a]:
                    for q in members[b]:
                        if p != q and saddle[p, q] == np.inf:
                            saddle[p, q] = saddle[q, p] = flat[cell]
                parent[b] = a
                members[a] |= members.pop(b)
    return saddle


@dataclass(frozen=True)
class BasinReport:
    measured: tuple[float, ...]  # fraction of samples in each known minimum's basin
    gibbs: tuple[float, ...]  # the Gibbs mass of each basin
    occupied: tuple[int, ...]  # basins the cloud sat in at burn-in
    barrier: float | None  # the lowest barrier out of the occupied basins (loss units)


# --- the accumulator ------------------------------------------------------------------------
class StationaryStats:
    """Time-and-particle averages of a cloud after ``burn_in`` steps.

    ``add(steps, positions, losses, t_gibbs)`` takes a block of consecutive steps: positions
    (S, n, 2), losses (S, n); trajectories whose loss is not finite are left out. The box is
    fixed by the first block after the burn-in: the cloud's extent then, joined with the part of
    ``view`` holding the Gibbs density (when T_G is known).
    """

    def __init__(self, burn_in: int, loss: LossOnGrid, view: Box,
                 minima: tuple[tuple[float, float], ...] = ()):
        self.burn_in = int(burn_in)
        self.loss = loss
        self.view = view
        self.minima = tuple(minima)
        self.box: Box | None = None
        self.counts = np.zeros((FINE_BINS, FINE_BINS))
        self.outside = 0
        self.step_means: list[float] = []  # the cloud's mean loss at each counted step
        self.loss_sum = 0.0
        self.samples = 0
        self.t_gibbs_sum = 0.0
        self.t_gibbs_steps = 0  # steps at which T_G was defined
        self._occupied: tuple[int, ...] = ()
        self._first_positions: np.ndarray | None = None

    @property
    def steps(self) -> int:
        return len(self.step_means)

    def add(self, steps: np.ndarray, positions: np.ndarray, losses: np.ndarray,
            t_gibbs: np.ndarray | float | None) -> None:
        keep = np.asarray(steps) > self.burn_in
        if not keep.any():
            return
        positions, losses = positions[keep], losses[keep]
        if t_gibbs is not None:
            t = np.broadcast_to(np.asarray(t_gibbs, dtype=np.float64), keep.shape)[keep]
            good = np.isfinite(t) & (t > 0)
            self.t_gibbs_sum += float(t[good].sum())
            self.t_gibbs_steps += int(good.sum())
        valid = np.isfinite(losses) & np.isfinite(positions).all(axis=2)
        if self.box is None:
            first = positions[0][valid[0]]
            if not len(first):
                return
            self._first_positions = first
            self.box = self._choose_box(first)
        counted = valid.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(valid, losses, 0.0).sum(axis=1) / counted
        self.step_means.extend(means[counted > 0].tolist())
        self.loss_sum += float(np.where(valid, losses, 0.0).sum())
        self.samples += int(counted.sum())
        points = positions[valid]
        ex, ey = self.box.edges()
        hist, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=(ex, ey))
        self.counts += hist
        self.outside += int(len(points) - hist.sum())

    def _choose_box(self, first: np.ndarray) -> Box:
        box = points_box(first)
        t = self.t_gibbs
        if t is not None:
            box = box.union(gibbs_box(self.loss, self.view, t))
        return box

    # --- figures ---------------------------------------------------------------------------
    @property
    def t_gibbs(self) -> float | None:
        return self.t_gibbs_sum / self.t_gibbs_steps if self.t_gibbs_steps else None

    @property
    def mean_loss(self) -> float | None:
        return self.loss_sum / self.samples if self.samples else None

    def batch_means(self) -> tuple[float | None, float | None]:
        """(standard error of the mean loss, integrated autocorrelation time in steps)."""
        series = np.asarray(self.step_means)
        if len(series) < 2 * BATCHES:
            return None, None
        size = len(series) // BATCHES
        blocks = series[: size * BATCHES].reshape(BATCHES, size).mean(axis=1)
        se = float(blocks.std(ddof=1) / math.sqrt(BATCHES))
        var = float(series.var(ddof=1))
        tau = max(1.0, se * se * len(series) / var) if var > 0 else 1.0
        return se, tau

    @property
    def particles(self) -> float:
        return self.samples / self.steps if self.steps else 0.0

    def effective_samples(self) -> float:
        _, tau = self.batch_means()
        return self.samples / tau if tau else 0.0

    def gibbs(self) -> np.ndarray | None:
        """The Gibbs weights of the box's cells at the run's mean T_G (None when undefined)."""
        t = self.t_gibbs
        if t is None or self.box is None:
            return None
        ex, ey = self.box.edges()
        return gibbs_weights(cell_losses(self.loss, self.box), t, float((ex[1] - ex[0]) * (ey[1] - ey[0])))

    def predicted_mean_loss(self) -> float | None:
        gibbs = self.gibbs()
        if gibbs is None:
            return None
        values = cell_losses(self.loss, self.box)
        finite = np.isfinite(values)
        return float(np.sum(gibbs[finite] * values[finite]))

    def tv(self) -> TVResult | None:
        gibbs = self.gibbs()
        n_eff = self.effective_samples()
        if gibbs is None or n_eff <= 0:
            return None
        return total_variation(self.counts, self.outside, gibbs, n_eff)

    def basins(self) -> BasinReport | None:
        if not self.minima or self.box is None or not self.samples:
            return None
        values = cell_point_losses(self.loss, self.box)
        labels = basin_labels(values, self.box, self.minima)
        k = len(self.minima)
        total = self.counts.sum() + self.outside
        measured = tuple(float(self.counts[labels == b].sum() / total) for b in range(k))
        gibbs = self.gibbs()
        gibbs_mass = tuple(float(gibbs[labels == b].sum()) for b in range(k)) if gibbs is not None else ()
        ex, ey = self.box.edges()
        ix = np.clip(np.searchsorted(ex, self._first_positions[:, 0]) - 1, 0, FINE_BINS - 1)
        iy = np.clip(np.searchsorted(ey, self._first_positions[:, 1]) - 1, 0, FINE_BINS - 1)
        occupied = tuple(sorted({int(b) for b in labels[ix, iy] if b >= 0}))
        barrier = None
        if occupied and k > 1:
            saddle = basin_barriers(values, labels, k)
            floor = {b: float(values[labels == b].min()) for b in occupied}
            heights = [saddle[a, b] - floor[a] for a in occupied for b in range(k) if b != a]
            finite = [h for h in heights if np.isfinite(h)]
            barrier = min(finite) if finite else None
        return BasinReport(measured, gibbs_mass, occupied, barrier)

    def barrier_warning(self, report: BasinReport | None = None) -> str | None:
        """A one-line warning when T_G is far below the barrier out of the occupied basins."""
        report = report if report is not None else self.basins()
        t = self.t_gibbs
        if report is None or report.barrier is None or t is None or report.barrier <= BARRIER_WARN * t:
            return None
        return (f"T_G = {t:.3g} is {report.barrier / t:.0f}x below the barrier ({report.barrier:.3g}) out of the "
                f"basins the cloud sits in: it cannot mix in this run")

    def density_rows(self) -> list[tuple[float, float, int, float]]:
        """(x, y, count, gibbs) per fine cell: density.csv. gibbs is nan where T_G is undefined."""
        if self.box is None:
            return []
        cx, cy = self.box.centres()
        gibbs = self.gibbs()
        rows = []
        for i in range(FINE_BINS):
            for j in range(FINE_BINS):
                rows.append((float(cx[i]), float(cy[j]), int(self.counts[i, j]),
                             float(gibbs[i, j]) if gibbs is not None else math.nan))
        return rows

    def report(self) -> dict:
        """The summary.json ``stationary`` entry."""
        se, tau = self.batch_means()
        tv = self.tv()
        basins = self.basins()
        out = {
            "burn_in": self.burn_in,
            "steps": self.steps,
            "particles": round(self.particles, 3),
            "mean_loss": self.mean_loss,
            "mean_loss_se": se,
            "autocorrelation_steps": tau,
            "t_gibbs": self.t_gibbs,
            "predicted_mean_loss": self.predicted_mean_loss(),
            "tv_to_gibbs": float(tv.distance) if tv else None,
            "tv_grid": tv.cells if tv else None,
            "tv_sampling_noise": tv.noise if tv else None,
            "outside_box": self.outside / (self.samples or 1),
            "box": {"x": list(self.box.xlim), "y": list(self.box.ylim)} if self.box else None,
            "basin_masses": None,
        }
        if basins is not None:
            out["basin_masses"] = {"minima": [list(m) for m in self.minima], "measured": list(basins.measured),
                                   "gibbs": list(basins.gibbs) or None}
            out["barrier"] = None if basins.barrier is None else float(basins.barrier)
            out["warning"] = self.barrier_warning(basins)
        return out
