"""The contour pane: level lines of the surface with every lane's trajectory on top.

How a frame is made (see ``plotting.py`` for why): plotext lays out the figure
(frame, ticks, title, theme colours) from ``self.plt``, which holds no data
points; then our layers, already reduced to one braille glyph per terminal
cell, are painted into plotext's character matrix inside the canvas plotext
reports, and the matrix becomes a rich ``Text`` directly. So the frame cost is
bounded by the pane's cell count, never by the number of steps:

* level lines are rasterised once per (surface+view key, view, canvas size)
  and cached;
* each start point's path keeps a dot mask that grows with the new tail of its
  history only (the prefix is checked unchanged, else rebuilt from scratch).

Each widget owns its ``self.plt`` (never the global ``plotext``) and the theme
stays on "auto". The figure is rebuilt only inside ``render`` when the data,
size or theme changed since the last build.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np
import plotext._utility as plotext_utility
from rich.ansi import AnsiDecoder
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual.app import RenderResult
from textual.strip import Strip
from textual.style import Style as VisualStyle
from textual_plotext import PlotextPlot

from sgdtui.engine.contours import LevelLine
from sgdtui.ui.widgets.plotting import (
    BrailleCells,
    CanvasGrid,
    PlotDataError,
    as_points,
    braille_cells,
    check_limits,
    decimate_path,
    dot_mask,
    format_tick,
    mask_cells,
    rasterize_polyline,
    tick_positions,
)

PlotColor = str | int | tuple

# Level lines from low to high: a dim grey ramp that reads on dark and light themes.
LEVEL_COLOURS: tuple[int, ...] = (238, 239, 240, 241, 242, 243, 244, 245, 246, 247)
CURRENT_MARKER = "●"
SELECTED_CURRENT_MARKER = "◉"
DIVERGED_MARKER = "✗"
MINIMUM_MARKER = "★"
MINIMUM_COLOUR = "orange+"
NO_STYLE = plotext_utility.no_color  # plotext's "nothing" value for colours and styles


@dataclass(frozen=True)
class TrajectoryView:
    """What the contour pane shows of one lane."""

    name: str
    color: PlotColor  # a plotext colour
    paths: tuple[np.ndarray, ...]  # one (T, 2) array per start point: the lane's history of positions
    current: np.ndarray  # (N, 2) current points
    diverged: np.ndarray  # (N,) bool
    selected: bool = False


@dataclass(frozen=True)
class CellLayer:
    """Glyphs to paint at canvas cells (column, row from the bottom), one colour or one per cell."""

    cols: np.ndarray
    rows: np.ndarray
    glyphs: list[str] | str
    colours: list[PlotColor] | PlotColor
    style: str | None = None

    def __len__(self) -> int:
        return len(self.cols)


_STYLE_CACHE: dict[tuple, Style] = {}


def _rich_style(foreground: object, style: object, background: object) -> Style:
    """The rich Style for a plotext (foreground, style, background) triple, decoded once from
    plotext's own ANSI codes so that colours match textual-plotext exactly."""
    key = (foreground, style, background)
    cached = _STYLE_CACHE.get(key)
    if cached is None:
        ansi = plotext_utility.colors_to_ansi(foreground, style, background)
        spans = AnsiDecoder().decode_line(ansi + "x").spans
        style_of_span = spans[0].style if spans else Style.null()
        cached = Style.parse(style_of_span) if isinstance(style_of_span, str) else style_of_span
        _STYLE_CACHE[key] = cached
    return cached


Runs = list[tuple[str, Style | None]]  # one line: (characters, style) for each run of equal colours


def matrix_runs(matrix: object) -> list[Runs]:
    """A plotext character matrix as lines (top first) of runs of equal colours."""
    lines: list[Runs] = []
    for row in reversed(matrix.Rows):  # plotext rows count from the bottom
        markers = matrix.marker[row]
        triples = list(zip(matrix.fullground[row], matrix.style[row], matrix.background[row]))
        runs: Runs = []
        run_start = 0
        for col in range(1, len(triples) + 1):
            if col == len(triples) or triples[col] != triples[run_start]:
                style = _rich_style(*triples[run_start])
                runs.append(("".join(markers[run_start:col]), style or None))
                run_start = col
        lines.append(runs)
    return lines


def runs_to_text(lines: list[Runs]) -> Text:
    """Lines of runs as one rich Text, one span per styled run."""
    spans: list[Span] = []
    texts: list[str] = []
    offset = 0
    for runs in lines:
        for chars, style in runs:
            if style is not None:
                spans.append(Span(offset, offset + len(chars), style))
            offset += len(chars)
            texts.append(chars)
        texts.append("\n")
        offset += 1
    return Text("".join(texts)[:-1] if texts else "", spans=spans, end="")


def matrix_to_text(matrix: object) -> Text:
    """A plotext character matrix as rich Text, one span per run of equal colours."""
    return runs_to_text(matrix_runs(matrix))


class BraillePlot(PlotextPlot):
    """A PlotextPlot whose data are painted as braille cells into plotext's matrix.

    Subclasses implement ``_prepare_axes(width, height) -> (xlim, ylim)`` (title,
    limits, ticks on ``self.plt``) and ``_layers(grid) -> list[CellLayer]``
    (drawn in order, later over earlier). The figure is rebuilt only when
    data, size or theme changed. Panes smaller than ``MIN_WIDTH x MIN_HEIGHT``
    render as blank.
    """

    MIN_WIDTH = 10
    MIN_HEIGHT = 5

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - Textual's own parameter name
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.draw_count = 0  # figures built (one per frame that actually changed)
        self.last_frame_points = 0  # data cells painted in the last built frame
        self._generation = 0  # bumped by every data change
        self._rendered_key: tuple | None = None
        self._rendered_lines: list[Runs] = []
        self._text: tuple[tuple | None, Text | None] = (None, None)
        self._strips: tuple[tuple | None, list[Strip]] = (None, [])

    def _data_changed(self) -> None:
        self._generation += 1
        self.refresh()

    def _frame_lines(self) -> list[Runs] | None:
        """The current figure as lines of runs (rebuilt only when data, size or theme changed);
        None when the pane is too small to draw."""
        width, height = self.size.width, self.size.height
        if width < self.MIN_WIDTH or height < self.MIN_HEIGHT:
            return None
        key = (self._generation, width, height, self.app.theme, self.theme)
        if key != self._rendered_key:
            self._rendered_lines = self._build_frame(width, height)
            self._rendered_key = key
            self.draw_count += 1
        return self._rendered_lines

    def render(self) -> RenderResult:
        lines = self._frame_lines()
        if lines is None:
            return Text("")
        key, text = self._text
        if key != self._rendered_key or text is None:
            text = runs_to_text(lines)
            self._text = (self._rendered_key, text)
        return text

    def render_line(self, y: int) -> Strip:
        """Textual's line API: the figure's runs become segments directly, which skips turning a
        whole-pane rich Text into Content and back into strips on every redraw. Styles combine
        with the widget's as Content would combine them, so the picture is the same."""
        base = self.visual_style
        width = self.size.width
        lines = self._frame_lines()
        if lines is None:
            return Strip.blank(width, base.rich_style)
        key = (self._rendered_key, base)
        cached_key, strips = self._strips
        if cached_key != key:
            strips = self._lines_to_strips(lines, base, width)
            self._strips = (key, strips)
        return strips[y] if 0 <= y < len(strips) else Strip.blank(width, base.rich_style)

    def _lines_to_strips(self, lines: list[Runs], base: VisualStyle, width: int) -> list[Strip]:
        ansi_theme = self.app.ansi_theme
        combined: dict[Style | None, VisualStyle] = {None: base}
        strips = []
        for y, runs in enumerate(lines):
            segments = []
            x = 0
            for chars, style in runs:
                visual = combined.get(style)
                if visual is None:
                    visual = combined[style] = base + VisualStyle.from_rich_style(style, ansi_theme)
                # With the offset, as Content renders it (mouse events read it).
                segments.append(Segment(chars, visual.rich_style_with_offset(x, y)))
                x += len(chars)
            strips.append(Strip(segments).adjust_cell_length(width, base.rich_style))
        return strips

    def _build_frame(self, width: int, height: int) -> list[Runs]:
        plt = self.plt
        plt.clear_figure()  # a full reset: nothing from an earlier frame may leak into this one
        xlim, ylim = self._prepare_axes(width, height)
        # An invisible point keeps the lower x axis (and its tick labels) in use.
        plt.scatter([xlim[0]], [ylim[0]], marker=" ")
        # Same sizing and theme calls as PlotextPlot.render, then layout only.
        plt.plotsize(width, height)
        plt._set_size(width, height)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        plt._set_sizes()
        plt._build_matrix()
        matrix = plt.monitor.matrix
        cols, rows = len(matrix.Cols_canvas), len(matrix.Rows_canvas)
        painted = 0
        if cols >= 2 and rows >= 2:
            grid = CanvasGrid(xlim, ylim, cols, rows)
            for layer in self._layers(grid):
                painted += self._paint(matrix, layer)
        self.last_frame_points = painted
        return matrix_runs(matrix)

    @staticmethod
    def _paint(matrix: object, layer: CellLayer) -> int:
        col0, row0 = matrix.Cols_canvas.start, matrix.Rows_canvas.start
        style = layer.style or NO_STYLE
        count = len(layer)
        glyphs = layer.glyphs if isinstance(layer.glyphs, list) else [layer.glyphs] * count
        colours = layer.colours if isinstance(layer.colours, list) else [layer.colours] * count
        marker, foreground, styles = matrix.marker, matrix.fullground, matrix.style
        for col, row, glyph, colour in zip(layer.cols.tolist(), layer.rows.tolist(), glyphs, colours):
            marker[row0 + row][col0 + col] = glyph
            foreground[row0 + row][col0 + col] = colour
            styles[row0 + row][col0 + col] = style
        return count

    def _prepare_axes(self, width: int, height: int) -> tuple[tuple[float, float], tuple[float, float]]:
        """Subclass hook: title, limits and ticks on ``self.plt``; returns (xlim, ylim)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _prepare_axes")

    def _layers(self, grid: CanvasGrid) -> list[CellLayer]:
        """Subclass hook: the data layers for this canvas, bottom first."""
        raise NotImplementedError(f"{type(self).__name__} must implement _layers")

    def _set_axes(
        self,
        width: int,
        height: int,
        xlim: tuple[float, float],
        ylim: tuple[float, float],
        title: str,
        *,
        y_log: bool = False,
    ) -> None:
        """Set limits, ticks and title on ``self.plt``. With ``y_log`` the y data are
        log10 values and tick labels show 10**tick."""
        x_ticks, x_labels = tick_positions(*xlim, max(2, width // 14))
        y_ticks, y_labels = tick_positions(*ylim, max(2, height // 5))
        if y_log:
            y_labels = [format_tick(10.0**tick) for tick in y_ticks]
        plt = self.plt
        plt.title(title or None)
        plt.xlim(*xlim)
        plt.ylim(*ylim)
        plt.xticks(x_ticks, x_labels)
        plt.yticks(y_ticks, y_labels)


def cells_layer(cells: BrailleCells, colour: PlotColor, style: str | None = None) -> CellLayer:
    """All of ``cells`` in one colour (and style)."""
    return CellLayer(cells.cols, cells.rows, cells.glyphs, colour, style)


def marker_layer(
    points: np.ndarray, grid: CanvasGrid, marker: str, colour: PlotColor, style: str | None = None, *, pin_to_edge: bool = False
) -> CellLayer:
    """One marker per finite point, in its cell; off-view points are dropped
    (or, with ``pin_to_edge``, pinned to the nearest border cell so they stay visible)."""
    points = as_points(points)
    points = points[np.isfinite(points).all(axis=1)]
    empty = np.empty(0, dtype=np.int64)
    if len(points) == 0:
        return CellLayer(empty, empty, marker, colour, style)
    (x0, x1), (y0, y1) = grid.xlim, grid.ylim
    with np.errstate(over="ignore", invalid="ignore"):
        col = 0.5 + (grid.cols - 1) * (points[:, 0] - x0) / (x1 - x0)
        row = 0.5 + (grid.rows - 1) * (points[:, 1] - y0) / (y1 - y0)
    if pin_to_edge:
        col, row = np.clip(col, 0, grid.cols - 0.5), np.clip(row, 0, grid.rows - 0.5)
    inside = (col >= 0) & (col < grid.cols) & (row >= 0) & (row < grid.rows)
    cells = np.unique(np.floor(col[inside]).astype(np.int64) * grid.rows + np.floor(row[inside]).astype(np.int64))
    return CellLayer(cells // grid.rows, cells % grid.rows, marker, colour, style)


@dataclass
class _PathRaster:
    """The dots one start point's path has lit so far, and a copy of the points behind them."""

    grid: CanvasGrid
    mask: np.ndarray
    points: np.ndarray = field(default_factory=lambda: np.empty((64, 2)))
    length: int = 0
    last_finite: np.ndarray | None = None

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
        dot_mask(rasterize_polyline(decimated, grid), grid, self.mask)
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
        self._level_cache: OrderedDict[tuple, CellLayer] = OrderedDict()
        self._path_rasters: dict[tuple[str, int], _PathRaster] = {}

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
    ) -> None:
        """Use ``levels`` (traced for the view ``xlim x ylim``) and show that view.

        ``key`` identifies surface + view: while it stays the same, the
        rasterised level lines are reused for each pane size.
        """
        self._xlim, self._ylim = check_limits("xlim", xlim), check_limits("ylim", ylim)
        if key != self._levels_key:
            self._levels_key = key
            self._levels = list(levels)
        self._minima = as_points(np.empty((0, 2)) if minima is None else minima, "minima")
        self._data_changed()

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

    def _level_layer(self, grid: CanvasGrid) -> CellLayer:
        cache_key = (self._levels_key, grid)
        cached = self._level_cache.get(cache_key)
        if cached is not None:
            self._level_cache.move_to_end(cache_key)
            return cached
        self.level_point_builds += 1
        dots, tags = [np.empty((0, 2), dtype=np.int64)], [np.empty(0, dtype=np.int64)]
        for index, line in enumerate(self._levels):
            for segment in line.segments:
                segment_dots = rasterize_polyline(segment, grid)
                dots.append(segment_dots)
                tags.append(np.full(len(segment_dots), index, dtype=np.int64))
        cells = braille_cells(np.concatenate(dots), grid, np.concatenate(tags))
        ramp = np.asarray(LEVEL_COLOURS)
        shade = np.clip((cells.sources * len(ramp)) // max(len(self._levels), 1), 0, len(ramp) - 1)
        layer = CellLayer(cells.cols, cells.rows, cells.glyphs, [int(c) for c in ramp[shade]])
        self._level_cache[cache_key] = layer
        while len(self._level_cache) > self.LEVEL_CACHE_SIZE:
            self._level_cache.popitem(last=False)
        return layer

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

    def _layers(self, grid: CanvasGrid) -> list[CellLayer]:
        layers = [
            self._level_layer(grid),
            marker_layer(self._minima, grid, MINIMUM_MARKER, MINIMUM_COLOUR, "bold"),
        ]
        # Selected lane last, so it is drawn over the others.
        lanes = sorted(self._trajectories, key=lambda lane: lane.selected)
        live_keys = set()
        for lane in lanes:
            mask = np.zeros((grid.dot_cols, grid.dot_rows), dtype=bool)
            for index, path in enumerate(lane.paths):
                live_keys.add((lane.name, index))
                mask |= self._path_mask((lane.name, index), path, grid)
            layers.append(cells_layer(mask_cells(mask, grid), lane.color, "bold" if lane.selected else None))
        for key in set(self._path_rasters) - live_keys:
            del self._path_rasters[key]
        for lane in lanes:
            current = as_points(lane.current, f"current of lane {lane.name!r}")
            diverged = np.asarray(lane.diverged, dtype=bool).ravel()
            marker = SELECTED_CURRENT_MARKER if lane.selected else CURRENT_MARKER
            layers.append(marker_layer(current[~diverged], grid, marker, lane.color, "bold"))
            layers.append(
                marker_layer(self._frozen_points(lane), grid, DIVERGED_MARKER, lane.color, "bold", pin_to_edge=True)
            )
        return layers
