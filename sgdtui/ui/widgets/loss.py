"""Loss-versus-step curves (also train/val loss or accuracy in MLP mode).

Each curve is min/max-decimated to the pane's braille columns (spikes stay
visible) and painted as braille cells (see ``plot_base.BraillePlot``), so the
frame cost does not grow with the run length. Log scale is applied here (log10, non-positive
values skipped), not by plotext, whose log mode re-applies itself on every
build.

An honest scale: a diverged lane's curve never sets the limits (it is drawn up to its divergence,
clipped, with a ✗ at that step); with ``log_scale=None`` the scale is chosen from the live range
(log when it spans more than three decades). The legend is not drawn over the data: the view puts
a ``Legend`` beside the pane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from sgdtui.ui.widgets.plot_base import BraillePlot, CellLayer, PlotColor, cells_layer, marker_layer
from sgdtui.ui.widgets.plotting import (
    DOTS_X,
    CanvasGrid,
    PlotDataError,
    braille_cells,
    decimate_series,
    log_safe,
    rasterize_polyline,
)

LEGEND_SWATCH = "▬"
MARK_GLYPH = "┊"
DIVERGED_MARKER = "✗"
AUTO_LOG_DECADES = 3.0  # auto scale: log when the live curves span more than this many decades


@dataclass(frozen=True)
class LossSeries:
    """One curve: ``values[i]`` measured at ``steps[i]``; ``diverged_at``: the step at which the
    lane diverged (its values from there on are not drawn, and none of them sets the scale)."""

    name: str
    color: PlotColor  # a plotext colour
    steps: np.ndarray
    values: np.ndarray
    selected: bool = False
    diverged_at: int | None = None


def wants_log(series: Sequence[LossSeries]) -> bool:
    """The automatic scale: log when every live value is positive and they span > 3 decades."""
    live = [np.asarray(one.values, dtype=np.float64) for one in series if one.diverged_at is None]
    values = np.concatenate([v[np.isfinite(v)] for v in live]) if live else np.empty(0)
    if values.size < 2 or values.min() <= 0:
        return False
    return float(np.log10(values.max() / values.min())) > AUTO_LOG_DECADES


def _padded(low: float, high: float) -> tuple[float, float]:
    """Limits a little wider than the data, never empty (a flat curve gets a unit-ish band),
    rounded outwards to a nice step so they hold still while the curves move inside them (the
    figure's axes are laid out again only when the limits change)."""
    if high <= low:
        half = max(abs(low) * 0.1, 0.5)
        low, high = low - half, high + half
    pad = (high - low) * 0.05
    low, high = low - pad, high + pad
    step = _nice_step((high - low) / 4)
    return math.floor(low / step) * step, math.ceil(high / step) * step


def _nice_step(raw: float) -> float:
    """The 1, 2 or 5 x 10^k at or above ``raw``."""
    magnitude = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw * (1 - 1e-12))


def _step_range(low: float, high: float) -> tuple[float, float]:
    """The x limits of a run so far: from its first step to the next quarter of a decade past its
    last, so a growing run moves the axis in occasional jumps, not every frame."""
    if high <= low:
        return low - 1.0, low + 1.0
    span = high - low
    quarter = 10.0 ** math.floor(math.log10(span)) / 4
    return low, low + math.ceil(span / quarter) * quarter


class LossPlot(BraillePlot):
    """Curves against step, optionally on a log10 y scale; the y quantity is named by ``y_label``."""

    def __init__(
        self,
        y_label: str = "loss",
        *,
        name: str | None = None,
        id: str | None = None,  # noqa: A002 - Textual's own parameter name
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.y_label = y_label
        self._series: tuple[LossSeries, ...] = ()
        self._log_scale = False
        self._auto = False
        self._title = ""
        self._curves: list[tuple[LossSeries, np.ndarray, np.ndarray]] = []
        self._x_log = False
        self._marks: tuple[tuple[float, PlotColor], ...] = ()
        self.show_legend = False  # a legend inside the canvas (the playground's views put one beside it)

    @property
    def log_scale(self) -> bool:
        """The scale in use (after the automatic choice)."""
        return self._log_scale

    def show(self, series: Sequence[LossSeries], log_scale: bool | None, title: str = "",
             y_label: str | None = None, *, x_log: bool = False,
             marks: Sequence[tuple[float, PlotColor]] = ()) -> None:
        """Redraw with these curves (selected one drawn last, in bold); ``log_scale`` None chooses
        the scale from the live range. With ``x_log`` the series' x values (``steps``) are drawn on
        a log10 axis (the range test's lr); ``marks`` are vertical lines at x values."""
        for one in series:
            if np.shape(one.steps) != np.shape(one.values):
                raise PlotDataError(
                    f"series {one.name!r}: steps shape {np.shape(one.steps)} != values shape {np.shape(one.values)}"
                )
        self._series = tuple(series)
        self._auto = log_scale is None
        self._log_scale = wants_log(self._series) if log_scale is None else bool(log_scale)
        self._title = title
        self._x_log = x_log
        self._marks = tuple(marks)
        if y_label is not None:
            self.y_label = y_label
        self._data_changed()

    def _heading(self) -> str:
        scale = ("log" if self._log_scale else "") + (", auto" if self._auto and self._log_scale else "")
        quantity = f"{self.y_label} ({scale})" if scale else self.y_label
        return f"{self._title} · {quantity}" if self._title else quantity

    def _finite_curves(self) -> list[tuple[LossSeries, np.ndarray, np.ndarray]]:
        curves = []
        for one in self._series:
            steps = np.asarray(one.steps, dtype=np.float64).ravel()
            steps = log_safe(steps) if self._x_log else steps
            values = np.asarray(one.values, dtype=np.float64).ravel()
            values = log_safe(values) if self._log_scale else values
            finite = np.isfinite(steps) & np.isfinite(values)
            if one.diverged_at is not None:
                finite &= steps < one.diverged_at
            curves.append((one, steps[finite], values[finite]))
        return curves

    def _prepare_axes(self, width: int, height: int) -> tuple[tuple[float, float], tuple[float, float]]:
        self._curves = self._finite_curves()
        all_steps = np.concatenate([c[1] for c in self._curves]) if self._curves else np.empty(0)
        live = [c for c in self._curves if c[0].diverged_at is None and c[2].size]
        # Diverged lanes never set the scale (a 1e22 just before blowing up flattens every live curve).
        scale_values = np.concatenate([c[2] for c in live]) if live else (
            np.concatenate([c[2] for c in self._curves]) if self._curves else np.empty(0))
        if all_steps.size and scale_values.size:
            low, high = float(all_steps.min()), float(all_steps.max())
            xlim = _padded(low, high) if self._x_log else _step_range(low, high)
            if not live:  # everything diverged: a robust range, not the blow-up
                scale_values = scale_values[scale_values <= np.quantile(scale_values, 0.9)]
            ylim = _padded(float(scale_values.min()), float(scale_values.max()))
        else:
            xlim, ylim = (0.0, 1.0), (0.0, 1.0)
        self._set_axes(width, height, xlim, ylim, self._heading(), y_log=self._log_scale, x_log=self._x_log)
        return xlim, ylim

    def _layers(self, grid: CanvasGrid) -> list[CellLayer]:
        layers = []
        for one, steps, values in sorted(self._curves, key=lambda c: c[0].selected):
            if steps.size == 0:
                continue
            # Two bucket extremes per braille column keep spikes and dips.
            steps_kept, values_kept = decimate_series(steps, values, max_points=2 * DOTS_X * grid.cols + 2)
            dots = rasterize_polyline(np.stack([steps_kept, values_kept], axis=1), grid)
            layers.append(cells_layer(braille_cells(dots, grid), one.color, "bold" if one.selected else None))
            if one.diverged_at is not None:  # where it left: at its last drawn value, pinned into view
                mark = np.array([[float(one.diverged_at), float(values_kept[-1])]])
                layers.append(marker_layer(mark, grid, DIVERGED_MARKER, one.color, "bold", pin_to_edge=True))
        for x, colour in self._marks:
            x = math.log10(x) if self._x_log and x > 0 else x
            (x0, x1) = grid.xlim
            if not (math.isfinite(x) and x0 <= x <= x1) or x1 <= x0:
                continue
            col = int(0.5 + (grid.cols - 1) * (x - x0) / (x1 - x0))
            rows = np.arange(grid.rows, dtype=np.int64)
            layers.insert(0, CellLayer(np.full(grid.rows, col, dtype=np.int64), rows, MARK_GLYPH, colour, "bold"))
        if self.show_legend:
            layers.extend(self._legend(grid))
        return layers

    def _legend(self, grid: CanvasGrid) -> list[CellLayer]:
        """'▬ name' per curve in the canvas's top-left corner, when there is room and more than one curve."""
        names = [one for one in self._series]
        longest = max((len(one.name) for one in names), default=0)
        if len(names) < 2 or grid.rows < len(names) + 2 or grid.cols < longest + 4:
            return []
        layers = []
        for line, one in enumerate(names):
            text = f"{LEGEND_SWATCH} {one.name}"
            cols = np.arange(len(text), dtype=np.int64)
            rows = np.full(len(text), grid.rows - 1 - line, dtype=np.int64)
            layers.append(CellLayer(cols, rows, list(text), one.color, "bold" if one.selected else None))
        return layers
