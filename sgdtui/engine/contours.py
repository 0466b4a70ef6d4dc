"""Level lines of a 2D loss surface, traced with contourpy.

Pure numpy/torch: no Textual import. The UI turns the returned segments into
plotted points (and caches that); this module only does the geometry.

The surface is evaluated on a ``resolution x resolution`` grid in one batched
call ``loss_fn(w[N, 2]) -> [N]`` (float64). Levels are chosen from the grid's
finite values, either quantile-spaced (every band holds about the same share
of the view, so steep and flat surfaces both show structure) or log-spaced
above the minimum (fine rings near a minimum, coarse ones on the walls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import contourpy
import numpy as np
import torch

LossFn = Callable[[torch.Tensor], torch.Tensor]


class ContourError(ValueError):
    """Bad input to the level-line computation (limits, resolution, loss function output)."""


@dataclass(frozen=True)
class LevelLine:
    """All pieces of one level set: ``segments`` are (k, 2) arrays of (x, y) vertices."""

    level: float
    segments: list[np.ndarray]


def _check_limits(name: str, limits: tuple[float, float]) -> tuple[float, float]:
    try:
        low, high = (float(limits[0]), float(limits[1]))
    except (TypeError, ValueError, IndexError) as error:
        raise ContourError(f"{name} must be a (low, high) pair of numbers, got {limits!r}") from error
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ContourError(f"{name} must be finite with low < high, got {limits!r}")
    return low, high


def grid_values(
    loss_fn: LossFn,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    resolution: int = 120,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Evaluate ``loss_fn`` on a regular grid in one batched call.

    Returns ``(xs, ys, values)`` with ``xs`` of shape (resolution,), ``ys`` of
    shape (resolution,) and ``values[i, j] = loss(xs[j], ys[i])`` (row = y), the
    layout contourpy and heat maps expect. Non-finite values are kept as they
    are; callers decide how to treat them.
    """
    x_low, x_high = _check_limits("xlim", xlim)
    y_low, y_high = _check_limits("ylim", ylim)
    if not isinstance(resolution, (int, np.integer)) or resolution < 2:
        raise ContourError(f"resolution must be an integer >= 2, got {resolution!r}")
    xs = np.linspace(x_low, x_high, int(resolution))
    ys = np.linspace(y_low, y_high, int(resolution))
    grid_x, grid_y = np.meshgrid(xs, ys)
    points = torch.from_numpy(np.stack([grid_x.ravel(), grid_y.ravel()], axis=1))
    with torch.no_grad():
        values = loss_fn(points)
    if not isinstance(values, torch.Tensor):
        raise ContourError(f"loss_fn must return a torch.Tensor, got {type(values).__name__}")
    values_np = values.detach().to(torch.float64).cpu().numpy()
    if values_np.shape != (points.shape[0],):
        raise ContourError(
            f"loss_fn must map w[N, 2] to a tensor of shape [N]; got shape {tuple(values_np.shape)} for N={points.shape[0]}"
        )
    return xs, ys, values_np.reshape(grid_x.shape)


def choose_levels(
    values: np.ndarray,
    n_levels: int = 12,
    *,
    log_levels: bool = False,
    min_value: float | None = None,
) -> np.ndarray:
    """Pick up to ``n_levels`` distinct, increasing level values from the finite ``values``.

    Quantile spacing puts the levels at evenly spaced quantiles (strictly
    inside (0, 1)) of the finite values. Log spacing puts them at
    ``floor + geomspace(gap_low, gap_high)`` where ``floor`` is ``min_value``
    (the surface's known minimum, when given) or the smallest finite value.
    Returns an empty array when the values hold no spread (a constant or
    all-non-finite grid).
    """
    if not isinstance(n_levels, (int, np.integer)) or n_levels < 1:
        raise ContourError(f"n_levels must be an integer >= 1, got {n_levels!r}")
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return np.empty(0)
    if not log_levels:
        quantiles = np.linspace(0.0, 1.0, int(n_levels) + 2)[1:-1]
        levels = np.quantile(finite, quantiles)
    else:
        floor = float(np.min(finite)) if min_value is None else float(min_value)
        gaps = finite - floor
        gaps = gaps[gaps > 0]
        if gaps.size == 0:
            return np.empty(0)
        # Robust ends: the tail of a steep wall should not squeeze every ring
        # into the last decade, nor one tiny gap stretch the first.
        gap_high = float(np.quantile(gaps, 0.95))
        gap_low = max(float(np.quantile(gaps, 0.01)), gap_high * 1e-6)
        if gap_low >= gap_high:
            levels = np.array([floor + gap_high])
        else:
            levels = floor + np.geomspace(gap_low, gap_high, int(n_levels))
    levels = np.unique(levels)
    low, high = float(np.min(finite)), float(np.max(finite))
    # A level outside the data range (or on its boundary) traces nothing useful.
    return levels[(levels > low) & (levels < high)]


def level_lines(
    loss_fn: LossFn,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    *,
    resolution: int = 120,
    n_levels: int = 12,
    log_levels: bool = False,
    min_value: float | None = None,
) -> list[LevelLine]:
    """Trace the level sets of ``loss_fn`` over the view ``xlim x ylim``.

    One batched evaluation on a ``resolution``-square grid; non-finite grid
    values are masked, so lines stop at them instead of being corrupted.
    Levels are quantile-spaced, or log-spaced above ``min_value`` (or the grid
    minimum) when ``log_levels``. Returns one ``LevelLine`` per level that has
    at least one segment, in increasing level order.
    """
    xs, ys, values = grid_values(loss_fn, xlim, ylim, resolution)
    return _trace(xs, ys, values, choose_levels(values, n_levels, log_levels=log_levels, min_value=min_value))


# A view whose level lines average more vertices than this many grid rows' worth is rugged
# (rastrigin, ackley: a line winds round every dimple): it gets few lines and the shading shows the rest.
BUSY_ROWS_PER_LINE = 4
FEW_LEVELS = 5


@dataclass(frozen=True)
class ContourMap:
    """What a contour pane draws of a surface over one view: the grid of values (for shading),
    the band edges that colour it, and the level lines traced at some of those edges."""

    xs: np.ndarray  # (nx,)
    ys: np.ndarray  # (ny,)
    values: np.ndarray  # (ny, nx), row = y
    bands: np.ndarray  # increasing edges between shading bands (values below bands[0] are band 0)
    lines: list[LevelLine]

    def band_index(self, values: np.ndarray) -> np.ndarray:
        """The shading band of each value (-1 where the value is not finite)."""
        values = np.asarray(values, dtype=np.float64)
        index = np.searchsorted(self.bands, values, side="right")
        return np.where(np.isfinite(values), index, -1)


def contour_map(
    loss_fn: LossFn,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    *,
    resolution: int = 120,
    n_levels: int = 12,
    n_bands: int = 10,
    log_levels: bool = False,
    min_value: float | None = None,
) -> ContourMap:
    """One batched evaluation of ``loss_fn`` over the view: shading bands (quantile or log spaced,
    like the lines) and level lines, fewer of them where the surface is rugged."""
    xs, ys, values = grid_values(loss_fn, xlim, ylim, resolution)
    bands = choose_levels(values, max(n_bands - 1, 1), log_levels=log_levels, min_value=min_value)
    lines = _trace(xs, ys, values, choose_levels(values, n_levels, log_levels=log_levels, min_value=min_value))
    if lines and sum(len(seg) for line in lines for seg in line.segments) > BUSY_ROWS_PER_LINE * len(ys) * len(lines):
        lines = _trace(xs, ys, values, choose_levels(values, FEW_LEVELS, log_levels=log_levels, min_value=min_value))
    return ContourMap(xs, ys, values, bands, lines)


def _trace(xs: np.ndarray, ys: np.ndarray, values: np.ndarray, levels: np.ndarray) -> list[LevelLine]:
    if levels.size == 0:
        return []
    finite = np.isfinite(values)
    z = values if finite.all() else np.ma.masked_array(np.where(finite, values, 0.0), mask=~finite)
    generator = contourpy.contour_generator(xs, ys, z, name="serial", line_type=contourpy.LineType.Separate)
    lines: list[LevelLine] = []
    for level in levels:
        segments = [np.asarray(seg, dtype=np.float64) for seg in generator.lines(float(level)) if len(seg) >= 2]
        if segments:
            lines.append(LevelLine(level=float(level), segments=segments))
    return lines
