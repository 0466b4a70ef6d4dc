"""Surface mode's view: the contour pane (level lines, traced off the event loop and cached per
surface and view; pan and zoom) and the loss pane."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import ClassVar

import numpy as np
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.worker import Worker, WorkerState

from sgdtui.engine.contours import contour_map
from sgdtui.engine.snapshot import Snapshot
from sgdtui.engine.surfaces import Surface
from sgdtui.ui.present import (
    SURFACE_COLUMNS,
    SURFACE_DROP,
    anatomy_text,
    legend_entries,
    loss_series,
    range_test_series,
    status_text,
    surface_rows,
    trajectory_views,
)
from sgdtui.ui.view_base import ModeView, ViewContext
from sgdtui.ui.widgets.colourbar import ColourBar
from sgdtui.ui.widgets.contour import Arrow, ContourPlot, Density, Shading
from sgdtui.ui.widgets.legend import Legend
from sgdtui.ui.widgets.loss import LossPlot

PAN_FRACTION = 0.1
ZOOM_FACTOR = 1.25
LEVEL_CACHE = 16
CURVES_PERIOD = 0.06  # seconds: while running, the loss pane redraws at most this often
CURVES_FLUSH = 0.25  # seconds: a skipped loss-pane frame is drawn by then if no frame came


def surface_key(surface: Surface) -> tuple:
    """Identifies a surface across frames (a session process sends a fresh copy in each one)."""
    return (surface.name, surface.origin, getattr(surface, "expr", None), surface.xlim, surface.ylim)


class SurfaceView(ModeView):
    kind: ClassVar[str] = "surface"
    actions: ClassVar[frozenset[str]] = frozenset({"pan", "zoom", "noise", "quick_surface", "pick_surface",
                                                   "expression", "reset_view", "crosshair", "place_start",
                                                   "cancel_crosshair", "toggle_density", "toggle_flow",
                                                   "toggle_burn_in"})
    # Actions that only make sense while the crosshair is up (enter, escape).
    crosshair_actions: ClassVar[frozenset[str]] = frozenset({"place_start", "cancel_crosshair"})
    ARROW_SHARE = 0.15  # the update anatomy's longest arrow, as a share of the view
    table_drop_order: ClassVar[tuple[str, ...]] = SURFACE_DROP

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self.surface: Surface | None = None
        self._surface_key: tuple | None = None
        self.limits: tuple[tuple[float, float], tuple[float, float]] | None = None
        self._levels: OrderedDict[tuple, list] = OrderedDict()
        self._levels_wanted: tuple | None = None
        self._shown: tuple | None = None  # what the plots show: a frame that only brings a new
        # Hessian read-out (a refresh after tab) redraws nothing here
        self.crosshair: tuple[float, float] | None = None
        self.density_view = False  # the contour pane shows the selected lane's stationary density
        self._curves_at = -float("inf")  # when the loss pane was last drawn (time.monotonic)
        self._curves_look: tuple | None = None  # what it was drawn for, besides the data
        self._curves_pending: tuple | None = None  # (snapshot, context) waiting for its slot
        self._curves_timer = None

    def _density_of(self, lane, context: ViewContext) -> Density | None:
        stationary = getattr(lane, "stationary", None)
        if stationary is None or stationary.counts is None or stationary.box is None:
            return None
        return Density(stationary.box, stationary.counts, stationary.gibbs, context.colours.plot(lane.name))

    def suggested_lr(self, snapshot: Snapshot, name: str | None) -> float | None:
        """The range test's suggested lr of lane ``name`` (None: not on the range test, or too early)."""
        lane = next((lane for lane in snapshot.lanes if lane.name == name), None)
        reading = getattr(lane, "range_test", None)
        return None if reading is None else reading.suggested_lr

    def compose(self) -> ComposeResult:
        with Vertical(id="contour-pane"):
            yield ContourPlot(id="contour")
            yield ColourBar(id="colourbar")
        with Vertical(id="curves"):
            yield LossPlot(id="loss")
            yield Legend(id="legend")

    # --- drawing ---------------------------------------------------------------------------
    def show_snapshot(self, snapshot: Snapshot, context: ViewContext) -> None:
        surface = snapshot.payload.surface
        key = surface_key(surface)
        if key != self._surface_key:
            self.surface, self._surface_key = surface, key
            self.limits = (tuple(surface.xlim), tuple(surface.ylim))
            self._request_levels()
        arrows = () if context.running else self._anatomy_arrows(snapshot, context)
        self.query_one(ContourPlot).set_overlay(self.crosshair, arrows)
        title = surface.name
        lane = next((lane for lane in snapshot.lanes if lane.name == context.selected), None)
        if arrows and lane is not None:  # paused: the arrows' numbers, in the pane's title
            title = f"{surface.name} · {anatomy_text(lane.anatomy)}"
        density = self._density_of(lane, context) if self.density_view else None
        if self.density_view:
            title = f"{surface.name} · density of {lane.name}" if density is not None else (
                f"{surface.name} · density: the selected lane has no burn_in (K sets one)")
        shown = (key, snapshot.version, snapshot.clock, context.selected, context.log_scale, id(context.colours),
                 snapshot.lane_names(), context.colours.dark, title, self.density_view)
        if shown == self._shown:
            return
        self._shown = shown
        contour = self.query_one(ContourPlot)
        contour.set_density(density)
        self.query_one(ColourBar).note(
            "shade: log of the lane's position count after burn-in · lines: exp(-L/T_G) holding 50/90/99% of its mass"
            if density is not None else None)
        contour.show(trajectory_views(snapshot, context.colours, context.selected, paths_shown=density is None),
                     title=title)
        self._show_curves(snapshot, context)
        self.query_one(Legend).show(legend_entries(snapshot, context.colours), context.selected)

    def _show_curves(self, snapshot: Snapshot, context: ViewContext) -> None:
        """The loss pane, redrawn at most every CURVES_PERIOD while the race runs and nothing but
        the data changed (every other frame at 25 frames/s): the curves move little per frame,
        and a redraw of the pane (and the repaint of its lines) costs about a third of a frame.
        A skipped frame's data are drawn with a later frame, or by a timer should no frame come
        (so the last data always show); paused, every frame draws at once."""
        look = self._curves_look_of(snapshot, context)
        if context.running and look == self._curves_look and (
                context.prompt or time.monotonic() - self._curves_at < CURVES_PERIOD):
            self._curves_pending = (snapshot, context)
            if self._curves_timer is None:
                self._curves_timer = self.set_timer(CURVES_FLUSH, self._draw_pending_curves)
            return
        self._draw_curves(snapshot, context, look)

    def _curves_look_of(self, snapshot: Snapshot, context: ViewContext) -> tuple:
        """What the loss pane is drawn for besides the data: a change draws at once."""
        return (context.selected, context.log_scale, id(context.colours), context.colours.dark,
                snapshot.lane_names(), self._surface_key)

    def _draw_pending_curves(self) -> None:
        self._curves_timer = None
        pending, self._curves_pending = self._curves_pending, None
        if pending is not None:
            self._draw_curves(*pending)

    def _draw_curves(self, snapshot: Snapshot, context: ViewContext, look: tuple | None = None) -> None:
        if self._curves_timer is not None:
            self._curves_timer.stop()
            self._curves_timer = None
        self._curves_pending = None
        self._curves_at = time.monotonic()
        self._curves_look = look if look is not None else self._curves_look_of(snapshot, context)
        range_test = range_test_series(snapshot, context.colours, context.selected)
        if range_test is not None:  # the range test's own picture: loss against lr
            series, marks = range_test
            self.query_one(LossPlot).show(series, context.log_scale, title="range test", y_label="loss vs lr",
                                          x_log=True, marks=marks)
        else:
            self.query_one(LossPlot).show(loss_series(snapshot, context.colours, context.selected),
                                          context.log_scale, y_label="loss")

    def table(self, snapshot: Snapshot, context: ViewContext) -> tuple[tuple[str, ...], dict[str, list[str]]]:
        return SURFACE_COLUMNS, surface_rows(snapshot)

    def status(self, snapshot: Snapshot, context: ViewContext, *, speed: str, steps_per_second: float | None,
               frames_per_second: float | None) -> str:
        return status_text(snapshot, selected=context.selected, running=context.running, speed=speed,
                           steps_per_second=steps_per_second, frames_per_second=frames_per_second)

    def forget(self) -> None:
        self.surface, self._surface_key, self.limits, self._shown, self.crosshair = None, None, None, None, None
        if self._curves_timer is not None:
            self._curves_timer.stop()
        self._curves_timer, self._curves_pending, self._curves_look = None, None, None

    def _anatomy_arrows(self, snapshot: Snapshot, context: ViewContext) -> tuple[Arrow, ...]:
        """Paused: the selected lane's next update taken apart, -lr*grad then what the optimizer adds
        (tip to tail, so they visibly sum to the update), scaled together to be seen."""
        lane = next((lane for lane in snapshot.lanes if lane.name == context.selected), None)
        anatomy = getattr(lane, "anatomy", None)
        if anatomy is None or self.limits is None:
            return ()
        longest = max(np.hypot(*anatomy.update), np.hypot(*anatomy.gradient_step))
        if not np.isfinite(longest) or longest == 0:
            return ()
        (x0, x1), (y0, y1) = self.limits
        scale = self.ARROW_SHARE * min(x1 - x0, y1 - y0) / longest
        origin = tuple(float(v) for v in lane.current[0])
        grey = (170, 170, 170) if context.colours.dark else (90, 90, 90)
        step = (anatomy.gradient_step[0] * scale, anatomy.gradient_step[1] * scale)
        extra = (anatomy.extra[0] * scale, anatomy.extra[1] * scale)
        update = (anatomy.update[0] * scale, anatomy.update[1] * scale)
        colour = context.colours.plot(lane.name)
        arrows = [Arrow(origin, step, grey)]
        if np.hypot(*extra) > 1e-3 * np.hypot(*update):
            arrows.append(Arrow((origin[0] + step[0], origin[1] + step[1]), extra, grey))
        arrows.append(Arrow(origin, update, colour))
        self.anatomy_scale = scale
        return tuple(arrows)

    # --- the crosshair and clicks: where the selected lane starts -------------------------------
    def show_crosshair(self, point: tuple[float, float] | None) -> None:
        self.crosshair = point
        self.query_one(ContourPlot).set_overlay(point, self.query_one(ContourPlot)._arrows)

    def move_crosshair(self, dx: int, dy: int) -> None:
        if self.crosshair is None or self.limits is None:
            return
        (x0, x1), (y0, y1) = self.limits
        x = min(max(self.crosshair[0] + dx * (x1 - x0) / 40, x0), x1)
        y = min(max(self.crosshair[1] + dy * (y1 - y0) / 40, y0), y1)
        self.show_crosshair((x, y))

    def on_click(self, event) -> None:
        """A click on the contour pane starts the selected lane there."""
        contour = self.query_one(ContourPlot)
        offset = event.get_content_offset(contour)
        point = None if offset is None else contour.data_at(offset.x, offset.y)
        if point is not None:
            event.stop()
            self.show_crosshair(None)
            self.app.start_selected_at(point)

    def reset_view(self) -> None:
        if self.surface is not None:
            self._set_view(self.surface.xlim, self.surface.ylim)

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
            self._show_levels(key, minima, self._levels[key])
            return
        contour.set_view(xlim, ylim)  # old lines, clipped, until the new ones arrive
        self.run_worker(lambda: (key, minima, contour_map(surface.loss, xlim, ylim, log_levels=surface.log_levels,
                                                          min_value=surface.min_value)),
                        thread=True, exclusive=True, group="levels", name="levels", exit_on_error=False)

    def _show_levels(self, key: tuple, minima, levels) -> None:
        shading = Shading(levels.xs, levels.ys, levels.band_index(levels.values), len(levels.bands) + 1)
        contour = self.query_one(ContourPlot)
        contour.set_levels(key, levels.lines, key[1], key[2], minima, shading)
        scale = "loss (log bands)" if self.surface is not None and self.surface.log_levels else "loss"
        self.query_one(ColourBar).show(scale, [float(v) for v in levels.bands], contour.shade_colours())

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
            key, minima, levels = event.worker.result
            self._levels[key] = levels
            while len(self._levels) > LEVEL_CACHE:
                self._levels.popitem(last=False)
            if key == self._levels_wanted:
                self._show_levels(key, minima, levels)
