"""Pure numpy helpers shared by the plot widgets (no Textual, no plotext import).

Why this module exists: plotext spends Python time on every point it is given
(~4 us for a one-cell marker, ~9 us for a braille one, plus every point it
interpolates between two line vertices). A 100,000-step trajectory or a dozen
level lines handed over raw would make each frame slower as a run grows. So we
do the geometry here, vectorised:

* ``decimate_path`` / ``decimate_series`` shrink data to what the pane can show;
* ``rasterize_polyline`` / ``rasterize_points`` turn it into braille dots,
  clipping segments to the view (a diverged lane at 1e30 never reaches plotext);
* ``braille_cells`` / ``mask_cells`` pack the dots into one braille glyph per
  terminal cell; the widgets paint those cells into plotext's matrix, so a
  frame costs O(pane cells) however long the run.

Coordinates: a ``CanvasGrid`` is plotext's data canvas (``cols x rows`` cells,
each 2 x 4 braille dots). plotext maps a value ``x`` to the cell
``floor(0.5 + (cols - 1) * (x - x0) / (x1 - x0))``; we use the same mapping, so
a point handed over at a cell's centre lands in exactly that cell. Rows count
from the bottom, as in plotext.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DOTS_X = 2  # braille dots per cell, horizontally
DOTS_Y = 4  # braille dots per cell, vertically

# Bit of the braille dot at (column in cell, row in cell counted from the top).
_BRAILLE_BITS = np.array([[0x01, 0x02, 0x04, 0x40], [0x08, 0x10, 0x20, 0x80]], dtype=np.int64)
BRAILLE_CHARACTERS = np.array([chr(0x2800 + code) for code in range(256)], dtype="<U1")  # by code
_POPCOUNT = np.array([bin(code).count("1") for code in range(256)], dtype=np.int64)

# The Okabe-Ito colour-blind-safe set (blue, orange, bluish green, reddish purple, yellow,
# vermillion, sky blue, grey), each as (on a dark background, on a light one): lanes and
# classes keep their hue in every theme, lighter on dark themes and darker on light ones.
OKABE_ITO: tuple[tuple[tuple[int, int, int], tuple[int, int, int]], ...] = (
    ((86, 180, 233), (0, 114, 178)),
    ((230, 159, 0), (213, 94, 0)),
    ((53, 201, 152), (0, 130, 95)),
    ((224, 139, 187), (170, 68, 130)),
    ((240, 228, 66), (140, 115, 0)),
    ((255, 120, 60), (185, 60, 0)),
    ((150, 200, 255), (40, 80, 160)),
    ((200, 200, 200), (80, 80, 80)),
)

# Points farther than this many view spans from the view's centre are pulled in
# radially: the visible direction of a segment is unchanged (error ~1e-6 rad),
# and float arithmetic downstream can no longer overflow.
FAR_AWAY_SPANS = 1e6


class PlotDataError(ValueError):
    """Bad input to a plotting helper (shape, limits, pane size)."""


def check_limits(name: str, limits: tuple[float, float]) -> tuple[float, float]:
    """Return ``limits`` as two floats, or raise if they are not finite and increasing."""
    try:
        low, high = float(limits[0]), float(limits[1])
    except (TypeError, ValueError, IndexError) as error:
        raise PlotDataError(f"{name} must be a (low, high) pair of numbers, got {limits!r}") from error
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise PlotDataError(f"{name} must be finite with low < high, got {limits!r}")
    return low, high


def as_points(points: np.ndarray, name: str = "points") -> np.ndarray:
    """Return ``points`` as a float64 (T, 2) array (an empty input gives shape (0, 2))."""
    array = np.asarray(points, dtype=np.float64)
    if array.size == 0:
        return np.empty((0, 2))
    if array.ndim != 2 or array.shape[1] != 2:
        raise PlotDataError(f"{name} must have shape (T, 2), got {array.shape}")
    return array


@dataclass(frozen=True)
class CanvasGrid:
    """The cell grid plotext draws data into: view limits plus its size in cells."""

    xlim: tuple[float, float]
    ylim: tuple[float, float]
    cols: int
    rows: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "xlim", check_limits("xlim", self.xlim))
        object.__setattr__(self, "ylim", check_limits("ylim", self.ylim))
        if self.cols < 2 or self.rows < 2:
            raise PlotDataError(f"canvas must be at least 2x2 cells, got {self.cols}x{self.rows}")

    @property
    def dot_cols(self) -> int:
        return self.cols * DOTS_X

    @property
    def dot_rows(self) -> int:
        return self.rows * DOTS_Y

    def to_dots(self, points: np.ndarray) -> np.ndarray:
        """Continuous dot coordinates of (finite, not absurdly far) data points; floor gives the dot."""
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        u = 0.5 + (self.cols - 1) * (points[:, 0] - x0) / (x1 - x0)
        v = 0.5 + (self.rows - 1) * (points[:, 1] - y0) / (y1 - y0)
        return np.stack([u * DOTS_X, v * DOTS_Y], axis=1)

    def cell_centres(self, cols: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Data coordinates that plotext maps to exactly the cells (cols, rows)."""
        (x0, x1), (y0, y1) = self.xlim, self.ylim
        xs = x0 + np.asarray(cols, dtype=np.float64) * (x1 - x0) / (self.cols - 1)
        ys = y0 + np.asarray(rows, dtype=np.float64) * (y1 - y0) / (self.rows - 1)
        return xs, ys


def pull_in_far_points(points: np.ndarray, xlim: tuple[float, float], ylim: tuple[float, float]) -> np.ndarray:
    """Move points beyond ``FAR_AWAY_SPANS`` view spans radially towards the view centre.

    Non-finite rows are returned unchanged (callers drop them).
    """
    points = as_points(points)
    # The usual case, all points near the view, in two numpy calls: |p - centre| <= |p| + |centre|,
    # and with half of FAR_AWAY_SPANS as the bound no point can be far (NaN or inf fail the test).
    bound = 0.5 * FAR_AWAY_SPANS * min(xlim[1] - xlim[0], ylim[1] - ylim[0])
    nearby = max(abs(xlim[0]), abs(xlim[1]), abs(ylim[0]), abs(ylim[1]))
    if len(points) == 0 or float(np.abs(points).max()) + nearby < bound:
        return points
    centre = np.array([(xlim[0] + xlim[1]) / 2, (ylim[0] + ylim[1]) / 2])
    span = np.array([xlim[1] - xlim[0], ylim[1] - ylim[0]])
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = (points - centre) / span  # in view spans; may be inf for 1e308-ish input
        distance = np.max(np.abs(scaled), axis=1)
        far = np.isfinite(points).all(axis=1) & (distance > FAR_AWAY_SPANS)
    if not far.any():
        return points
    pulled = points.copy()
    # Divide before multiplying so that huge-but-finite coordinates cannot overflow.
    direction = (points[far] - centre) / span / distance[far, None]
    direction[~np.isfinite(direction)] = 0.0
    pulled[far] = centre + direction * FAR_AWAY_SPANS * span
    return pulled


def decimate_path(
    points: np.ndarray,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    cols: int,
    rows: int,
    max_points: int | None = None,
) -> np.ndarray:
    """Shrink a trajectory to what a ``cols x rows`` pane can show, keeping its shape.

    * non-finite points are dropped; points absurdly far away are pulled in
      along their direction (``pull_in_far_points``);
    * of consecutive points in the same braille dot only the first is kept;
      outside the view, runs are keyed on a clamped dot and keep both their
      first and last point, so the visible part of the segment leaving (or
      entering) the view keeps its exact direction;
    * if the path still has more than ``max_points`` points (default: the
      pane's braille dot count, ``cols * rows * 8``; a noisy lane revisits the
      same dots over and over), it is subsampled evenly;
    * the first and last finite points are always kept.

    O(T) numpy, no Python loop per point. Returns a (T', 2) float64 array.
    """
    points = as_points(points, "path")
    if cols < 1 or rows < 1:
        raise PlotDataError(f"pane must be at least 1x1 cells, got {cols}x{rows}")
    xlim, ylim = check_limits("xlim", xlim), check_limits("ylim", ylim)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) <= 2:
        return points.copy()
    points = pull_in_far_points(points, xlim, ylim)
    grid = CanvasGrid(xlim, ylim, max(cols, 2), max(rows, 2))
    dots = np.floor(grid.to_dots(points))
    # Clamp to one dot beyond each border: all far-outside points of a run share a key.
    limits_high = np.array([grid.dot_cols, grid.dot_rows], dtype=np.float64)
    clamped = np.clip(dots, -1.0, limits_high)
    keys = (clamped[:, 0] + 1) * (grid.dot_rows + 2) + (clamped[:, 1] + 1)
    outside = ((clamped < 0) | (clamped >= limits_high)).any(axis=1)
    new_run = np.empty(len(keys), dtype=bool)
    new_run[0] = True
    new_run[1:] = keys[1:] != keys[:-1]
    run_end = np.empty(len(keys), dtype=bool)
    run_end[-1] = True
    run_end[:-1] = keys[:-1] != keys[1:]
    keep = new_run | (run_end & outside)
    keep[-1] = True
    kept = points[keep]
    budget = cols * rows * DOTS_X * DOTS_Y if max_points is None else int(max_points)
    if budget < 2:
        raise PlotDataError(f"max_points must be >= 2, got {max_points!r}")
    if len(kept) > budget:
        index = np.unique(np.linspace(0, len(kept) - 1, budget).round().astype(np.int64))
        kept = kept[index]
    return kept


def clip_segments(
    starts: np.ndarray, ends: np.ndarray, low: np.ndarray, high: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Liang-Barsky clipping of many segments to the box ``low <= p <= high`` at once.

    Returns the clipped ``(starts, ends)`` and a mask of segments that touch the box.
    """
    delta = ends - starts
    if (starts >= low).all() and (starts <= high).all() and (ends >= low).all() and (ends <= high).all():
        # Every segment inside: t_enter is 0 and t_leave 1 exactly, so the general case below
        # would give these very numbers (a tail of a few points is the usual input).
        return starts + 0.0 * delta, starts + 1.0 * delta, np.ones(len(starts), dtype=bool)
    t_enter = np.zeros(len(starts))
    t_leave = np.ones(len(starts))
    visible = np.ones(len(starts), dtype=bool)
    for axis in range(2):
        d = delta[:, axis]
        s = starts[:, axis]
        parallel = d == 0
        visible &= ~(parallel & ((s < low[axis]) | (s > high[axis])))
        with np.errstate(divide="ignore", invalid="ignore"):
            t_low = (low[axis] - s) / d
            t_high = (high[axis] - s) / d
        t_near = np.where(parallel, -np.inf, np.minimum(t_low, t_high))
        t_far = np.where(parallel, np.inf, np.maximum(t_low, t_high))
        t_enter = np.maximum(t_enter, t_near)
        t_leave = np.minimum(t_leave, t_far)
    visible &= t_enter <= t_leave
    clipped_starts = starts + t_enter[:, None] * delta
    clipped_ends = starts + t_leave[:, None] * delta
    return clipped_starts[visible], clipped_ends[visible], visible


def _dots_in_grid(dots: np.ndarray, grid: CanvasGrid) -> np.ndarray:
    """Unique integer dots (K, 2) that lie on the canvas."""
    dots = np.floor(dots).astype(np.int64)
    inside = (
        (dots[:, 0] >= 0) & (dots[:, 0] < grid.dot_cols) & (dots[:, 1] >= 0) & (dots[:, 1] < grid.dot_rows)
    )
    dots = dots[inside]
    # Unique and sorted by marking a flat mask of the canvas's dots: O(dots + canvas), no sort
    # (a steep curve samples tens of thousands of dots a frame).
    lit = np.zeros(grid.dot_cols * grid.dot_rows, dtype=bool)
    lit[dots[:, 0] * grid.dot_rows + dots[:, 1]] = True
    linear = np.flatnonzero(lit)
    return np.stack([linear // grid.dot_rows, linear % grid.dot_rows], axis=1)


def rasterize_points(points: np.ndarray, grid: CanvasGrid) -> np.ndarray:
    """The braille dots (K, 2) hit by the finite ``points`` that fall on the canvas."""
    points = as_points(points)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) == 0:
        return np.empty((0, 2), dtype=np.int64)
    return _dots_in_grid(grid.to_dots(pull_in_far_points(points, grid.xlim, grid.ylim)), grid)


def rasterize_polyline(path: np.ndarray, grid: CanvasGrid) -> np.ndarray:
    """The braille dots (K, 2) covered by the segments of ``path``, clipped to the canvas.

    Non-finite vertices are dropped (their neighbours get joined). Work is
    proportional to the number of dots drawn, never to how far a segment
    reaches outside the view.
    """
    path = as_points(path, "path")
    path = path[np.isfinite(path).all(axis=1)]
    if len(path) == 0:
        return np.empty((0, 2), dtype=np.int64)
    dots = grid.to_dots(pull_in_far_points(path, grid.xlim, grid.ylim))
    if len(dots) == 1:
        return _dots_in_grid(dots, grid)
    low = np.zeros(2)
    high = np.array([grid.dot_cols, grid.dot_rows], dtype=np.float64) - 1e-9
    starts, ends, _ = clip_segments(dots[:-1], dots[1:], low, high)
    if len(starts) == 0:
        return np.empty((0, 2), dtype=np.int64)
    # One sample per dot along the longer axis (plus both ends) covers every dot.
    samples = np.ceil(np.abs(ends - starts).max(axis=1)).astype(np.int64) + 1
    # Each segment's values repeated per sample (np.repeat is several times faster than gathering
    # rows by a segment index, and gives the same numbers).
    step = np.arange(int(samples.sum())) - np.repeat(np.cumsum(samples) - samples, samples)
    t = step / np.repeat(np.maximum(samples - 1, 1), samples)
    sampled = np.repeat(starts, samples, axis=0) + t[:, None] * np.repeat(ends - starts, samples, axis=0)
    return _dots_in_grid(sampled, grid)


@dataclass(frozen=True)
class BrailleCells:
    """Cells to hand plotext: cell column/row, glyph, and the source index (e.g. level) of each."""

    cols: np.ndarray
    rows: np.ndarray
    glyphs: list[str]
    sources: np.ndarray
    codes: np.ndarray | None = None  # the braille code of each cell (glyph = chr(0x2800 + code))

    def __len__(self) -> int:
        return len(self.glyphs)


def braille_cells(dots: np.ndarray, grid: CanvasGrid, sources: np.ndarray | None = None) -> BrailleCells:
    """Pack braille dots (K, 2) into one glyph per cell.

    ``sources`` (K,) optionally tags each dot (e.g. its level index); a cell
    takes the smallest tag among its dots. Duplicate dots are fine. Cells are
    ordered fullest glyph first, so a plotext legend (which shows a signal's
    first three markers) shows solid glyphs.
    """
    dots = np.asarray(dots, dtype=np.int64).reshape(-1, 2)
    tags = np.zeros(len(dots), dtype=np.int64) if sources is None else np.asarray(sources, dtype=np.int64)
    if len(dots) == 0:
        empty = np.empty(0, dtype=np.int64)
        return BrailleCells(empty, empty, [], empty)
    if sources is None and dots.min() >= 0 and dots[:, 0].max() < grid.dot_cols and dots[:, 1].max() < grid.dot_rows:
        # Untagged dots on the canvas: the same cells, in the same order, from a dot mask, without sorting.
        return mask_cells(dot_mask(dots, grid), grid)
    # Deduplicate dots so that summing bits equals OR-ing them.
    linear_dot = dots[:, 0] * grid.dot_rows + dots[:, 1]
    order = np.lexsort((tags, linear_dot))
    linear_dot, tags, dots = linear_dot[order], tags[order], dots[order]
    first = np.ones(len(linear_dot), dtype=bool)
    first[1:] = linear_dot[1:] != linear_dot[:-1]
    dots, tags = dots[first], tags[first]
    cell_col, cell_row = dots[:, 0] // DOTS_X, dots[:, 1] // DOTS_Y
    row_from_top = DOTS_Y - 1 - dots[:, 1] % DOTS_Y
    bits = _BRAILLE_BITS[dots[:, 0] % DOTS_X, row_from_top]
    cell = cell_col * grid.rows + cell_row
    unique_cells, inverse = np.unique(cell, return_inverse=True)
    codes = np.bincount(inverse, weights=bits, minlength=len(unique_cells)).astype(np.int64)
    cell_tags = np.full(len(unique_cells), np.iinfo(np.int64).max)
    np.minimum.at(cell_tags, inverse, tags)
    fullest_first = np.argsort(-_POPCOUNT[codes], kind="stable")
    unique_cells, codes, cell_tags = unique_cells[fullest_first], codes[fullest_first], cell_tags[fullest_first]
    return BrailleCells(
        cols=unique_cells // grid.rows,
        rows=unique_cells % grid.rows,
        glyphs=BRAILLE_CHARACTERS[codes].tolist(),
        sources=cell_tags,
        codes=codes,
    )


def dot_mask(dots: np.ndarray, grid: CanvasGrid, mask: np.ndarray | None = None) -> np.ndarray:
    """Light ``dots`` (K, 2) in a boolean (dot_cols, dot_rows) mask (a new one unless ``mask`` is given)."""
    if mask is None:
        mask = np.zeros((grid.dot_cols, grid.dot_rows), dtype=bool)
    dots = np.asarray(dots, dtype=np.int64).reshape(-1, 2)
    mask[dots[:, 0], dots[:, 1]] = True
    return mask


def mask_cells(mask: np.ndarray, grid: CanvasGrid) -> BrailleCells:
    """Braille cells of a dot mask: O(pane), independent of how many paths lit it."""
    blocks = mask.reshape(grid.cols, DOTS_X, grid.rows, DOTS_Y).astype(np.int64)
    # Weight of the dot at (x in cell, y in cell counted from the bottom).
    weights = _BRAILLE_BITS[:, ::-1]
    codes = np.einsum("axby,xy->ab", blocks, weights)
    cols, rows = np.nonzero(codes)
    codes = codes[cols, rows]
    fullest_first = np.argsort(-_POPCOUNT[codes], kind="stable")
    cols, rows, codes = cols[fullest_first], rows[fullest_first], codes[fullest_first]
    return BrailleCells(cols, rows, BRAILLE_CHARACTERS[codes].tolist(), np.zeros(len(codes), dtype=np.int64), codes)


def decimate_series(
    steps: np.ndarray, values: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Min/max bucket decimation of a curve to at most ``max_points`` points.

    Non-finite values (and their steps) are skipped. The step range is split
    into ``(max_points - 2) // 2`` equal buckets; each keeps its lowest and
    highest point, so spikes and dips stay visible. The first and last points
    (in step order) are always kept; output is in step order. O(T) when the
    steps are already sorted (the usual case), O(T log T) otherwise.
    """
    steps = np.asarray(steps, dtype=np.float64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    if steps.shape != values.shape:
        raise PlotDataError(f"steps and values must have the same length, got {steps.shape} and {values.shape}")
    if max_points < 4:
        raise PlotDataError(f"max_points must be >= 4, got {max_points!r}")
    finite = np.isfinite(steps) & np.isfinite(values)
    if not finite.all():
        steps, values = steps[finite], values[finite]
    if len(steps) <= max_points:
        return steps, values
    if np.any(steps[1:] < steps[:-1]):
        order = np.argsort(steps, kind="stable")
        steps, values = steps[order], values[order]
    buckets = (max_points - 2) // 2
    low, span = steps[0], steps[-1] - steps[0]
    edges = np.searchsorted(steps, low + span * np.arange(1, buckets) / buckets, side="left")
    starts = np.unique(np.concatenate([[0], edges]))  # buckets holding no point vanish here
    counts = np.diff(np.r_[starts, len(steps)])
    bucket_of = np.repeat(np.arange(len(starts)), counts)
    lows = np.minimum.reduceat(values, starts)
    highs = np.maximum.reduceat(values, starts)
    # First position of each bucket's minimum and maximum, without sorting: buckets are runs of
    # consecutive positions, so the first match in each run (every bucket has one) is it.
    firsts = []
    for extreme in (lows, highs):
        hits = np.flatnonzero(values == extreme[bucket_of])
        hit_bucket = bucket_of[hits]
        first = np.ones(len(hits), dtype=bool)
        first[1:] = hit_bucket[1:] != hit_bucket[:-1]
        firsts.append(hits[first])
    keep = np.unique(np.concatenate([*firsts, [0, len(steps) - 1]]))
    return steps[keep], values[keep]


def log_safe(values: np.ndarray) -> np.ndarray:
    """log10 of ``values`` with non-positive and non-finite entries turned into NaN (skipped later)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        logged = np.log10(np.where(values > 0, values, np.nan))
    return np.where(np.isfinite(logged), logged, np.nan)


def nice_ticks(low: float, high: float, count: int) -> np.ndarray:
    """About ``count`` round tick values (1, 2, 2.5, 5 x 10^k steps) inside [low, high]."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low or count < 1:
        return np.array([low]) if math.isfinite(low) else np.empty(0)
    raw = (high - low) / max(count, 1)
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step - 1e-9) * step
    ticks = np.arange(first, high + step * 1e-9, step)
    ticks[np.abs(ticks) < step * 1e-9] = 0.0
    return ticks


def format_tick(value: float) -> str:
    """A short tick label: 3 significant digits, compact scientific for very large/small magnitudes."""
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        mantissa, exponent = f"{value:.1e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        return f"{mantissa}e{int(exponent)}"
    if magnitude >= 1000 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


def tick_positions(low: float, high: float, count: int) -> tuple[list[float], list[str]]:
    """Nice ticks inside [low, high] as plotext wants them: positions and labels."""
    ticks = nice_ticks(low, high, count)
    return [float(t) for t in ticks], [format_tick(float(t)) for t in ticks]


# --- colours for shading -------------------------------------------------------------------------

# viridis at five stops: perceptually ordered, readable by colour-blind viewers, dark for low loss.
VIRIDIS: tuple[tuple[int, int, int], ...] = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
# How much of the ramp shows through the theme's background: enough to read the bands, little
# enough that lanes' paths and level lines stay the brightest thing on the pane.
SHADE_STRENGTH = {True: 0.45, False: 0.40}  # dark theme, light theme


def ramp(n: int, stops: tuple[tuple[int, int, int], ...] = VIRIDIS) -> list[tuple[int, int, int]]:
    """``n`` colours evenly along the piecewise-linear ramp through ``stops``."""
    if n <= 0:
        return []
    positions = np.linspace(0.0, len(stops) - 1, n)
    out = []
    for position in positions:
        low = min(int(position), len(stops) - 2)
        t = position - low
        a, b = np.asarray(stops[low], dtype=np.float64), np.asarray(stops[low + 1], dtype=np.float64)
        out.append(tuple(int(round(v)) for v in a + t * (b - a)))
    return out


def blend(colour: tuple[int, int, int], background: tuple[int, int, int], strength: float) -> tuple[int, int, int]:
    """``colour`` laid over ``background`` at opacity ``strength``."""
    return tuple(int(round(bg + strength * (c - bg))) for c, bg in zip(colour, background))


def shade_colours(n: int, background: tuple[int, int, int], dark: bool) -> list[tuple[int, int, int]]:
    """The shading of ``n`` loss bands, low to high, over the theme's background."""
    return [blend(c, background, SHADE_STRENGTH[dark]) for c in ramp(n)]


def line_colour(shade: tuple[int, int, int], dark: bool) -> tuple[int, int, int]:
    """A level line's colour over its band's shade: lighter on dark themes, darker on light ones."""
    target = (255, 255, 255) if dark else (0, 0, 0)
    return blend(target, shade, 0.45)
