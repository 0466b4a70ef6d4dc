"""Drawing an MLPSnapshot (and a loss-landscape slice) into the playground's widgets.

Kept out of app.py so the App stays a thin shell: the App decides *when* to draw, this decides
*what* each pane shows in MLP mode.
"""

from __future__ import annotations

import numpy as np

from sgdtui.mlp.race import MLPSnapshot
from sgdtui.ui.landscape import LandscapeSlice
from sgdtui.ui.present import LaneColours
from sgdtui.ui.present_mlp import mlp_loss_series, mlp_metric_series
from sgdtui.ui.widgets.boundary import DecisionBoundaryPlot
from sgdtui.ui.widgets.contour import ContourPlot, TrajectoryView
from sgdtui.ui.widgets.lanes import LanesTable
from sgdtui.ui.widgets.loss import LossPlot


class MLPPanes:
    """The MLP screen's panes, plus the latest gradient-noise estimate of each lane (estimates
    arrive only every GRAD_NOISE_PERIOD seconds; frames in between keep showing the last one)."""

    def __init__(self, boundary: DecisionBoundaryPlot, loss: LossPlot, metric: LossPlot, table: LanesTable,
                 contour: ContourPlot):
        self.boundary, self.loss, self.metric, self.table, self.contour = boundary, loss, metric, table, contour
        self.grad_noise: dict[str, float] = {}
        self.landscape: LandscapeSlice | None = None

    def render(self, snap: MLPSnapshot, colours: LaneColours, selected: str | None, log_scale: bool) -> None:
        names = {lane.name for lane in snap.lanes}
        self.grad_noise = {k: v for k, v in self.grad_noise.items() if k in names}
        for lane in snap.lanes:
            if lane.grad_noise is not None:
                self.grad_noise[lane.name] = lane.grad_noise
        lane_name = snap.boundary_lane or "no lane"
        if snap.task == "regression":
            colour = colours.plot(snap.boundary_lane) if snap.boundary_lane else "cyan+"
            self.boundary.show_fit(snap.grid, snap.grid_xlim, snap.grid_ylim, snap.x_train[:, 0],
                                   snap.y_train.reshape(-1), data_key=snap.problem, colour=colour,
                                   title=f"{lane_name} · fit on {snap.problem.dataset}")
        else:
            self.boundary.show_classes(snap.grid, snap.grid_xlim, snap.grid_ylim, snap.x_train, snap.y_train,
                                       data_key=snap.problem, title=f"{lane_name} · decision boundary")
        self.loss.show(mlp_loss_series(snap, colours, selected), log_scale, y_label="train loss")
        series, label = mlp_metric_series(snap, colours, selected)
        self.metric.show(series, log_scale and snap.task == "regression", y_label=label)
        self.table.show_mlp(snap, selected, colours, self.grad_noise)

    def show_landscape(self, piece: LandscapeSlice, colour: str) -> None:
        """The slice's level lines in the contour pane, the lane's projected path on top
        (its current weights are the plane's origin)."""
        self.landscape = piece
        self.contour.set_levels(("slice", piece.lane, piece.directions, piece.clock, id(piece)), piece.lines,
                                piece.xlim, piece.ylim, np.empty((0, 2)))
        view = TrajectoryView(piece.lane, colour, (piece.path,), np.zeros((1, 2)), np.zeros(1, dtype=bool),
                              selected=True)
        self.contour.show([view], title=f"{piece.lane} · loss slice ({piece.directions}) · step {piece.clock}")
