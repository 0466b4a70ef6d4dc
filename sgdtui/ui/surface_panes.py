"""Surface mode's view: the contour pane (level lines, traced off the event loop and cached per
surface and view; pan and zoom) and the loss pane."""

from __future__ import annotations

from collections import OrderedDict
from typing import ClassVar

import numpy as np
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.worker import Worker, WorkerState

from sgdtui.engine.contours import level_lines
from sgdtui.engine.snapshot import Snapshot
from sgdtui.engine.surfaces import Surface
from sgdtui.ui.present import SURFACE_COLUMNS, loss_series, status_text, surface_rows, trajectory_views
from sgdtui.ui.view_base import ModeView, ViewContext
from sgdtui.ui.widgets.contour import ContourPlot
from sgdtui.ui.widgets.loss import LossPlot

PAN_FRACTION = 0.1
ZOOM_FACTOR = 1.25
LEVEL_CACHE = 16


def surface_key(surface: Surface) -> tuple:
    """Identifies a surface across frames (a session process sends a fresh copy in each one)."""
    return (surface.name, surface.origin, getattr(surface, "expr", None), surface.xlim, surface.ylim)


class SurfaceView(ModeView):
    kind: ClassVar[str] = "surface"
    actions: ClassVar[frozenset[str]] = frozenset({"pan", "zoom", "noise", "quick_surface", "pick_surface",
                                                   "expression"})

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.surface: Surface | None = None
        self._surface_key: tuple | None = None
        self.limits: tuple[tuple[float, float], tuple[float, float]] | None = None
        self._levels: OrderedDict[tuple, list] = OrderedDict()
        self._levels_wanted: tuple | None = None
        self._shown: tuple | None = None  # what the plots show: a frame that only brings a new
        # Hessian read-out (a refresh after tab) redraws nothing here

    def compose(self) -> ComposeResult:
        yield ContourPlot(id="contour")
        with Vertical(id="curves"):
            yield LossPlot(id="loss")

    # --- drawing ---------------------------------------------------------------------------
    def show_snapshot(self, snapshot: Snapshot, context: ViewContext) -> None:
        surface = snapshot.payload.surface
        key = surface_key(surface)
        if key != self._surface_key:
            self.surface, self._surface_key = surface, key
            self.limits = (tuple(surface.xlim), tuple(surface.ylim))
            self._request_levels()
        shown = (key, snapshot.version, snapshot.clock, context.selected, context.log_scale, id(context.colours),
                 snapshot.lane_names())
        if shown == self._shown:
            return
        self._shown = shown
        self.query_one(ContourPlot).show(trajectory_views(snapshot, context.colours, context.selected),
                                         title=surface.name)
        self.query_one(LossPlot).show(loss_series(snapshot, context.colours, context.selected), context.log_scale,
                                      y_label="loss")

    def table(self, snapshot: Snapshot, context: ViewContext) -> tuple[tuple[str, ...], dict[str, list[str]]]:
        return SURFACE_COLUMNS, surface_rows(snapshot)

    def status(self, snapshot: Snapshot, context: ViewContext, *, speed: str, steps_per_second: float | None,
               frames_per_second: float | None) -> str:
        return status_text(snapshot, selected=context.selected, running=context.running, speed=speed,
                           steps_per_second=steps_per_second, frames_per_second=frames_per_second)

    def forget(self) -> None:
        self.surface, self._surface_key, self.limits, self._shown = None, None, None, None

    # --- pan and zoom ----------------------------------------------------------------------
    def pan(self, dx: int, dy: int) -> None:
        if self.limits is None:
            return
        (x0, x1), (y0, y1) = self.limits
        sx, sy = (x1 - x0) * PAN_FRACTION * dx, (y1 - y0) * PAN_FRACTION * dy
        self._set_view((x0 + sx, x1 + sx), (y0 + sy, y1 + sy))

    def zoom(self, direction: int) -> None:
        if self.limits is None:
            return
        factor = ZOOM_FACTOR ** -direction
        (x0, x1), (y0, y1) = self.limits
        cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 * factor, (y1 - y0) / 2 * factor
        if min(hx, hy) < 1e-9 or max(hx, hy) > 1e9:
            return
        self._set_view((cx - hx, cx + hx), (cy - hy, cy + hy))

    def _set_view(self, xlim, ylim) -> None:
        self.limits = (tuple(float(v) for v in xlim), tuple(float(v) for v in ylim))
        self._request_levels()

    # --- level lines, traced off the event loop ----------------------------------------------
    def _request_levels(self) -> None:
        surface, (xlim, ylim) = self.surface, self.limits
        key = (self._surface_key, xlim, ylim)
        self._levels_wanted = key
        minima = np.asarray(surface.minima, dtype=np.float64).reshape(-1, 2)
        contour = self.query_one(ContourPlot)
        if key in self._levels:
            self._levels.move_to_end(key)
            contour.set_levels(key, self._levels[key], xlim, ylim, minima)
            return
        contour.set_view(xlim, ylim)  # old lines, clipped, until the new ones arrive
        self.run_worker(lambda: (key, minima, level_lines(surface.loss, xlim, ylim, log_levels=surface.log_levels,
                                                          min_value=surface.min_value)),
                        thread=True, exclusive=True, group="levels", name="levels", exit_on_error=False)

    @property
    def levels_ready(self) -> bool:
        """Whether the contour pane shows the level lines of the current surface and view."""
        return self._levels_wanted is not None and self.query_one(ContourPlot)._levels_key == self._levels_wanted

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "levels":
            return
        event.stop()
        if event.state == WorkerState.ERROR:
            self.app.notify(f"level lines failed: {event.worker.error}", severity="error")
        elif event.state == WorkerState.SUCCESS:
            key, minima, lines = event.worker.result
            self._levels[key] = lines
            while len(self._levels) > LEVEL_CACHE:
                self._levels.popitem(last=False)
            if key == self._levels_wanted:
                self.query_one(ContourPlot).set_levels(key, lines, key[1], key[2], minima)
