"""The contour pane: level lines of the surface with every lane's trajectory on top.

Layers are painted into plotext's character matrix by ``plot_base.BraillePlot`` (see there and
``plotting.py`` for why), so the frame cost is bounded by the pane's cell count, never by the
number of steps:

* level lines are rasterised once per (surface+view key, view, canvas size) and cached;
* each start point's path keeps a dot mask that grows with the new tail of its history only
  (the prefix is checked unchanged, else rebuilt from scratch).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np
from textual.color import Color

from sgdtui.engine.contours import LevelLine
from sgdtui.ui.widgets.plot_base import BraillePlot, CellLayer, PlotColor, cells_layer, marker_layer
from sgdtui.ui.widgets.plotting import (
    CanvasGrid,
    PlotDataError,
    as_points,
    braille_cells,
    check_limits,
    decimate_path,
    dot_mask,
    line_colour,
    mask_cells,
    rasterize_polyline,
    shade_colours,
)

# Level lines without shading (a loss-landscape slice): a grey ramp that reads on both themes.
LEVEL_COLOURS: tuple[int, ...] = (238, 239, 240, 241, 242, 243, 244, 245, 246, 247)
CURRENT_MARKER = "●"
DIVERGED_MARKER = "✗"
MINIMUM_MARKER = "★"
CROSSHAIR = "┼"
SWA_MARKER = "◎"  # a lane's averaged iterate
# Arrow heads by direction, counter-clockwise from east, for the update anatomy.
ARROW_HEADS = ("→", "↗", "↑", "↖", "←", "↙", "↓", "↘")


@dataclass(frozen=True)
class TrajectoryView:
    """What the contour pane shows of one lane."""

    name: str
    color: PlotColor  # a plotext colour
    paths: tuple[np.ndarray, ...]  # one (T, 2) array per start point: the lane's history of positions
    current: np.ndarray  # (N, 2) current points
    diverged: np.ndarray  # (N,) bool
    selected: bool = False
    glyph: str = CURRENT_MARKER  # the lane's marker for its current points
    flow: np.ndarray | None = None  # (M, 2) the gradient-flow reference, drawn dimmed
    swa: np.ndarray | None = None  # (N, 2) the averaged iterate (SWA), its own marker


@dataclass(frozen=True)
class Density:
    """The density view of one lane: its histogram of positions ``counts[ix, iy]`` over ``box``
    (shaded), and the Gibbs density ``gibbs`` on the same cells as level lines (None: no T_G)."""

    box: tuple[tuple[float, float], tuple[float, float]]
    counts: np.ndarray
    gibbs: np.ndarray | None
    color: PlotColor


@dataclass(frozen=True)
class Arrow:
    """A vector drawn from ``origin`` (the update anatomy: -lr*grad, momentum, the step itself)."""

    origin: tuple[float, float]
    vector: tuple[float, float]
    color: PlotColor


@dataclass(frozen=True)
class Shading:
    """Loss bands on a grid over the view: ``bands[j, i]`` is the band of the value at
    (xs[i], ys[j]) (-1: not finite); the pane colours each cell by the band at its centre."""

    xs: np.ndarray
    ys: np.ndarray
    bands: np.ndarray
    n_bands: int


@dataclass
class _PathRaster:
    """The dots one start point's path has lit so far, and a copy of the points behind them."""

    grid: CanvasGrid
    mask: np.ndarray
    points: np.ndarray = field(default_factory=lambda: np.empty((64, 2)))
    length: int = 0
    last_finite: np.ndarray | None = None
    version: int = 0  # bumped when a tail lights a dot that was dark

    def matches(self, path: np.ndarray, grid: CanvasGrid) -> bool:
        return (
            grid == self.grid
            and len(path) >= self.length
            # Bitwise comparison: exact, NaN-safe, and about memcpy speed on long histories.
            and np.array_equal(path[: self.length].view(np.int64), self.points[: self.length].view(np.int64))
        )

    def extend(self, tail: np.ndarray) -> None:
        """Rasterise ``tail`` (joined to the last finite point so far) into the mask."""
        if len(tail) == 0:
            return
        seed = np.empty((0, 2)) if self.last_finite is None else self.last_finite[None, :]
        joined = np.concatenate([seed, tail])
        grid = self.grid
        decimated = decimate_path(joined, grid.xlim, grid.ylim, grid.cols, grid.rows)
        dots = rasterize_polyline(decimated, grid)
        if len(dots) and not self.mask[dots[:, 0], dots[:, 1]].all():
            self.version += 1
            dot_mask(dots, grid, self.mask)
        needed = self.length + len(tail)
        if needed > len(self.points):
            grown = np.empty((max(needed, 2 * len(self.points)), 2))
            grown[: self.length] = self.points[: self.length]
            self.points = grown
        self.points[self.length : needed] = tail
        self.length = needed
        finite_rows = np.flatnonzero(np.isfinite(tail).all(axis=1))
        if len(finite_rows):
            self.last_finite = tail[finite_rows[-1]].copy()


class ContourPlot(BraillePlot):
    """Level lines of the surface, lanes' trajectories, current points, minima and divergences."""

    LEVEL_CACHE_SIZE = 8

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - Textual's own parameter name
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.level_point_builds = 0  # level-line rasterisations (cache misses)
        self._levels_key: Hashable | None = None
        self._levels: list[LevelLine] = []
        self._minima = np.empty((0, 2))
        self._xlim: tuple[float, float] = (-1.0, 1.0)
        self._ylim: tuple[float, float] = (-1.0, 1.0)
        self._trajectories: tuple[TrajectoryView, ...] = ()
        self._title = ""
        self._level_cache: OrderedDict[tuple, list[CellLayer]] = OrderedDict()
        self._path_rasters: dict[tuple[str, int], _PathRaster] = {}
        self._path_cells: dict[str, tuple] = {}  # lane -> (raster versions, rasters, its BrailleCells)
        self._shading: Shading | None = None
        self.crosshair: tuple[float, float] | None = None
        self._arrows: tuple[Arrow, ...] = ()
        self._density: Density | None = None
        self._density_lines: tuple[int, list[np.ndarray]] | None = None  # (id of the gibbs array, lines)

    def set_density(self, density: Density | None) -> None:
        """Show a lane's stationary histogram and its Gibbs density's level lines (None: off)."""
        if density is not self._density:
            self._density = density
            self._data_changed()

    @property
    def view(self) -> tuple[tuple[float, float], tuple[float, float]]:
        return self._xlim, self._ylim

    def redraw_paths(self) -> None:
        """Forget the incremental path rasters, so the next frame draws every path whole.

        Paths are rasterised piece by piece as they grow, and decimating a piece can light a
        slightly different dot set than decimating the whole path; tests that compare pictures
        call this so what they see does not depend on how many frames came before."""
        self._path_rasters.clear()
        self._data_changed()

    def set_levels(
        self,
        key: Hashable,
        levels: list[LevelLine],
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        minima: np.ndarray | None = None,
        shading: Shading | None = None,
    ) -> None:
        """Use ``levels`` (traced for the view ``xlim x ylim``), the ``shading`` behind them, and
        show that view.

        ``key`` identifies surface + view: while it stays the same, the
        rasterised level lines and shading are reused for each pane size.
        """
        self._xlim, self._ylim = check_limits("xlim", xlim), check_limits("ylim", ylim)
        if key != self._levels_key:
            self._levels_key = key
            self._levels = list(levels)
            self._shading = shading
        self._minima = as_points(np.empty((0, 2)) if minima is None else minima, "minima")
        self._data_changed()

    def set_overlay(self, crosshair: tuple[float, float] | None, arrows: tuple[Arrow, ...] = ()) -> None:
        """The keyboard crosshair (None: hidden) and the update-anatomy arrows."""
        if (crosshair, arrows) != (self.crosshair, self._arrows):
            self.crosshair, self._arrows = crosshair, tuple(arrows)
            self._data_changed()

    def shade_colours(self) -> list[tuple[int, int, int]]:
        """The band colours of the current shading in the current theme (for a colour bar too)."""
        n = self._shading.n_bands if self._shading is not None else 0
        return shade_colours(n, self._background(), self._dark())

    def _dark(self) -> bool:
        return bool(self.app.current_theme.dark)

    def _background(self) -> tuple[int, int, int]:
        colour = Color.parse(self.app.current_theme.background or ("#1e1e1e" if self._dark() else "#ffffff"))
        return colour.rgb

    def set_view(self, xlim: tuple[float, float], ylim: tuple[float, float]) -> None:
        """Show ``xlim x ylim`` (the current level lines are redrawn clipped to it)."""
        self._xlim, self._ylim = check_limits("xlim", xlim), check_limits("ylim", ylim)
        self._data_changed()

    def show(self, trajectories: Sequence[TrajectoryView], title: str = "") -> None:
        """Redraw with these lanes (selected lane drawn last, in bold)."""
        trajectories = tuple(trajectories)
        for lane in trajectories:
            current = as_points(lane.current, f"current of lane {lane.name!r}")
            if np.asarray(lane.diverged).ravel().shape[0] != current.shape[0]:
                raise PlotDataError(
                    f"lane {lane.name!r}: diverged has {np.asarray(lane.diverged).size} entries "
                    f"for {current.shape[0]} current points"
                )
        self._trajectories = trajectories
        self._title = title
        self._data_changed()

    def _prepare_axes(self, width: int, height: int) -> tuple[tuple[float, float], tuple[float, float]]:
        self._set_axes(width, height, self._xlim, self._ylim, self._title)
        return self._xlim, self._ylim

    def _base_layers(self, grid: CanvasGrid) -> tuple[Hashable, list[CellLayer]] | None:
        if self._density is not None:
            return None
        key = self._level_key(grid)
        return key, self._level_layers(grid, key)

    def _level_key(self, grid: CanvasGrid) -> tuple:
        return (self._levels_key, grid, self._dark(), self.app.theme)

    def _level_layers(self, grid: CanvasGrid, cache_key: tuple | None = None) -> list[CellLayer]:
        """The shading (cell backgrounds by loss band) and the level lines over it, cached per
        surface+view, canvas and theme."""
        dark = self._dark()
        cache_key = cache_key or self._level_key(grid)
        cached = self._level_cache.get(cache_key)
        if cached is not None:
            self._level_cache.move_to_end(cache_key)
            return cached
        self.level_point_builds += 1
        layers = []
        shades = self.shade_colours()
        band_of_level = None
        if self._shading is not None and shades:
            cols, rows = np.meshgrid(np.arange(grid.cols), np.arange(grid.rows), indexing="ij")
            cols, rows = cols.ravel(), rows.ravel()
            xs, ys = grid.cell_centres(cols, rows)
            shading = self._shading
            ix = np.clip(np.searchsorted(shading.xs, xs), 0, len(shading.xs) - 1)
            iy = np.clip(np.searchsorted(shading.ys, ys), 0, len(shading.ys) - 1)
            bands = shading.bands[iy, ix]
            keep = bands >= 0
            layers.append(CellLayer(cols[keep], rows[keep], None, None,
                                    backgrounds=[shades[min(int(b), len(shades) - 1)] for b in bands[keep]]))
            band_of_level = np.linspace(0, len(shades) - 1, max(len(self._levels), 1)).round().astype(int)
        dots, tags = [np.empty((0, 2), dtype=np.int64)], [np.empty(0, dtype=np.int64)]
        for index, line in enumerate(self._levels):
            for segment in line.segments:
                segment_dots = rasterize_polyline(segment, grid)
                dots.append(segment_dots)
                tags.append(np.full(len(segment_dots), index, dtype=np.int64))
        cells = braille_cells(np.concatenate(dots), grid, np.concatenate(tags))
        if band_of_level is not None:
            colours = [line_colour(shades[band_of_level[min(int(t), len(band_of_level) - 1)]], dark)
                       for t in cells.sources]
        else:
            ramp_ = np.asarray(LEVEL_COLOURS)
            shade = np.clip((cells.sources * len(ramp_)) // max(len(self._levels), 1), 0, len(ramp_) - 1)
            colours = [int(c) for c in ramp_[shade]]
        layers.append(CellLayer(cells.cols, cells.rows, cells.glyphs, colours))
        self._level_cache[cache_key] = layers
        while len(self._level_cache) > self.LEVEL_CACHE_SIZE:
            self._level_cache.popitem(last=False)
        return layers

    def _path_mask(self, key: tuple[str, int], path: np.ndarray, grid: CanvasGrid) -> np.ndarray:
        """Dots lit by ``path``; only the part appended since the last frame is rasterised."""
        path = np.ascontiguousarray(as_points(path, f"path {key}"))
        raster = self._path_rasters.get(key)
        if raster is None or not raster.matches(path, grid):
            raster = _PathRaster(grid, np.zeros((grid.dot_cols, grid.dot_rows), dtype=bool))
            self._path_rasters[key] = raster
        raster.extend(path[raster.length :])
        return raster.mask

    def _frozen_points(self, lane: TrajectoryView) -> np.ndarray:
        """Where each diverged start froze: its current point if finite, else the last finite
        point of its path (known from the path's raster, so no scan of a long history)."""
        current = as_points(lane.current, f"current of lane {lane.name!r}")
        frozen = []
        for index in np.flatnonzero(np.asarray(lane.diverged, dtype=bool).ravel()):
            point = current[index]
            raster = self._path_rasters.get((lane.name, int(index)))
            if not np.isfinite(point).all() and raster is not None and raster.last_finite is not None:
                point = raster.last_finite
            frozen.append(point)
        return np.array(frozen, dtype=np.float64).reshape(-1, 2)

    def _density_layers(self, grid: CanvasGrid) -> list[CellLayer]:
        """The histogram as cell backgrounds (log of the count, over the theme's background) and
        the Gibbs density's highest-density contours holding 50, 90 and 99 % of its mass."""
        density = self._density
        counts = np.asarray(density.counts, dtype=np.float64)
        (bx0, bx1), (by0, by1) = density.box
        bins = counts.shape[0]
        cols, rows = np.meshgrid(np.arange(grid.cols), np.arange(grid.rows), indexing="ij")
        cols, rows = cols.ravel(), rows.ravel()
        xs, ys = grid.cell_centres(cols, rows)
        inside = (xs >= bx0) & (xs < bx1) & (ys >= by0) & (ys < by1)
        ix = np.clip(((xs - bx0) / (bx1 - bx0) * bins).astype(int), 0, bins - 1)
        iy = np.clip(((ys - by0) / (by1 - by0) * bins).astype(int), 0, bins - 1)
        values = np.where(inside, counts[ix, iy], 0.0)
        layers = []
        peak = values.max()
        if peak > 0:
            keep = values > 0
            weight = np.log1p(values[keep]) / np.log1p(peak)
            background = np.asarray(self._background(), dtype=np.float64)
            colour = np.asarray(density.color, dtype=np.float64)
            mixed = (background[None, :] * (1 - 0.85 * weight[:, None]) + colour[None, :] * 0.85 * weight[:, None])
            layers.append(CellLayer(cols[keep], rows[keep], None, None,
                                    backgrounds=mixed.round().astype(np.int64)))
        if density.gibbs is not None:
            dots = [rasterize_polyline(line, grid) for line in self._gibbs_lines(density)]
            if dots:
                cells = braille_cells(np.concatenate(dots), grid)
                line_rgb = (255, 255, 255) if self._dark() else (0, 0, 0)
                layers.append(CellLayer(cells.cols, cells.rows, cells.glyphs, line_rgb, "bold"))
        return layers

    def _gibbs_lines(self, density: Density) -> list[np.ndarray]:
        cached = self._density_lines
        if cached is not None and cached[0] == id(density.gibbs):
            return cached[1]
        import contourpy

        gibbs = np.asarray(density.gibbs, dtype=np.float64)
        order = np.sort(gibbs.ravel())[::-1]
        mass = np.cumsum(order)
        levels = sorted({float(order[min(np.searchsorted(mass, q), order.size - 1)]) for q in (0.5, 0.9, 0.99)})
        bins = gibbs.shape[0]
        (bx0, bx1), (by0, by1) = density.box
        xs = bx0 + (np.arange(bins) + 0.5) * (bx1 - bx0) / bins
        ys = by0 + (np.arange(bins) + 0.5) * (by1 - by0) / bins
        generator = contourpy.contour_generator(xs, ys, gibbs.T)
        lines = [np.asarray(line) for level in levels if level > 0 for line in generator.lines(level) if len(line) > 1]
        self._density_lines = (id(density.gibbs), lines)
        return lines

    def _layers(self, grid: CanvasGrid) -> list[CellLayer]:
        marker_colour = (255, 255, 255) if self._dark() else (0, 0, 0)
        base = self._density_layers(grid) if self._density is not None else []  # else: _base_layers
        layers = [*base, marker_layer(self._minima, grid, MINIMUM_MARKER, marker_colour, "bold")]
        for lane in self._trajectories:  # the gradient-flow references, dimmed, under the paths
            if lane.flow is not None and len(lane.flow) > 1:
                dim = tuple(int(0.55 * c + 0.45 * b) for c, b in zip(lane.color, self._background()))
                flow = decimate_path(np.asarray(lane.flow), grid.xlim, grid.ylim, grid.cols, grid.rows)
                layers.append(cells_layer(braille_cells(rasterize_polyline(flow, grid), grid), dim))
        # Selected lane last, so it is drawn over the others.
        lanes = sorted(self._trajectories, key=lambda lane: lane.selected)
        live_keys = set()
        path_cells = {}
        for lane in lanes:
            keys = [(lane.name, index) for index in range(len(lane.paths))]
            masks = [self._path_mask(key, path, grid) for key, path in zip(keys, lane.paths)]
            live_keys.update(keys)
            # A lane's cells are packed again only when one of its paths lit a new dot (a lane
            # that has converged revisits its dots frame after frame).
            rasters = tuple(self._path_rasters[key] for key in keys)
            version = tuple((id(raster), raster.version) for raster in rasters)
            cached = self._path_cells.get(lane.name)
            if cached is not None and cached[0] == version:
                cells = cached[2]
            else:
                mask = np.zeros((grid.dot_cols, grid.dot_rows), dtype=bool)
                for one in masks:
                    mask |= one
                cells = mask_cells(mask, grid)
            path_cells[lane.name] = (version, rasters, cells)  # the rasters held: their ids stay theirs
            layers.append(cells_layer(cells, lane.color, "bold" if lane.selected else None))
        self._path_cells = path_cells
        for key in set(self._path_rasters) - live_keys:
            del self._path_rasters[key]
        for arrow in self._arrows:
            layers.extend(arrow_layers(arrow, grid))
        for lane in lanes:
            current = as_points(lane.current, f"current of lane {lane.name!r}")
            diverged = np.asarray(lane.diverged, dtype=bool).ravel()
            style = "bold reverse" if lane.selected else "bold"
            layers.append(marker_layer(current[~diverged], grid, lane.glyph, lane.color, style))
            layers.append(
                marker_layer(self._frozen_points(lane), grid, DIVERGED_MARKER, lane.color, "bold", pin_to_edge=True)
            )
        for lane in lanes:
            if lane.swa is not None:
                layers.append(marker_layer(as_points(lane.swa, "swa"), grid, SWA_MARKER, lane.color, "bold"))
        if self.crosshair is not None:
            layers.append(marker_layer(np.array([self.crosshair]), grid, CROSSHAIR, marker_colour, "bold",
                                       pin_to_edge=True))
        return layers


def arrow_layers(arrow: Arrow, grid: CanvasGrid) -> list[CellLayer]:
    """A braille shaft from the origin to origin + vector, and an arrow head glyph at its tip."""
    origin = np.asarray(arrow.origin, dtype=np.float64)
    tip = origin + np.asarray(arrow.vector, dtype=np.float64)
    if not (np.isfinite(origin).all() and np.isfinite(tip).all()):
        return []
    shaft = rasterize_polyline(np.stack([origin, tip]), grid)
    (x0, x1), (y0, y1) = grid.xlim, grid.ylim
    # The head's direction in screen space (cells are twice as tall as wide: scale accordingly).
    dx = arrow.vector[0] / (x1 - x0) * grid.cols
    dy = arrow.vector[1] / (y1 - y0) * grid.rows * 2
    if dx == 0 and dy == 0:
        return []
    head = ARROW_HEADS[int(round(math.atan2(dy, dx) / (math.pi / 4))) % 8]
    return [cells_layer(braille_cells(shaft, grid), arrow.color),
            marker_layer(tip[None, :], grid, head, arrow.color, "bold", pin_to_edge=True)]
