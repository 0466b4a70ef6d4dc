"""Drawing an MLPSnapshot (and a loss-landscape slice) into the playground's widgets.

Kept out of app.py so the App stays a thin shell: the App decides *when* to draw, this decides
*what* each pane shows in MLP mode.
"""

from __future__ import annotations

import time
from typing import Callable, Hashable

import numpy as np

from sgdtui.mlp.race import MLPSnapshot
from sgdtui.ui.landscape import LandscapeSlice
from sgdtui.ui.present import LaneColours
from sgdtui.ui.present_mlp import mlp_loss_series, mlp_metric_series
from sgdtui.ui.widgets.boundary import DecisionBoundaryPlot
from sgdtui.ui.widgets.contour import ContourPlot, TrajectoryView
from sgdtui.ui.widgets.lanes import LanesTable
from sgdtui.ui.widgets.loss import LossPlot


# Redraw rates (per second) of the panes while a run is going: every redraw re-renders the whole
# pane in the App's thread, which shares the GIL with the training steps. Paused, every change
# is drawn at once.
BOUNDARY_RATE = 5.0
METRIC_RATE = 5.0
LOSS_RATE = 10.0
TABLE_RATE = 4.0


class PaneThrottle:
    """Decides when one pane redraws: never for data it already shows; while ``throttled``, at
    most about ``rate`` times a second (a change held back is drawn by a later call), except that
    a change of ``structure`` (what the pane shows: lanes, selection, scale) is drawn at once."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.perf_counter):
        if not rate > 0:
            raise ValueError(f"pane redraw rate must be > 0, got {rate!r}")
        self.period = 1.0 / rate
        self.clock = clock
        self.forget()

    def due(self, structure: Hashable, data: Hashable, throttled: bool) -> bool:
        """Whether to draw now; a True answer records (structure, data) as shown."""
        if (structure, data) == self.shown:
            return False
        now = self.clock()
        # A little slack, so a pane at 10 Hz fed frames at 12 Hz does not fall back to every other one.
        if throttled and structure == self.shown[0] and now - self.drawn_at < self.period * 0.8:
            return False
        self.shown, self.drawn_at = (structure, data), now
        return True

    def forget(self) -> None:
        """Draw the next data whatever it is (after a mode switch, a new session's keys restart)."""
        self.shown: tuple[Hashable, Hashable] = (object(), object())
        self.drawn_at = -float("inf")


class MLPPanes:
    """The MLP screen's panes, plus the latest gradient-noise estimate of each lane (estimates
    arrive only every GRAD_NOISE_PERIOD seconds; frames in between keep showing the last one).

    Each pane redraws only when its data changed, and while running at most at its own rate."""

    def __init__(self, boundary: DecisionBoundaryPlot, loss: LossPlot, metric: LossPlot, table: LanesTable,
                 contour: ContourPlot, clock: Callable[[], float] = time.perf_counter):
        self.boundary, self.loss, self.metric, self.table, self.contour = boundary, loss, metric, table, contour
        self.grad_noise: dict[str, float] = {}
        self.landscape: LandscapeSlice | None = None
        self.boundary_throttle = PaneThrottle(BOUNDARY_RATE, clock)
        self.loss_throttle = PaneThrottle(LOSS_RATE, clock)
        self.metric_throttle = PaneThrottle(METRIC_RATE, clock)
        self.table_throttle = PaneThrottle(TABLE_RATE, clock)

    def forget(self) -> None:
        """A new session: drop what the panes remember of the old one."""
        self.grad_noise, self.landscape = {}, None
        for throttle in (self.boundary_throttle, self.loss_throttle, self.metric_throttle, self.table_throttle):
            throttle.forget()

    def render(self, snap: MLPSnapshot, colours: LaneColours, selected: str | None, log_scale: bool,
               running: bool = False) -> None:
        """Draw what changed in ``snap``; while ``running``, each pane at most at its rate."""
        names = tuple(lane.name for lane in snap.lanes)
        self.grad_noise = {k: v for k, v in self.grad_noise.items() if k in names}
        for lane in snap.lanes:
            if lane.grad_noise is not None:
                self.grad_noise[lane.name] = lane.grad_noise
        state = (snap.version, snap.clock)
        structure = (names, selected, log_scale, snap.task)
        if self.boundary_throttle.due((snap.boundary_lane, snap.task), state, running):
            self._draw_boundary(snap, colours)
        if self.loss_throttle.due(structure, state, running):
            self.loss.show(mlp_loss_series(snap, colours, selected), log_scale, y_label="train loss")
        # Validation curves change only when an evaluation lands.
        evals = tuple((len(lane.eval_steps), int(lane.eval_steps[-1]) if len(lane.eval_steps) else None)
                      for lane in snap.lanes)
        if self.metric_throttle.due(structure, evals, running):
            series, label = mlp_metric_series(snap, colours, selected)
            self.metric.show(series, log_scale and snap.task == "regression", y_label=label)
        if self.table_throttle.due((names, selected), (state, tuple(sorted(self.grad_noise.items()))), running):
            self.table.show_mlp(snap, selected, colours, self.grad_noise)

    def _draw_boundary(self, snap: MLPSnapshot, colours: LaneColours) -> None:
        lane_name = snap.boundary_lane or "no lane"
        if snap.task == "regression":
            colour = colours.plot(snap.boundary_lane) if snap.boundary_lane else "cyan+"
            self.boundary.show_fit(snap.grid, snap.grid_xlim, snap.grid_ylim, snap.x_train[:, 0],
                                   snap.y_train.reshape(-1), data_key=snap.problem, colour=colour,
                                   title=f"{lane_name} · fit on {snap.problem.dataset}")
        else:
            self.boundary.show_classes(snap.grid, snap.grid_xlim, snap.grid_ylim, snap.x_train, snap.y_train,
                                       data_key=snap.problem, title=f"{lane_name} · decision boundary")

    def show_landscape(self, piece: LandscapeSlice, colour: str) -> None:
        """The slice's level lines in the contour pane, the lane's projected path on top
        (its current weights are the plane's origin)."""
        self.landscape = piece
        self.contour.set_levels(("slice", piece.lane, piece.directions, piece.clock, id(piece)), piece.lines,
                                piece.xlim, piece.ylim, np.empty((0, 2)))
        view = TrajectoryView(piece.lane, colour, (piece.path,), np.zeros((1, 2)), np.zeros(1, dtype=bool),
                              selected=True)
        self.contour.show([view], title=f"{piece.lane} · loss slice ({piece.directions}) · step {piece.clock}")
