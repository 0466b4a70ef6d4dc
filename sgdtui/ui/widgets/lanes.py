"""The lanes table: one row per lane with its live settings and read-outs."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable

from sgdtui.engine.session import Snapshot
from sgdtui.ui.present import LaneColours, coupling_text, fmt, lane_grad_text, lane_loss_text

# Read-outs come before the slower-changing settings so an 80-column terminal still shows them.
COLUMNS = ("lane", "optimizer", "lr (eff.)", "β", "batch", "loss", "|g|", "status", "schedule",
           "coupling", "noise", "temp.")


class LanesTable(DataTable):
    """Rows are rebuilt only when the snapshot or the selection changed.

    The table never takes focus: every key belongs to the playground (tab selects lanes),
    and the selected lane is shown by the row cursor.
    """

    can_focus = False

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self._shown: tuple | None = None
        self.columns_shown: tuple[str, ...] = ()
        self._cells: dict[str, list] = {}

    def on_mount(self) -> None:
        if not self.columns_shown:
            self._add_columns(COLUMNS)

    def _add_columns(self, columns: tuple[str, ...]) -> None:
        for label in columns:
            self.add_column(label, key=label)  # keyed by label, so cells can be updated in place
        self.columns_shown = columns
        self._cells: dict[str, list] = {}  # MLP mode: the cells on screen, per row key

    def _use_columns(self, columns: tuple[str, ...]) -> None:
        """Switch the header between surface and MLP columns (a mode switch); no-op otherwise."""
        if self.columns_shown and columns != self.columns_shown:
            self.clear(columns=True)
            self._add_columns(columns)
            self._shown = None

    def show_mlp(self, snapshot, selected: str | None, colours: LaneColours,
                 grad_noise: dict[str, float]) -> None:
        """MLP mode: one row per lane of an MLPSnapshot (``grad_noise``: the latest estimate per lane)."""
        from sgdtui.ui.present_mlp import MLP_COLUMNS, lane_row

        self._use_columns(MLP_COLUMNS)
        key = ("mlp", snapshot.version, snapshot.clock, selected, tuple(lane.name for lane in snapshot.lanes),
               tuple(sorted(grad_noise.items())))
        if key == self._shown:
            return
        self._shown = key
        rows = {lane.name: [Text(lane.name, style=f"bold {colours.rich(lane.name)}"),
                            *lane_row(lane, grad_noise.get(lane.name))] for lane in snapshot.lanes}
        if list(rows) == list(self._cells) and self.row_count == len(rows):
            self._update_cells(rows)
        else:  # lanes added, removed or reordered: rebuild
            self.clear()
            for name, cells in rows.items():
                self.add_row(*cells, key=name)
            self._cells = rows
        names = list(rows)
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

    def show(self, snapshot: Snapshot, selected: str | None, colours: LaneColours) -> None:
        self._use_columns(COLUMNS)
        key = (snapshot.version, snapshot.clock, len(snapshot.lanes), selected,
               tuple(lane.name for lane in snapshot.lanes))
        if key == self._shown:
            return
        self._shown = key
        self.clear()
        selected_row = 0
        for row, lane in enumerate(snapshot.lanes):
            if lane.name == selected:
                selected_row = row
            lr = fmt(lane.effective_lr)
            if lane.effective_lr != lane.base_lr:
                lr = f"{lr} ({fmt(lane.base_lr)})"
            beta = "—" if lane.decay is None else fmt(lane.decay, 4)
            self.add_row(
                Text(lane.name, style=f"bold {colours.rich(lane.name)}"), lane.optimizer, lr, beta,
                str(lane.batch), lane_loss_text(lane), lane_grad_text(lane), lane.status, lane.schedule,
                coupling_text(lane.optimizer, lane.hyper, lane.coupling),
                fmt(lane.noise), fmt(lane.temperature), key=lane.name,
            )
        if snapshot.lanes:
            self.move_cursor(row=selected_row, animate=False)
