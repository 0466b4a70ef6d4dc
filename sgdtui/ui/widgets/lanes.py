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
        self.columns_shown: tuple[str, ...] = ()

    def on_mount(self) -> None:
        if not self.columns_shown:
            self.add_columns(*COLUMNS)
            self.columns_shown = COLUMNS

    def _use_columns(self, columns: tuple[str, ...]) -> None:
        """Switch the header between surface and MLP columns (a mode switch); no-op otherwise."""
        if self.columns_shown and columns != self.columns_shown:
            self.clear(columns=True)
            self.add_columns(*columns)
            self.columns_shown = columns
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
        self.clear()
        selected_row = 0
        for row, lane in enumerate(snapshot.lanes):
            if lane.name == selected:
                selected_row = row
            self.add_row(Text(lane.name, style=f"bold {colours.rich(lane.name)}"),
                         *lane_row(lane, grad_noise.get(lane.name)), key=lane.name)
        if snapshot.lanes:
            self.move_cursor(row=selected_row, animate=False)

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
                lane.coupling, fmt(lane.noise), fmt(lane.temperature), key=lane.name,
            )
        if snapshot.lanes:
            self.move_cursor(row=selected_row, animate=False)
