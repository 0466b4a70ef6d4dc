"""The lanes table: one row per lane with its live settings and read-outs."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from sgdtui.engine.session import Snapshot
from sgdtui.ui.present import LaneColours, fmt, lane_grad_text, lane_loss_text

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

    def on_mount(self) -> None:
        self.add_columns(*COLUMNS)

    def show(self, snapshot: Snapshot, selected: str | None, colours: LaneColours) -> None:
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
                lane.coupling, fmt(lane.noise), fmt(lane.temperature), key=lane.name,
            )
        if snapshot.lanes:
            self.move_cursor(row=selected_row, animate=False)
