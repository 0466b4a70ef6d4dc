"""The lanes table: one row per lane with its live settings and read-outs."""

from __future__ import annotations

from rich.cells import cell_len
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

    def show(self, columns: tuple[str, ...], rows: dict[str, list[str]], selected: str | None,
             colours: LaneColours) -> None:
        """``rows``: lane name -> the cells after the name column (``columns[1:]``)."""
        if columns != self.columns_shown:
            self.clear(columns=True)
            for label in columns:
                self.add_column(label, key=label)  # keyed by label, so cells can be updated in place
            self.columns_shown = columns
            self._cells = {}
        cells = {name: [Text(name, style=f"bold {colours.rich(name)}"), *row] for name, row in rows.items()}
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
        """Same rows and columns: replace only the cells whose text changed (one refresh, no relayout
        unless a cell outgrew its column)."""
        columns = self.columns
        for name, cells in rows.items():
            old = self._cells[name]
            for label, new, before in zip(self.columns_shown, cells, old):
                if new != before:
                    wider = cell_len(str(new)) > columns[label].content_width if label in columns else True
                    self.update_cell(name, label, new, update_width=wider)
        self._cells = rows
