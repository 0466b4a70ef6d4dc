"""The plot base class: a PlotextPlot whose data are painted as braille cells into plotext's
character matrix, and the only module that touches plotext's private API.

plotext lays out the figure (frame, ticks, title, theme colours) from ``self.plt``, which holds
no data points; the subclass's layers, already reduced to one glyph per terminal cell, are then
painted into the matrix inside the canvas plotext reports, and the matrix becomes segments
directly. Each widget owns its ``self.plt`` (never the global ``plotext``) and the theme stays
on "auto". The figure is rebuilt only when the data, size or theme changed since the last build.

plotext's layout internals used here (``_set_size``, ``_set_sizes``, ``_build_matrix``,
``monitor.matrix`` and ``_utility``) are private: the plotext and textual-plotext versions are
pinned to the tested range in pyproject.toml.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotext._utility as plotext_utility
from rich.ansi import AnsiDecoder
from rich.segment import Segment
from rich.style import Style
from rich.text import Span, Text
from textual.app import RenderResult
from textual.geometry import Region
from textual.strip import Strip
from textual.style import Style as VisualStyle
from textual_plotext import PlotextPlot

from sgdtui.ui.widgets.plotting import BrailleCells, CanvasGrid, as_points, format_tick, tick_positions

NO_STYLE = plotext_utility.no_color  # plotext's "nothing" value for colours and styles

PlotColor = str | int | tuple

@dataclass(frozen=True)
class CellLayer:
    """Glyphs to paint at canvas cells (column, row from the bottom), one colour or one per cell.
    ``backgrounds`` (one or one per cell) recolours the cells' background too (shading); glyphs
    of later layers keep the background an earlier layer gave the cell."""

    cols: np.ndarray
    rows: np.ndarray
    glyphs: list[str] | str | None
    colours: list[PlotColor] | PlotColor | None
    style: str | None = None
    backgrounds: list[PlotColor] | PlotColor | None = None

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
    ALLOW_SELECT = False  # a plot is a picture: nothing to select, so strips need no cell offsets

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
        self.canvas: tuple[CanvasGrid, int, int, int] | None = None  # the last frame's canvas and where it sits
        self._axes: tuple = ("", (), (), (), (), None, None)  # title, ticks and limits set by _set_axes
        self._axes_cache: dict[tuple, _Matrix] = {}
        self._strip_lines: list[Runs] = []

    def data_at(self, x: int, y: int) -> tuple[float, float] | None:
        """The data coordinates of the canvas cell at widget offset (x, y) (a mouse click), or None
        off the canvas."""
        if self.canvas is None:
            return None
        grid, col0, row0, height = self.canvas
        col, row = x - col0, height - 1 - y - row0  # matrix rows count from the bottom
        if not (0 <= col < grid.cols and 0 <= row < grid.rows):
            return None
        xs, ys = grid.cell_centres(np.array([col]), np.array([row]))
        return float(xs[0]), float(ys[0])

    def _data_changed(self) -> None:
        """Build the new frame now and repaint only the lines that changed: a moving point or a
        growing curve touches a few rows, and the compositor then re-renders only those."""
        self._generation += 1
        width, height = self.size.width, self.size.height
        if not self.is_mounted or width < self.MIN_WIDTH or height < self.MIN_HEIGHT or self._rendered_key is None:
            self.refresh()
            return
        before = self._rendered_lines
        self._frame_lines()
        changed = [y for y, (old, new) in enumerate(zip(before, self._rendered_lines)) if old != new]
        if len(before) != len(self._rendered_lines) or len(changed) > height // 2:
            self.refresh()
        else:
            for y in changed:
                self.refresh(Region(0, y, width, 1))

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
        with the widget's as Content would combine them, so the picture is the same. A line whose
        runs did not change since the last frame keeps its strip."""
        base = self.visual_style
        width = self.size.width
        lines = self._frame_lines()
        if lines is None or not 0 <= y < len(lines):
            return Strip.blank(width, base.rich_style)
        key = (self._rendered_key, base)
        cached_key, strips = self._strips
        if cached_key != key:
            strips = self._lines_to_strips(lines, base, width, cached_key)
            self._strips = (key, strips)
        return strips[y]

    def _lines_to_strips(self, lines: list[Runs], base: VisualStyle, width: int, previous_key) -> list[Strip]:
        # One rich style per colour run kind, shared by every segment: a plot has no selectable
        # text (ALLOW_SELECT is off), so segments carry no per-cell offsets, and building a
        # frame's strips costs a dict lookup per run instead of a Style per run.
        ansi_theme = self.app.ansi_theme
        same_look = previous_key is not None and previous_key[1] == base and previous_key[0][1:] == self._rendered_key[1:]
        old_lines, old_strips = (self._strip_lines, self._strips[1]) if same_look else ([], [])
        combined: dict[Style | None, Style] = {None: base.rich_style}
        strips = []
        for y, runs in enumerate(lines):
            if y < len(old_lines) and old_lines[y] == runs:
                strips.append(old_strips[y])
                continue
            segments = []
            for chars, style in runs:
                rich_style = combined.get(style)
                if rich_style is None:
                    rich_style = combined[style] = (base + VisualStyle.from_rich_style(style, ansi_theme)).rich_style
                segments.append(Segment(chars, rich_style))
            strips.append(Strip(segments).adjust_cell_length(width, base.rich_style))
        self._strip_lines = lines
        return strips

    def _build_frame(self, width: int, height: int) -> list[Runs]:
        xlim, ylim = self._prepare_axes(width, height)
        matrix = self._axes_matrix(width, height, xlim, ylim)
        cols, rows = len(matrix.Cols_canvas), len(matrix.Rows_canvas)
        painted = 0
        self.canvas = None
        if cols >= 2 and rows >= 2:
            grid = CanvasGrid(xlim, ylim, cols, rows)
            self.canvas = (grid, matrix.Cols_canvas.start, matrix.Rows_canvas.start, height)
            for layer in self._layers(grid):
                painted += self._paint(matrix, layer)
        self.last_frame_points = painted
        return matrix_runs(matrix)

    def _axes_matrix(self, width: int, height: int, xlim, ylim) -> "_Matrix":
        """A fresh copy of the empty figure (frame, ticks, title, theme) for these axes: plotext
        lays it out once per distinct axes, not once per frame."""
        key = (width, height, self.app.theme, self._axes)
        base = self._axes_cache.get(key)
        if base is None:
            title, x_ticks, x_labels, y_ticks, y_labels, _, _ = self._axes
            plt = self.plt
            plt.clear_figure()  # a full reset: nothing from an earlier figure may leak into this one
            plt.title(title or None)
            plt.xlim(*xlim)
            plt.ylim(*ylim)
            plt.xticks(x_ticks, x_labels)
            plt.yticks(y_ticks, y_labels)
            # An invisible point keeps the lower x axis (and its tick labels) in use.
            plt.scatter([xlim[0]], [ylim[0]], marker=" ")
            # Same sizing and theme calls as PlotextPlot.render, then layout only.
            plt.plotsize(width, height)
            plt._set_size(width, height)
            plt.theme(self._get_plotext_theme_name(self.app.theme))
            plt._set_sizes()
            plt._build_matrix()
            base = _Matrix.copy_of(plt.monitor.matrix)
            if len(self._axes_cache) >= 8:
                self._axes_cache.pop(next(iter(self._axes_cache)))
            self._axes_cache[key] = base
        return base.copy()

    @staticmethod
    def _paint(matrix: object, layer: CellLayer) -> int:
        col0, row0 = matrix.Cols_canvas.start, matrix.Rows_canvas.start
        count = len(layer)
        cols, rows = layer.cols.tolist(), layer.rows.tolist()
        if layer.backgrounds is not None:
            backgrounds = layer.backgrounds if isinstance(layer.backgrounds, list) else [layer.backgrounds] * count
            background = matrix.background
            for col, row, colour in zip(cols, rows, backgrounds):
                background[row0 + row][col0 + col] = colour
        if layer.glyphs is None:
            return count
        style = layer.style or NO_STYLE
        glyphs = layer.glyphs if isinstance(layer.glyphs, list) else [layer.glyphs] * count
        colours = layer.colours if isinstance(layer.colours, list) else [layer.colours] * count
        marker, foreground, styles = matrix.marker, matrix.fullground, matrix.style
        for col, row, glyph, colour in zip(cols, rows, glyphs, colours):
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
        x_log: bool = False,
    ) -> None:
        """Set limits, ticks and title on ``self.plt``. With ``y_log`` (``x_log``) the y (x) data
        are log10 values and tick labels show 10**tick."""
        x_ticks, x_labels = tick_positions(*xlim, max(2, width // 14))
        y_ticks, y_labels = tick_positions(*ylim, max(2, height // 5))
        if x_log:
            x_labels = [format_tick(10.0**tick) for tick in x_ticks]
        if y_log:
            y_labels = [format_tick(10.0**tick) for tick in y_ticks]
        if title and len(title) > width - 2:  # plotext drops a title that does not fit: shorten it instead
            title = title[: max(width - 3, 1)] + "…"
        # Laid out by plotext only when these change (see _axes_matrix).
        self._axes = (title, tuple(x_ticks), tuple(x_labels), tuple(y_ticks), tuple(y_labels), xlim, ylim)


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




class _Matrix:
    """A copy of plotext's laid-out character matrix: what ``_paint`` writes into and
    ``matrix_runs`` reads (markers, colours, styles per cell, and where the canvas sits)."""

    __slots__ = ("Rows", "Cols_canvas", "Rows_canvas", "marker", "fullground", "style", "background")

    @classmethod
    def copy_of(cls, matrix: object) -> "_Matrix":
        out = cls()
        out.Rows, out.Cols_canvas, out.Rows_canvas = list(matrix.Rows), matrix.Cols_canvas, matrix.Rows_canvas
        out.marker = [row[:] for row in matrix.marker]
        out.fullground = [row[:] for row in matrix.fullground]
        out.style = [row[:] for row in matrix.style]
        out.background = [row[:] for row in matrix.background]
        return out

    def copy(self) -> "_Matrix":
        return _Matrix.copy_of(self)
