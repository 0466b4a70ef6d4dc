"""From a surface Snapshot to what the widgets draw: lane colours, trajectories, loss curves,
table rows, status text (the colours and number formats are shared with MLP mode)."""

from __future__ import annotations

import math

import numpy as np

from sgdtui.engine.optimizers import OPTIMIZERS
from sgdtui.engine.snapshot import LaneSnapshot, Snapshot
from sgdtui.engine.surface_race import SurfaceLaneSnapshot
from sgdtui.ui.widgets.contour import TrajectoryView
from sgdtui.ui.widgets.loss import LossSeries

# (plotext colour, Rich colour) pairs; distinct on dark and light themes.
LANE_PALETTE: tuple[tuple[str, str], ...] = (
    ("cyan+", "bright_cyan"),
    ("magenta+", "bright_magenta"),
    ("green+", "bright_green"),
    ("yellow+", "yellow"),
    ("blue+", "bright_blue"),
    ("red+", "bright_red"),
    ("cyan", "cyan"),
    ("magenta", "magenta"),
    ("green", "green"),
    ("blue", "blue"),
)


class LaneColours:
    """A stable colour per lane name, handed out in order of first appearance."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}

    def index(self, name: str) -> int:
        if name not in self._index:
            used = set(self._index.values())
            free = [i for i in range(len(LANE_PALETTE)) if i not in used]
            self._index[name] = free[0] if free else len(self._index) % len(LANE_PALETTE)
        return self._index[name]

    def forget_missing(self, names: list[str]) -> None:
        for name in list(self._index):
            if name not in names:
                del self._index[name]

    def plot(self, name: str) -> str:
        return LANE_PALETTE[self.index(name)][0]

    def rich(self, name: str) -> str:
        return LANE_PALETTE[self.index(name)][1]


def trajectory_views(snapshot: Snapshot, colours: LaneColours, selected: str | None) -> list[TrajectoryView]:
    views = []
    for lane in snapshot.lanes:
        paths = tuple(lane.positions[:, i, :] for i in range(lane.positions.shape[1]))
        views.append(TrajectoryView(
            name=lane.name, color=colours.plot(lane.name), paths=paths, current=lane.current,
            diverged=~lane.alive, selected=lane.name == selected,
        ))
    return views


def loss_series(snapshot: Snapshot, colours: LaneColours, selected: str | None) -> list[LossSeries]:
    return [
        LossSeries(lane.name, colours.plot(lane.name), np.asarray(lane.steps, dtype=np.float64),
                   np.asarray(lane.loss_curve, dtype=np.float64), selected=lane.name == selected)
        for lane in snapshot.lanes
    ]


def fmt(value: float | None, digits: int = 3) -> str:
    """Compact number for the table: 3 significant digits, '—' for none, 'inf'/'nan' as such."""
    if value is None:
        return "—"
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def coupling_text(optimizer: str, hyper: dict, coupling: str) -> str:
    """The coupling cell: "momentum" reads "momentum (μ=0)" for a lane without heavy-ball momentum,
    where η = (1-μ)·B·η₀ is just the linear rule."""
    spec = OPTIMIZERS.get(optimizer)
    if coupling == "momentum" and spec is not None and spec.momentum_of(hyper) == 0.0:
        return "momentum (μ=0)"
    return coupling


def lr_text(lane: LaneSnapshot) -> str:
    """Effective lr, with the base lr in brackets when schedule or coupling change it."""
    text = fmt(lane.effective_lr)
    return f"{text} ({fmt(lane.base_lr)})" if lane.effective_lr != lane.base_lr else text


def decay_text(lane: LaneSnapshot) -> str:
    return "—" if lane.decay is None else fmt(lane.decay, 4)


# Read-outs come before the slower-changing settings so an 80-column terminal still shows them.
SURFACE_COLUMNS = ("lane", "optimizer", "lr (eff.)", "β", "batch", "loss", "|g|", "status", "schedule",
                   "coupling", "noise", "temp.")


def surface_rows(snapshot: Snapshot) -> dict[str, list[str]]:
    """The lanes table's cells after each lane's name (see SURFACE_COLUMNS)."""
    return {lane.name: [lane.optimizer, lr_text(lane), decay_text(lane), str(lane.batch), lane_loss_text(lane),
                        lane_grad_text(lane), lane.status, lane.schedule,
                        coupling_text(lane.optimizer, lane.hyper, lane.coupling), fmt(lane.noise),
                        fmt(lane.temperature)]
            for lane in snapshot.lanes}


def lane_loss_text(lane: SurfaceLaneSnapshot) -> str:
    finite = lane.loss[np.isfinite(lane.loss)]
    return fmt(float(finite.min())) if finite.size else "inf"


def lane_grad_text(lane: SurfaceLaneSnapshot) -> str:
    g = lane.grad_norm[lane.alive] if lane.alive.any() else lane.grad_norm
    finite = g[np.isfinite(g)]
    return fmt(float(finite.max())) if finite.size else "nan"


def run_parts(snapshot: Snapshot, *, running: bool, speed: str, steps_per_second: float | None,
              frames_per_second: float | None) -> list[str]:
    """The status line's common head: problem, step, run state and rates."""
    state = "running" if running else "paused"
    sps = "—" if steps_per_second is None else f"{steps_per_second:,.0f}"
    fps = "—" if frames_per_second is None else f"{frames_per_second:.0f}"
    return [snapshot.label, f"step {snapshot.step}", f"{state} ({speed})", f"{sps} steps/s", f"{fps} frames/s"]


def status_text(snapshot: Snapshot, *, selected: str | None, running: bool, speed: str,
                steps_per_second: float | None, frames_per_second: float | None) -> str:
    """The status line: surface, step, rates, selected lane and its Hessian readout."""
    parts = run_parts(snapshot, running=running, speed=speed, steps_per_second=steps_per_second,
                      frames_per_second=frames_per_second)
    if selected is not None:
        try:
            lane = snapshot.lane(selected)
        except KeyError:
            lane = None
        if lane is not None:
            if lane.hessian is not None:
                hessian = lane.hessian.describe()
            else:  # a newly selected lane's read-out comes with the next snapshot
                hessian = "Hessian: n/a (diverged)" if not lane.alive.any() else "Hessian: …"
            parts.append(f"▶ {lane.name}: {hessian}")
    return " · ".join(parts)
