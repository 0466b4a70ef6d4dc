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
from typing import Hashable

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

from sgdtui.ui.widgets.plotting import BRAILLE_CHARACTERS, BrailleCells, CanvasGrid, as_points, format_tick, tick_positions

NO_STYLE = plotext_utility.no_color  # plotext's "nothing" value for colours and styles

PlotColor = str | int | tuple

@dataclass(frozen=True)
class CellLayer:
    """Glyphs to paint at canvas cells (column, row from the bottom), one colour or one per cell.
    ``backgrounds`` (one or one per cell) recolours the cells' background too (shading); glyphs
    of later layers keep the background an earlier layer gave the cell."""

    cols: np.ndarray
    rows: np.ndarray
    glyphs: list[str] | np.ndarray | str | None  # an array: one "<U1" character per cell
    colours: list[PlotColor] | PlotColor | None
    style: str | None = None
    backgrounds: list[PlotColor] | PlotColor | np.ndarray | None = None  # an array: (cells, 3) RGB

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


# A cell's look is one int64: the interned ids of its foreground, style and background, so that
# runs of equal looks are found by comparing integer arrays (numpy) rather than tuples per cell.
_ID_BITS = 21
_ID_LIMIT = 1 << _ID_BITS


class _Canvas:
    """The figure as arrays, rows counted from the bottom as in plotext: a glyph per cell
    (``<U1``, or ``object`` should a glyph not be one character) and the interned ids of each
    cell's foreground, style and background; where plotext's data canvas sits in it."""

    __slots__ = ("glyph", "fg", "st", "bg", "col0", "row0", "cols", "rows")

    def copy(self) -> "_Canvas":
        out = _Canvas()
        out.glyph, out.fg, out.st, out.bg = self.glyph.copy(), self.fg.copy(), self.st.copy(), self.bg.copy()
        out.col0, out.row0, out.cols, out.rows = self.col0, self.row0, self.cols, self.rows
        return out


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
        self._axes_cache: dict[tuple, _Canvas] = {}
        self._base_cache: dict[tuple, tuple[_Canvas, int]] = {}  # axes + base layers, painted
        self._strip_lines: list[Runs] = []
        self._value_ids: dict[tuple, int] = {}  # (type, plotext colour or style) -> id
        self._values: list = []
        self._looks: dict[int, Style | None] = {}  # a cell's look (see _ID_BITS) -> its rich style
        self._last_built: tuple | None = None  # (key minus generation, look codes, glyphs) of the last frame

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
        # A line that did not change is the very same list (see _runs).
        changed = [y for y, (old, new) in enumerate(zip(before, self._rendered_lines)) if old is not new]
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
            self._rendered_lines = self._build_frame(width, height, key[1:])
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
            if y < len(old_lines) and old_lines[y] is runs:
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

    def _build_frame(self, width: int, height: int, look: tuple) -> list[Runs]:
        xlim, ylim = self._prepare_axes(width, height)
        axes_key = (width, height, self.app.theme, self._axes)
        axes = self._axes_canvas(axes_key, width, height, xlim, ylim)
        self.canvas = None
        if axes.cols < 2 or axes.rows < 2:
            canvas, painted = axes, 0
        else:
            grid = CanvasGrid(xlim, ylim, axes.cols, axes.rows)
            self.canvas = (grid, axes.col0, axes.row0, height)
            canvas, painted = self._base_canvas(axes_key, axes, grid)
            canvas = canvas.copy()
            for layer in self._layers(grid):
                painted += self._paint(canvas, layer)
        self.last_frame_points = painted
        return self._runs(canvas, look)

    def _base_layers(self, grid: CanvasGrid) -> tuple[Hashable, list[CellLayer]] | None:
        """Subclass hook: layers under every other that stay the same across frames (shading, level
        lines), with a key that changes when they do; painted once per key and axes, not per frame."""
        return None

    def _base_canvas(self, axes_key: tuple, axes: _Canvas, grid: CanvasGrid) -> tuple[_Canvas, int]:
        base = self._base_layers(grid)
        if base is None:
            return axes, 0
        key = (axes_key, base[0])
        cached = self._base_cache.get(key)
        if cached is None:
            canvas, painted = axes.copy(), 0
            for layer in base[1]:
                painted += self._paint(canvas, layer)
            if len(self._base_cache) >= 8:
                self._base_cache.pop(next(iter(self._base_cache)))
            cached = self._base_cache[key] = (canvas, painted)
        return cached

    def _axes_canvas(self, key: tuple, width: int, height: int, xlim, ylim) -> _Canvas:
        """The empty figure (frame, ticks, title, theme) for these axes: plotext lays it out once
        per distinct axes, not once per frame."""
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
            base = self._canvas_of(plt.monitor.matrix)
            if len(self._axes_cache) >= 8:
                self._axes_cache.pop(next(iter(self._axes_cache)))
            self._axes_cache[key] = base
        return base

    def _canvas_of(self, matrix: object) -> _Canvas:
        """plotext's laid-out character matrix as a _Canvas."""
        canvas = _Canvas()
        rows = [matrix.marker[row] for row in matrix.Rows]
        one_char = all(len(glyph) == 1 for row in rows for glyph in row)
        canvas.glyph = np.array(rows, dtype="<U1" if one_char else object)  # object: each cell's string kept whole
        intern = self._intern
        for name, source in (("fg", matrix.fullground), ("st", matrix.style), ("bg", matrix.background)):
            setattr(canvas, name, np.array([[intern(v) for v in source[row]] for row in matrix.Rows],
                                           dtype=np.int64).reshape(canvas.glyph.shape))
        canvas.col0, canvas.row0 = matrix.Cols_canvas.start, matrix.Rows_canvas.start
        canvas.cols, canvas.rows = len(matrix.Cols_canvas), len(matrix.Rows_canvas)
        return canvas

    def _intern(self, value: object) -> int:
        """The id of a plotext colour or style value (type included: 1 and True stay apart)."""
        key = (type(value), value)
        index = self._value_ids.get(key)
        if index is None:
            index = self._value_ids[key] = len(self._values)
            if index >= _ID_LIMIT:
                raise OverflowError("too many distinct plot colours")
            self._values.append(value)
        return index

    def _ids(self, values, count: int) -> np.ndarray | int:
        if isinstance(values, np.ndarray):  # (count, 3) RGB rows: each distinct colour interned once
            rgb = values.astype(np.int64)
            keys = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
            distinct, inverse = np.unique(keys, return_inverse=True)
            intern = self._intern
            ids = np.fromiter((intern((k >> 16, (k >> 8) & 255, k & 255)) for k in distinct.tolist()),
                              dtype=np.int64, count=len(distinct))
            return ids[inverse.reshape(-1)]
        if isinstance(values, list):
            intern = self._intern
            return np.fromiter((intern(v) for v in values), dtype=np.int64, count=count)
        return self._intern(values)

    def _paint(self, canvas: _Canvas, layer: CellLayer) -> int:
        count = len(layer)
        if count == 0:
            return 0
        rows, cols = canvas.row0 + np.asarray(layer.rows), canvas.col0 + np.asarray(layer.cols)
        if layer.backgrounds is not None:
            canvas.bg[rows, cols] = self._ids(layer.backgrounds, count)
        if layer.glyphs is None:
            return count
        glyphs = layer.glyphs
        if isinstance(glyphs, np.ndarray) and (glyphs.dtype != np.dtype("<U1") or canvas.glyph.dtype == object):
            glyphs = glyphs.tolist()
        if isinstance(glyphs, list):
            glyphs = np.array(glyphs, dtype=object if canvas.glyph.dtype == object else None)
            if glyphs.dtype != object and (glyphs.dtype.itemsize != 4 or (glyphs == "").any()):
                glyphs = glyphs.astype(object)
        if canvas.glyph.dtype != object and (
            getattr(glyphs, "dtype", None) == object or (isinstance(glyphs, str) and len(glyphs) != 1)
        ):
            canvas.glyph = canvas.glyph.astype(object)  # a glyph of other than one character: kept whole
        canvas.glyph[rows, cols] = glyphs
        canvas.fg[rows, cols] = self._ids(layer.colours, count)
        canvas.st[rows, cols] = self._intern(layer.style or NO_STYLE)
        return count

    def _runs(self, canvas: _Canvas, look: tuple) -> list[Runs]:
        """The canvas as lines (top first) of runs of equal colours. A line whose glyphs and looks
        equal the last built frame's (same size and theme) is that frame's very list, so callers
        find changed lines by identity."""
        codes = ((canvas.fg << (2 * _ID_BITS)) | (canvas.st << _ID_BITS) | canvas.bg)[::-1]
        glyph = canvas.glyph[::-1]
        height, width = codes.shape
        last = self._last_built
        if last is not None and last[0] == look and last[1].shape == codes.shape and last[2].dtype == glyph.dtype:
            same = ((last[1] == codes).all(axis=1) & (last[2] == glyph).all(axis=1)).tolist()
            previous = self._rendered_lines
        else:
            same, previous = [False] * height, []
        self._last_built = (look, codes, glyph)
        starts = np.empty((height, width), dtype=bool)
        starts[:, :1] = True
        np.not_equal(codes[:, 1:], codes[:, :-1], out=starts[:, 1:])
        one_char = glyph.dtype != object
        strings = np.ascontiguousarray(glyph).view(f"<U{width}").ravel().tolist() if one_char and width else None
        looks, lines = self._looks, []
        for y in range(height):
            if same[y] and y < len(previous):
                lines.append(previous[y])
                continue
            bounds = np.flatnonzero(starts[y]).tolist()
            row_codes = codes[y, bounds].tolist()
            bounds.append(width)
            text = strings[y] if one_char else glyph[y].tolist()
            runs: Runs = []
            for index, code in enumerate(row_codes):
                style = looks.get(code, False)
                if style is False:
                    style = looks[code] = self._look_style(code)
                chars = text[bounds[index]:bounds[index + 1]]
                runs.append((chars if one_char else "".join(chars), style))
            lines.append(runs)
        return lines

    def _look_style(self, code: int) -> Style | None:
        mask = _ID_LIMIT - 1
        values = self._values
        style = _rich_style(values[code >> (2 * _ID_BITS)], values[(code >> _ID_BITS) & mask], values[code & mask])
        return style or None

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
    # The glyphs as a character array straight from the codes: painting then converts nothing.
    glyphs = cells.glyphs if cells.codes is None else BRAILLE_CHARACTERS[cells.codes]
    return CellLayer(cells.cols, cells.rows, glyphs, colour, style)


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
