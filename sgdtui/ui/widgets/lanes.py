"""The lanes table: one row per lane with its live settings and read-outs."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from sgdtui.ui.present import LaneColours


class LanesTable(DataTable):
    """Rows of cells per lane under the current mode's columns. Cells are updated in place (a
    frame that changes a loss repaints that cell, not the table); rows are rebuilt only when lanes
    are added, removed or reordered, and the header only when the columns change (a mode switch).

    The table never takes focus: every key belongs to the playground (tab selects lanes),
    and the selected lane is shown by the row cursor.
    """

    can_focus = False

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self.columns_shown: tuple[str, ...] = ()
        self._cells: dict[str, list] = {}  # the cells on screen, per row key
        self._last: tuple | None = None  # the latest show() arguments, refitted on a resize

    def on_resize(self, event) -> None:
        if self._last is not None:
            self.show(*self._last)

    def show(self, columns: tuple[tuple[str, int], ...], rows: dict[str, list[str]], selected: str | None,
             colours: LaneColours, drop_order: tuple[str, ...] = ()) -> None:
        """``columns``: (label, width) each, fixed so the table never jumps; ``rows``: lane name ->
        the cells after the name column. The name cell shows the lane's glyph and colour. On a pane
        too narrow for every column, columns go in ``drop_order`` until the rest fit (the table takes
        no focus, so it could not be scrolled to them)."""
        self._last = (columns, rows, selected, colours, drop_order)
        columns, rows = fit_columns(columns, rows, self.size.width, drop_order)
        labels = tuple(label for label, _ in columns)
        if labels != self.columns_shown:
            self.clear(columns=True)
            for label, width in columns:
                self.add_column(label, key=label, width=width)  # keyed by label: cells update in place
            self.columns_shown = labels
            self._cells = {}
        cells = {name: [Text(f"{colours.glyph(name)} {name}", style=f"bold {colours.rich(name)}"), *row]
                 for name, row in rows.items()}
        if list(cells) == list(self._cells) and self.row_count == len(cells):
            self._update_cells(cells)
        else:  # lanes added, removed or reordered: rebuild
            self.clear()
            for name, row in cells.items():
                self.add_row(*row, key=name)
            self._cells = cells
        names = list(cells)
        if names:
            row = names.index(selected) if selected in names else 0
            if self.cursor_row != row:
                self.move_cursor(row=row, animate=False)

    def _update_cells(self, rows: dict[str, list]) -> None:
        """Same rows and columns: replace only the cells whose text changed (one refresh)."""
        for name, cells in rows.items():
            old = self._cells[name]
            for label, new, before in zip(self.columns_shown, cells, old):
                if new != before:
                    self.update_cell(name, label, new)  # fixed widths: never a relayout
        self._cells = rows


CELL_PADDING = 2  # DataTable pads each cell by one column on either side


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
