"""A heatmap of a sweep measure over two axes (or a curve over one), with a cursor, diverged cells
marked, theory overlays and a colour bar. Pure rendering: the data comes in with ``show``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

# viridis, sampled: dark = low (good for losses), bright = high
PALETTE = ("#440154", "#482878", "#3e4a89", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58",
           "#b5de2b", "#fde725")
DIVERGED = Style(color="#ff5555", bgcolor="#1a1a1a", bold=True)
MISSING = Style(color="#666666", bgcolor="#1a1a1a")
CURSOR = Style(reverse=True, bold=True)


@dataclass
class HeatmapData:
    """``values`` (ny, nx) with NaN where a cell has no value; ``diverged`` (ny, nx) bool;
    ``theory`` (ny, nx) bool marks cells on a theory line (drawn as │); a 1-axis sweep has ny = 1
    and may bring ``theory_curve`` (nx,) to draw next to the measured curve."""

    values: np.ndarray
    diverged: np.ndarray
    x_label: str
    x_values: tuple
    y_label: str = ""
    y_values: tuple = ()
    measure: str = ""
    log_colour: bool = True
    theory: np.ndarray | None = None
    theory_curve: np.ndarray | None = None
    legend: str = ""
    cell_text: dict = field(default_factory=dict)


def colour_of(fraction: float) -> str:
    fraction = min(max(fraction, 0.0), 1.0)
    return PALETTE[min(int(fraction * (len(PALETTE) - 1) + 0.5), len(PALETTE) - 1)]


def _fmt(v) -> str:
    if isinstance(v, str):
        return v
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.3g}" if isinstance(v, float) else str(v)


class Heatmap(Widget, can_focus=True):
    """Arrows move the cursor over the cells; enter posts ``Heatmap.Chosen`` for the cell."""

    BINDINGS = [
        Binding("left", "move(-1,0)", "left", show=False), Binding("right", "move(1,0)", "right", show=False),
        Binding("up", "move(0,1)", "up", show=False), Binding("down", "move(0,-1)", "down", show=False),
        Binding("enter", "choose", "open the cell as a lane"),
    ]
    DEFAULT_CSS = "Heatmap { height: 1fr; }"

    cursor: reactive[tuple[int, int]] = reactive((0, 0))

    class Chosen(Message):
        def __init__(self, ix: int, iy: int) -> None:
            super().__init__()
            self.ix, self.iy = ix, iy

    class Moved(Message):
        def __init__(self, ix: int, iy: int) -> None:
            super().__init__()
            self.ix, self.iy = ix, iy

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.data: HeatmapData | None = None

    def show(self, data: HeatmapData | None) -> None:
        self.data = data
        if data is not None:
            ny, nx = data.values.shape
            cx, cy = self.cursor
            self.cursor = (min(cx, nx - 1), min(cy, ny - 1))
        self.refresh()

    # --- cursor ------------------------------------------------------------------------------
    def action_move(self, dx: int, dy: int) -> None:
        if self.data is None:
            return
        ny, nx = self.data.values.shape
        cx, cy = self.cursor
        self.cursor = (min(max(cx + dx, 0), nx - 1), min(max(cy + dy, 0), ny - 1))
        self.post_message(self.Moved(*self.cursor))
        self.refresh()

    def action_choose(self) -> None:
        if self.data is not None:
            self.post_message(self.Chosen(*self.cursor))

    # --- scales ------------------------------------------------------------------------------
    def colour_range(self) -> tuple[float, float] | None:
        data = self.data
        finite = data.values[np.isfinite(data.values)]
        if data.log_colour:
            finite = finite[finite > 0]
        if not len(finite):
            return None
        lo, hi = float(finite.min()), float(finite.max())
        return lo, hi

    def fraction(self, v: float, lo: float, hi: float) -> float:
        if self.data.log_colour and v > 0 and lo > 0:
            lo, hi, v = math.log10(lo), math.log10(hi), math.log10(v)
        return 0.5 if hi <= lo else (v - lo) / (hi - lo)

    # --- drawing -----------------------------------------------------------------------------
    def render(self) -> Text:
        data = self.data
        if data is None:
            return Text("no sweep yet: set the axes above and press enter", style="dim")
        if data.values.shape[0] == 1 and not data.y_label:
            return self._render_curve()
        return self._render_grid()

    def _render_grid(self) -> Text:
        data = self.data
        ny, nx = data.values.shape
        width, height = self.size.width, self.size.height
        cell_w = max(1, min(3, (width - 14) // max(nx, 1)))
        rows_h = max(1, min(2, (height - 3) // max(ny, 1)))
        span = self.colour_range()
        out = Text()
        cx, cy = self.cursor
        for iy in range(ny - 1, -1, -1):  # the y axis grows upward
            for r in range(rows_h):
                label = _fmt(data.y_values[iy]) if r == 0 and (iy == ny - 1 or iy == 0 or iy == cy) else ""
                out.append(f"{label:>8} ", style="dim")
                for ix in range(nx):
                    out.append(*self._cell(ix, iy, cell_w, span, (ix, iy) == (cx, cy)))
                out.append(self._bar_row(ny * rows_h - 1 - ((ny - 1 - iy) * rows_h + r), ny * rows_h, span))
                out.append("\n")
        axis = f"{'':>8} {_fmt(data.x_values[0])}"
        right = _fmt(data.x_values[-1])
        pad = max(1, nx * cell_w - len(axis) + 9 - len(right))
        out.append(axis + " " * pad + right + "\n", style="dim")
        out.append(f"{'':>8} x: {data.x_label}   y: {data.y_label}   colour: {data.measure}"
                   f"{' (log)' if data.log_colour else ''}   × diverged   │ theory", style="dim")
        if data.legend:
            out.append("\n" + data.legend, style="italic")
        return out

    def _cell(self, ix: int, iy: int, cell_w: int, span, selected: bool) -> tuple[str, Style]:
        data = self.data
        v = data.values[iy, ix]
        on_line = data.theory is not None and bool(data.theory[iy, ix])
        if data.diverged[iy, ix]:
            text, style = "×" * cell_w, DIVERGED
        elif not math.isfinite(v) or span is None or (data.log_colour and v <= 0):
            text, style = "·" * cell_w, MISSING
        else:
            text, style = " " * cell_w, Style(bgcolor=colour_of(self.fraction(v, *span)))
        if on_line:
            text = "│" + text[1:]
            style = style + Style(color="#ffffff", bold=True)
        if selected:
            style = style + CURSOR
            text = "▣" + text[1:] if not data.diverged[iy, ix] else text
        return text, style

    def _bar_row(self, row: int, rows: int, span) -> Text:
        if span is None:
            return Text("")
        lo, hi = span
        frac = row / max(rows - 1, 1)
        text = Text("  ")
        text.append("  ", style=Style(bgcolor=colour_of(frac)))
        if row == rows - 1:
            text.append(f" {_fmt(hi)}", style="dim")
        elif row == 0:
            text.append(f" {_fmt(lo)}", style="dim")
        return text

    def _render_curve(self) -> Text:
        """A one-axis sweep: the measure (●, × diverged) against the axis, theory as ·."""
        data = self.data
        values = data.values[0]
        theory = data.theory_curve
        nx = len(values)
        height = max(4, self.size.height - 4)
        series = [v for v in values if math.isfinite(v)] + ([v for v in theory if math.isfinite(v)] if theory is not None else [])
        if data.log_colour:
            series = [v for v in series if v > 0]
        out = Text()
        if not series:
            out.append("no finite values to draw", style="dim")
            return out
        lo, hi = min(series), max(series)

        def row_of(v):
            if not math.isfinite(v) or (data.log_colour and v <= 0):
                return None
            f = self.fraction(v, lo, hi) if hi > lo else 0.5
            return int(round(f * (height - 1)))

        grid = [[(" ", Style()) for _ in range(nx)] for _ in range(height)]
        if theory is not None:
            for ix, v in enumerate(theory):
                r = row_of(v)
                if r is not None:
                    grid[r][ix] = ("·", Style(color="#ffffff"))
        cx, _ = self.cursor
        for ix, v in enumerate(values):
            if data.diverged[0, ix]:
                grid[height - 1][ix] = ("×", DIVERGED)
                continue
            r = row_of(v)
            if r is not None:
                grid[r][ix] = ("●", Style(color=colour_of(r / max(height - 1, 1))))
        for r in range(height - 1, -1, -1):
            label = _fmt(hi) if r == height - 1 else _fmt(lo) if r == 0 else ""
            out.append(f"{label:>8} ", style="dim")
            for ix in range(nx):
                ch, style = grid[r][ix]
                if ix == cx:
                    style = style + CURSOR
                out.append(ch, style)
            out.append("\n")
        out.append(f"{'':>8} {_fmt(data.x_values[0])}" + " " * max(1, nx - 12) + _fmt(data.x_values[-1]) + "\n", style="dim")
        out.append(f"{'':>8} x: {data.x_label}   y: {data.measure}{' (log)' if data.log_colour else ''}"
                   f"   ● measured  · theory  × diverged", style="dim")
        if data.legend:
            out.append("\n" + data.legend, style="italic")
        return out
