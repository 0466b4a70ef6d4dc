"""The lanes table: one row per lane with its live settings and read-outs.

A table this small (a header and a row per lane, fixed column widths, one highlighted row) does
not need DataTable's machinery, whose per-cell rendering cost a quarter of a frame while a race
ran: this widget draws its lines directly (``render_line``), caching each row's strip until its
cells, the selection, the width or the theme change.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip
from textual.widget import Widget

from sgdtui.ui.present import LaneColours

CELL_PADDING = 2  # one blank column either side of each cell


class LanesTable(Widget):
    """Rows of cells per lane under the current mode's columns. Never takes focus: every key
    belongs to the playground (tab selects lanes); the selected lane's row is highlighted."""

    can_focus = False
    COMPONENT_CLASSES = {"lanes-table--header", "lanes-table--cursor"}
    DEFAULT_CSS = """
    LanesTable {
        height: auto;
    }
    LanesTable > .lanes-table--header {
        text-style: bold;
        background: $panel;
        color: $text;
    }
    LanesTable > .lanes-table--cursor {
        background: $primary 40%;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.columns_shown: tuple[str, ...] = ()
        self._widths: tuple[int, ...] = ()
        self._cells: dict[str, list] = {}  # the cells on screen, per lane name
        self._selected: str | None = None
        self._strips: dict[tuple, Strip] = {}
        self._last: tuple | None = None  # the latest show() arguments, refitted on a resize
        self._styles: tuple | None = None  # (base, header, cursor) during a repaint

    # --- what tests and the App read -----------------------------------------------------------
    @property
    def row_names(self) -> list[str]:
        return list(self._cells)

    @property
    def row_count(self) -> int:
        return len(self._cells)

    @property
    def cursor_row(self) -> int:
        names = self.row_names
        return names.index(self._selected) if self._selected in names else 0

    def get_row(self, name: str) -> list:
        return list(self._cells[name])

    def get_cell(self, name: str, label: str):
        return self._cells[name][self.columns_shown.index(label)]

    # --- updating --------------------------------------------------------------------------------
    def show(self, columns: tuple[tuple[str, int], ...], rows: dict[str, list[str]], selected: str | None,
             colours: LaneColours, drop_order: tuple[str, ...] = ()) -> None:
        """``columns``: (label, width) each, fixed so the table never jumps; ``rows``: lane name ->
        the cells after the name column. The name cell shows the lane's glyph and colour. On a pane
        too narrow for every column, columns go in ``drop_order`` until the rest fit (the table takes
        no focus, so it could not be scrolled to them)."""
        self._last = (columns, rows, selected, colours, drop_order)
        columns, rows = fit_columns(columns, rows, self.size.width, drop_order)
        labels = tuple(label for label, _ in columns)
        widths = tuple(width for _, width in columns)
        cells = {name: [Text(f"{colours.glyph(name)} {name}", style=f"bold {colours.rich(name)}"), *row]
                 for name, row in rows.items()}
        if (labels, widths, cells, selected) == (self.columns_shown, self._widths, self._cells, self._selected):
            return
        resized = len(cells) != len(self._cells)
        self.columns_shown, self._widths, self._cells, self._selected = labels, widths, cells, selected
        if resized:
            self.refresh(layout=True)
        else:
            self.refresh()

    def on_resize(self, event) -> None:
        if self._last is not None:
            self.show(*self._last)

    # --- drawing -----------------------------------------------------------------------------------
    def get_content_height(self, container, viewport, width: int) -> int:
        return 1 + len(self._cells)

    def _look_up_styles(self) -> tuple:
        """(base, header, cursor): each walks the CSS of every ancestor."""
        return (self.rich_style, self.get_component_rich_style("lanes-table--header"),
                self.get_component_rich_style("lanes-table--cursor"))

    def render_lines(self, crop):
        self._styles = self._look_up_styles()  # once per repaint, not once per line
        try:
            return super().render_lines(crop)
        finally:
            self._styles = None

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base, header, cursor = self._styles if self._styles is not None else self._look_up_styles()
        if y == 0:
            key: tuple = ("header", self.columns_shown, self._widths, width, base, self.app.theme)
            cells: list = list(self.columns_shown)
            style = header
        else:
            names = self.row_names
            if y - 1 >= len(names):
                return Strip.blank(width, base)
            name = names[y - 1]
            cells = self._cells[name]
            chosen = name == self._selected
            style = cursor if chosen else base
            key = ("row", name, tuple(str(c) for c in cells), tuple(str(getattr(c, "style", "")) for c in cells),
                   self._widths, chosen, width, base, self.app.theme)
        strip = self._strips.get(key)
        if strip is None:
            if len(self._strips) > 256:
                self._strips.clear()
            strip = self._strips[key] = self._line(cells, style, width)
        return strip

    def _line(self, cells: list, style: Style, width: int) -> Strip:
        segments = []
        for cell, column_width in zip(cells, self._widths):
            if isinstance(cell, Text):
                text, cell_style = cell.plain, style + Style.parse(str(cell.style)) if cell.style else style
            else:
                text, cell_style = str(cell), style
            text = text[:column_width]  # fixed widths: a cell never pushes the next one
            segments.append(Segment(" ", style))
            segments.append(Segment(text, cell_style))
            segments.append(Segment(" " * (column_width - len(text) + 1), style))
        return Strip(segments).adjust_cell_length(width, style)


def fit_columns(columns: tuple[tuple[str, int], ...], rows: dict[str, list[str]], width: int,
                drop_order: tuple[str, ...]) -> tuple[tuple[tuple[str, int], ...], dict[str, list[str]]]:
    """The columns (and each row's cells) that fit ``width``, dropping ``drop_order`` first to last."""
    keep = list(range(len(columns)))
    needed = sum(w + CELL_PADDING for _, w in columns)
    for label in drop_order:
        if width <= 0 or needed <= width:
            break
        index = next((k for k in keep if columns[k][0] == label), None)
        if index is not None:
            keep.remove(index)
            needed -= columns[index][1] + CELL_PADDING
    if len(keep) == len(columns):
        return columns, rows
    cells = [k - 1 for k in keep if k > 0]  # rows hold the cells after the name column
    return tuple(columns[k] for k in keep), {name: [row[k] for k in cells] for name, row in rows.items()}
