"""MLP mode's view: the decision boundary (or the sine fit), the loss-landscape slice once
computed, train loss and validation accuracy. The loss pane shows a range-test lane's loss
against lr when that lane is selected, and (``i``) the intrinsic-lr view: η/‖W‖² of every lane's
normalized layers over time, with the selected lane's per-layer read-outs below the curves.
Each pane redraws only when its data changed, and
while a run goes at most at its own rate (every redraw costs the App's thread, which shares the
GIL with the training steps when the session steps in this process)."""

from __future__ import annotations

import asyncio
import time
from typing import Callable, ClassVar, Hashable

import numpy as np
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from sgdtui.engine.snapshot import Snapshot
from sgdtui.mlp.snapshot import DIRECTIONS, LandscapeSlice, LossSlice
from sgdtui.ui.present_mlp import (MLP_COLUMNS, MLP_DROP, intrinsic_series, layer_lines, mlp_loss_series,
                                   mlp_metric_series, mlp_rows, mlp_status_text, range_test_view, swa_note)
from sgdtui.ui.view_base import ModeView, ViewContext
from sgdtui.ui.widgets.boundary import DecisionBoundaryPlot
from sgdtui.ui.present import legend_entries
from sgdtui.ui.widgets.contour import ContourPlot, TrajectoryView
from sgdtui.ui.widgets.legend import Legend
from sgdtui.ui.widgets.loss import LossPlot

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

    def due(self, structure: Hashable, data: Hashable, throttled: bool, defer: bool = False) -> bool:
        """Whether to draw now; a True answer records (structure, data) as shown. ``defer``: only
        new data, however late, waits for a later call (a change of structure still draws)."""
        if (structure, data) == self.shown:
            return False
        if defer and structure == self.shown[0]:
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


class MLPView(ModeView):
    """The MLP panes, plus the latest gradient-noise estimate of each lane (estimates arrive only
    now and then; frames in between keep showing the last one)."""

    kind: ClassVar[str] = "mlp"
    actions: ClassVar[frozenset[str]] = frozenset({"landscape", "landscape_directions", "quick_dataset",
                                                   "cycle_hidden", "cycle_activation", "cycle_norm",
                                                   "intrinsic_view"})
    table_drop_order: ClassVar[tuple[str, ...]] = MLP_DROP

    def __init__(self, *, id: str | None = None, clock: Callable[[], float] = time.perf_counter) -> None:  # noqa: A002
        super().__init__(id=id)
        self.grad_noise: dict[str, float] = {}
        self.landscape: LandscapeSlice | None = None
        self.directions = DIRECTIONS[0]
        self.boundary_throttle = PaneThrottle(BOUNDARY_RATE, clock)
        self.loss_throttle = PaneThrottle(LOSS_RATE, clock)
        self.metric_throttle = PaneThrottle(METRIC_RATE, clock)
        self.table_throttle = PaneThrottle(TABLE_RATE, clock)
        self._rows: tuple[tuple, dict[str, list[str]]] = ((), {})
        self.intrinsic = False  # the loss pane shows η/‖W‖² over time (the `i` key)

    def compose(self) -> ComposeResult:
        yield DecisionBoundaryPlot(id="boundary")
        yield ContourPlot(id="slice")
        with Vertical(id="mlp-curves"):
            yield LossPlot("train loss", id="train-loss")
            yield LossPlot("val accuracy", id="accuracy")
            yield Static("", id="mlp-layers", markup=False)
            yield Legend(id="mlp-legend")

    def forget(self) -> None:
        self.grad_noise, self.landscape, self._rows = {}, None, ((), {})
        self.intrinsic = False
        self.set_class(False, "landscape")
        self.set_class(False, "intrinsic")
        for throttle in (self.boundary_throttle, self.loss_throttle, self.metric_throttle, self.table_throttle):
            throttle.forget()

    def show_snapshot(self, snap: Snapshot, context: ViewContext) -> None:
        """Draw what changed in ``snap``; while running, each pane at most at its rate."""
        colours, selected, log_scale, running = context.colours, context.selected, context.log_scale, context.running
        payload = snap.payload
        names = tuple(lane.name for lane in snap.lanes)
        self.grad_noise = {k: v for k, v in self.grad_noise.items() if k in names}
        for lane in snap.lanes:
            if lane.grad_noise is not None:
                self.grad_noise[lane.name] = lane.grad_noise
        state = (snap.version, snap.clock)
        structure = (names, selected, log_scale, payload.task)
        # A frame that answers a key press while running draws only what shows the key (the table
        # and status line, and a pane whose structure changed); the plots' new data wait for the
        # next frame, 40 ms later.
        defer = running and context.prompt
        if self.boundary_throttle.due((payload.boundary_lane, payload.task, payload.data_key), state, running,
                                      defer=defer):
            self._draw_boundary(snap, colours)
        if self.loss_throttle.due((*structure, self.intrinsic), state, running, defer=defer):
            self._draw_loss(snap, context)
        # Validation curves change only when an evaluation lands.
        evals = tuple((len(lane.eval_steps), int(lane.eval_steps[-1]) if len(lane.eval_steps) else None)
                      for lane in snap.lanes)
        if self.metric_throttle.due(structure, evals, running, defer=defer):
            series, label = mlp_metric_series(snap, colours, selected)
            self.query_one("#accuracy", LossPlot).show(series, log_scale if payload.task == "regression" else False,
                                                       y_label=label)

    def _draw_loss(self, snap: Snapshot, context: ViewContext) -> None:
        """The loss pane: the intrinsic-lr view when on, a selected range-test lane's loss against
        lr, or every lane's train loss (the selected lane's val loss, and SWA curve, in white and
        yellow)."""
        colours, selected = context.colours, context.selected
        plot = self.query_one("#train-loss", LossPlot)
        lane = next((lane for lane in snap.lanes if lane.name == selected), None)
        self.set_class(self.intrinsic, "intrinsic")
        if self.intrinsic:
            series, label = intrinsic_series(snap, colours, selected)
            plot.show(series, True if context.log_scale is None else context.log_scale, y_label=label,
                      title="same lr·λ → same height")
            self.query_one("#mlp-layers", Static).update(layer_lines(lane))
            note = f"{selected}'s layers below" if selected else ""
        elif (view := range_test_view(snap, colours, selected)) is not None:
            series, marks, title = view
            plot.show(series, context.log_scale, title=title, y_label="smoothed train loss vs lr", x_log=True,
                      marks=marks)
            note = "x: lr (log)"
        else:
            plot.show(mlp_loss_series(snap, colours, selected), context.log_scale, y_label="train loss")
            note = swa_note(snap, selected)
        self.query_one(Legend).show(legend_entries(snap, colours), selected, note)

    def suggested_lr(self, snapshot: Snapshot, lane: str) -> float | None:
        """The lr a range-test lane suggests (its default rule's), None when it is no range test
        or has no suggestion yet."""
        try:
            reading = snapshot.lane(lane).range_test
        except KeyError:
            return None
        return None if reading is None else reading.suggested_lr

    def toggle_intrinsic(self) -> bool:
        self.intrinsic = not self.intrinsic
        self.loss_throttle.forget()
        return self.intrinsic

    def table(self, snap: Snapshot, context: ViewContext) -> tuple[tuple[str, ...], dict[str, list[str]]]:
        names = tuple(lane.name for lane in snap.lanes)
        data = ((snap.version, snap.clock), tuple(sorted(self.grad_noise.items())))
        # The answer to a key press (a new lr, batch, ...) is drawn at once, not at the table's rate.
        throttled = context.running and not context.prompt
        if self.table_throttle.due((names, context.selected), data, throttled) or self._rows[0] != names:
            self._rows = (names, mlp_rows(snap, self.grad_noise))
        return MLP_COLUMNS, self._rows[1]

    def status(self, snapshot: Snapshot, context: ViewContext, *, speed: str, steps_per_second: float | None,
               frames_per_second: float | None) -> str:
        return mlp_status_text(snapshot, selected=context.selected, running=context.running, speed=speed,
                               steps_per_second=steps_per_second, frames_per_second=frames_per_second)

    def _draw_boundary(self, snap: Snapshot, colours) -> None:
        p = snap.payload
        lane_name = p.boundary_lane or "no lane"
        boundary = self.query_one(DecisionBoundaryPlot)
        if p.task == "regression":
            colour = colours.plot(p.boundary_lane) if p.boundary_lane else (86, 180, 233)
            boundary.show_fit(p.grid, p.grid_xlim, p.grid_ylim, p.x_train[:, 0], p.y_train.reshape(-1),
                              data_key=p.data_key, colour=colour, title=f"{lane_name} · fit on {p.dataset}"
                              " (· train, + validation)", val_x=p.x_val[:, 0], val_y=p.y_val.reshape(-1))
        else:
            boundary.show_classes(p.grid, p.grid_xlim, p.grid_ylim, p.x_train, p.y_train, data_key=p.data_key,
                                  title=f"{lane_name} · predicted class (· train, + validation)",
                                  val_points=p.x_val, val_labels=p.y_val)

    # --- loss-landscape slices: asked of the session worker, drawn when they arrive -----------
    def request_slice(self, worker, lane: str, directions: str | None = None) -> None:
        """Ask ``worker`` for ``lane``'s slice; it is drawn when it arrives, an error is notified."""
        if directions is not None:
            self.directions = directions
        future = worker.ask(LossSlice(lane, self.directions))

        async def wait() -> tuple:
            return worker, await asyncio.wrap_future(future)

        self.run_worker(wait, group="landscape", exclusive=True, name="landscape", exit_on_error=False)

    def next_directions(self) -> str:
        return DIRECTIONS[(DIRECTIONS.index(self.directions) + 1) % len(DIRECTIONS)]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "landscape":
            return
        event.stop()
        if event.state == WorkerState.ERROR:
            self.app.notify(f"loss slice failed: {event.worker.error}", severity="error")
        elif event.state == WorkerState.SUCCESS:
            worker, piece = event.worker.result
            if worker is getattr(self.app, "worker", None):  # not from a session since replaced
                self.show_landscape(piece, self.app.colours.plot(piece.lane))

    def show_landscape(self, piece: LandscapeSlice, colour: str) -> None:
        """The slice's level lines, the lane's projected path on top (its current weights are the
        plane's origin)."""
        self.landscape = piece
        contour = self.query_one("#slice", ContourPlot)
        contour.set_levels(("slice", piece.lane, piece.directions, piece.step, id(piece)), piece.lines,
                           piece.xlim, piece.ylim, np.empty((0, 2)))
        view = TrajectoryView(piece.lane, colour, (piece.path,), np.zeros((1, 2)), np.zeros(1, dtype=bool),
                              selected=True)
        contour.show([view], title=f"{piece.lane} · loss slice ({piece.directions}) · step {piece.step}")
        self.set_class(True, "landscape")

    @property
    def landscape_ready(self) -> bool:
        return self.landscape is not None
