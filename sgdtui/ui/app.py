"""The playground App: a thin shell that turns key presses into Commands and draws Frames.

Key press -> action -> Command (or command builder) -> SessionWorker queue -> applied by the
worker thread at a step boundary. A timer polls ``worker.latest`` at the frame rate and
renders it. Nothing here blocks: level lines are traced in a Textual thread worker. MLP sessions
step in a separate process (``ProcessSessionWorker``, same interface), so training does not share
the GIL with rendering; what the App sends there must pickle (partials of module-level functions).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import functools
import operator
import time
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Iterable

import numpy as np
from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static
from textual.worker import Worker, WorkerState

from sgdtui.engine.contours import level_lines
from sgdtui.engine.optimizers import OPTIMIZERS
from sgdtui.engine.session import AddLane, RemoveLane, Reset, Session, SwitchSurface
from sgdtui.engine.surfaces import Surface, SurfaceRegistry
from sgdtui.ui import steering
from sgdtui.ui.bindings import BINDINGS, QUICK_SURFACES
from sgdtui.ui.landscape import DIRECTIONS, compute_slice
from sgdtui.ui.launch import MLP_BATCH, build_mlp_session, build_surface_session
from sgdtui.ui.mlp_panes import MLPPanes
from sgdtui.ui.present import LaneColours, loss_series, status_text, trajectory_views
from sgdtui.ui.present_mlp import mlp_status_text
from sgdtui.ui.process_worker import ProcessSessionWorker
from sgdtui.ui.screens.expression import ExpressionScreen
from sgdtui.ui.screens.help import HelpScreen
from sgdtui.ui.screens.pickers import optimizer_picker, surface_picker
from sgdtui.ui.widgets.boundary import DecisionBoundaryPlot
from sgdtui.ui.widgets.contour import ContourPlot
from sgdtui.ui.widgets.lanes import LanesTable
from sgdtui.ui.widgets.loss import LossPlot
from sgdtui.ui.widgets.status import StatusLine
from sgdtui.ui.worker import (
    DEFAULT_SPEED,
    FRAME_RATE,
    GRAD_NOISE_PERIOD,
    SPEED_LEVELS,
    Frame,
    SessionWorker,
    built_by,
    no_change,
    speed_label,
)

MIN_SIZE = (60, 20)  # below this the panes are replaced by a notice
PAN_FRACTION = 0.1
ZOOM_FACTOR = 1.25
LEVEL_CACHE = 16
RECORD_TIMEOUT = 10.0  # seconds a mode switch waits for the outgoing session's script
# Which worker steps the session: "auto" (MLP mode in a separate process, so training does not share
# the GIL with rendering; surface mode in a thread, cheap and with frequent snapshots), "thread" or
# "process" (every session).
WORKER_KINDS = ("auto", "thread", "process")
WORKER_KIND = "auto"


def free_path(path: Path) -> Path:
    """``path`` if no file is there, else the first free ``stem-2.suffix``, ``stem-3.suffix``, ..."""
    path = Path(path)
    k = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
        k += 1
    return candidate


class PlaygroundApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "sgdtui"
    BINDINGS = BINDINGS

    def __init__(self, session: Session, registry: SurfaceRegistry | None = None, *,
                 record_path: str | Path | None = None, speed_index: int = DEFAULT_SPEED,
                 start_running: bool = False, live_rates: bool = True, frame_rate: float = FRAME_RATE,
                 launch_args: argparse.Namespace | None = None, grad_noise_period: float | None = GRAD_NOISE_PERIOD,
                 worker_kind: str | None = None):
        super().__init__()
        self.worker_kind = WORKER_KIND if worker_kind is None else worker_kind
        if self.worker_kind not in WORKER_KINDS:
            raise ValueError(f"worker_kind must be one of {', '.join(WORKER_KINDS)}, got {self.worker_kind!r}")
        self.registry = registry if registry is not None else (session.registry or SurfaceRegistry())
        self.record_path = Path(record_path) if record_path else None
        self.launch_args = launch_args if launch_args is not None else argparse.Namespace()
        self.frame_rate, self.grad_noise_period = frame_rate, grad_noise_period
        self.worker = self._new_worker(session, speed_index)
        self.speed_index = speed_index
        self.start_running = start_running
        self.running = False
        self.live_rates = live_rates  # tests switch the wall-clock read-outs off for stable screenshots
        self.frame_period = 1.0 / frame_rate
        self.selected: str | None = None
        self.log_scale = False
        self.colours = LaneColours()
        self.view: tuple[tuple[float, float], tuple[float, float]] | None = None
        self.frames_rendered = 0
        self._surface: Surface | None = None
        self._frame_seq = -1
        self._dirty = True
        self._frame_times: list[float] = []
        self._levels: OrderedDict[tuple, list] = OrderedDict()
        self._levels_wanted: tuple | None = None
        self.written_scripts: list[Path] = []
        self._added_lane: concurrent.futures.Future | None = None  # the latest `a`: selected once applied
        self.landscape_directions = DIRECTIONS[0]
        self.mlp: MLPPanes | None = None

    def _new_worker(self, session: Session, speed_index: int) -> SessionWorker | ProcessSessionWorker:
        in_process = self.worker_kind == "process" or (self.worker_kind == "auto" and session.mode == "mlp")
        kind = ProcessSessionWorker if in_process else SessionWorker
        return kind(session, frame_rate=self.frame_rate, speed_index=speed_index,
                    grad_noise_period=self.grad_noise_period)

    @property
    def mode(self) -> str:
        """"surface" or "mlp": the mode of the session being played."""
        return self.worker.mode

    # --- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="main"):
            with Horizontal(id="plots"):
                yield DecisionBoundaryPlot(id="boundary")
                yield ContourPlot(id="contour")
                with Vertical(id="curves"):
                    yield LossPlot(id="loss")
                    yield LossPlot("val accuracy", id="accuracy")
            yield LanesTable(id="lanes")
            yield StatusLine(id="status")
        yield Static(f"terminal too small: sgdtui needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]} (q quits)",
                     id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self.mlp = MLPPanes(self.query_one(DecisionBoundaryPlot), self.query_one("#loss", LossPlot),
                            self.query_one("#accuracy", LossPlot), self.query_one(LanesTable),
                            self.query_one(ContourPlot))
        if self.mode == "mlp":
            self._show_mode()
        self.worker.start()
        if self.start_running:
            self.action_toggle_run()
        self._check_size()
        self.set_interval(self.frame_period, self._tick)
        self._tick()

    async def on_unmount(self) -> None:
        if self.record_path is not None:
            await self._write(self.record_path)
        self.worker.stop()

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size)

    def _check_size(self, size=None) -> None:
        width, height = size or self.size
        main_screen = self.screen_stack[0] if self.screen_stack else self.screen
        main_screen.set_class(width < MIN_SIZE[0] or height < MIN_SIZE[1], "too-small")

    # --- the frame loop ----------------------------------------------------------------------
    def _tick(self) -> None:
        for error in self.worker.take_errors():
            self.notify(error.message, severity="error", timeout=8)
        frame = self.worker.latest
        if frame.seq == self._frame_seq and not self._dirty:
            return
        self._frame_seq, self._dirty = frame.seq, False
        try:
            self.render_frame(frame)
        except NoMatches:
            # The timer can fire while the screen is being torn down (or not yet composed).
            self._dirty = True

    def render_frame(self, frame: Frame) -> None:
        snap = frame.snapshot
        self.running = frame.running
        names = [lane.name for lane in snap.lanes]
        self.colours.forget_missing(names)
        added = self._added_lane
        if added is not None and added.done():  # resolved before the frame showing the lane was published
            self._added_lane = None
            command = added.result()
            if isinstance(command, AddLane) and command.lane.get("name") in names:
                self.selected = self.worker.selected = command.lane["name"]
                self.worker.call(no_change)  # a snapshot with its read-outs, even when paused
        if self.selected not in names:
            self.selected = names[0] if names else None
        self.worker.selected = self.selected
        if self.mode == "mlp":
            self.mlp.render(snap, self.colours, self.selected, self.log_scale, running=frame.running)
        else:
            if snap.surface is not self._surface:
                self._surface = snap.surface
                self.view = (tuple(snap.surface.xlim), tuple(snap.surface.ylim))
                self._request_levels()
            self.query_one(ContourPlot).show(trajectory_views(snap, self.colours, self.selected),
                                             title=snap.surface.name)
            self.query_one("#loss", LossPlot).show(loss_series(snap, self.colours, self.selected), self.log_scale,
                                                   y_label="loss")
            self.query_one(LanesTable).show(snap, self.selected, self.colours)
        now = time.perf_counter()
        self._frame_times = [t for t in self._frame_times if now - t < 1.0] + [now]
        self.frames_rendered += 1
        status = mlp_status_text if self.mode == "mlp" else status_text
        self.query_one(StatusLine).show(status(
            snap, selected=self.selected, running=frame.running, speed=speed_label(SPEED_LEVELS[self.speed_index]),
            steps_per_second=frame.steps_per_second if self.live_rates else None,
            frames_per_second=len(self._frame_times) if self.live_rates else None,
        ))

    # --- level lines, traced off the event loop ------------------------------------------------
    def _request_levels(self) -> None:
        surface, (xlim, ylim) = self._surface, self.view
        key = (id(surface), surface.name, xlim, ylim)
        self._levels_wanted = key
        minima = np.asarray(surface.minima, dtype=np.float64).reshape(-1, 2)
        if key in self._levels:
            self._levels.move_to_end(key)
            self.query_one(ContourPlot).set_levels(key, self._levels[key], xlim, ylim, minima)
            return
        self.query_one(ContourPlot).set_view(xlim, ylim)  # old lines, clipped, until the new ones arrive
        self.run_worker(lambda: (key, minima, level_lines(surface.loss, xlim, ylim, log_levels=surface.log_levels,
                                                          min_value=surface.min_value)),
                        thread=True, exclusive=True, group="levels", name="levels")

    @property
    def levels_ready(self) -> bool:
        """Whether the contour pane shows the level lines of the current surface and view."""
        return self._levels_wanted is not None and self.query_one(ContourPlot)._levels_key == self._levels_wanted

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "landscape":
            self._landscape_done(event)
            return
        if event.worker.group != "levels":
            return
        if event.state == WorkerState.ERROR:
            self.notify(f"level lines failed: {event.worker.error}", severity="error")
        elif event.state == WorkerState.SUCCESS:
            key, minima, lines = event.worker.result
            self._levels[key] = lines
            while len(self._levels) > LEVEL_CACHE:
                self._levels.popitem(last=False)
            if key == self._levels_wanted:
                self.query_one(ContourPlot).set_levels(key, lines, key[2], key[3], minima)

    # --- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # tab/shift+tab are priority bindings: hand them back to modal screens (inputs, lists).
        if action == "select" and isinstance(self.screen, ModalScreen):
            return False
        return True

    def _steer(self, factory, *args) -> None:
        """Submit ``factory(selected lane, *args)``, a steering builder; sent as a partial of module-level
        functions so it pickles (the MLP session steps in another process)."""
        if self.selected is None:
            self.notify("no lane selected: press a to add one", severity="warning")
            return
        factory = functools.partial(factory, direction=args[0]) if args else factory
        self.worker.submit(functools.partial(built_by, factory, self.selected))

    def action_toggle_run(self) -> None:
        self.running = not self.running
        self.worker.set_running(self.running)

    def action_step_once(self) -> None:
        self.running = False
        self.worker.step_once()

    def action_lr(self, direction: int) -> None:
        self._steer(steering.nudge_lr, direction)

    def action_beta(self, direction: int) -> None:
        self._steer(steering.nudge_decay, direction)

    def action_batch(self, direction: int) -> None:
        self._steer(steering.scale_batch, direction)

    def action_schedule(self) -> None:
        self._steer(steering.cycle_schedule)

    def action_coupling(self) -> None:
        self._steer(steering.cycle_coupling)

    def action_weight_decay(self, direction: int) -> None:
        self._steer(steering.nudge_weight_decay, direction)

    def action_noise(self, direction: int) -> None:
        if self._surface_only("gradient noise n/N"):
            return
        self._steer(steering.nudge_noise, direction)

    def action_select(self, direction: int) -> None:
        names = [lane.name for lane in self.worker.latest.snapshot.lanes]
        if not names:
            return
        index = names.index(self.selected) if self.selected in names else -direction
        self.selected = names[(index + direction) % len(names)]
        self.worker.selected = self.selected
        # The Hessian read-out (surface) or decision boundary (MLP) of the lane comes with the next
        # snapshot: ask for one now, so a paused run shows it too.
        self.worker.call(no_change)
        self._dirty = True
        self._tick()

    def action_add_lane(self) -> None:
        self.push_screen(optimizer_picker(), self.add_lane)

    def add_lane(self, optimizer: str | None) -> None:
        """Add a lane of ``optimizer``; the session names it when it applies the command (sgd, sgd-2,
        ...), so quick presses never collide, and the lane is selected once a frame shows it."""
        if optimizer is None:
            return
        table = {"optimizer": optimizer, **({"batch": MLP_BATCH} if self.mode == "mlp" else {})}
        self._added_lane = self.worker.submit(AddLane(table))

    def action_remove_lane(self) -> None:
        if self.selected is None:
            return
        names = [lane.name for lane in self.worker.latest.snapshot.lanes]
        self.worker.submit(RemoveLane(self.selected))
        rest = [n for n in names if n != self.selected]
        self.selected = rest[min(names.index(self.selected), len(rest) - 1)] if rest and self.selected in names else None
        self.worker.selected = self.selected  # read when the frame after the removal is snapshotted

    def action_reset(self) -> None:
        self.worker.submit(Reset())

    def quick_surfaces(self) -> list[str]:
        names = self.registry.names()
        ordered = [n for n in QUICK_SURFACES if n in names] + [n for n in names if n not in QUICK_SURFACES]
        return ordered[:9]

    def action_quick_surface(self, index: int) -> None:
        if self._surface_only("surfaces 1-9"):
            return
        names = self.quick_surfaces()
        if index < len(names):
            self.switch_surface(names[index])

    def switch_surface(self, name: str | None) -> None:
        if name is not None:
            self.worker.submit(SwitchSurface(surface=name))

    def action_pick_surface(self) -> None:
        if self._surface_only("the surface picker"):
            return
        current = self._surface.name if self._surface else None
        self.push_screen(surface_picker(self.registry, current), self.switch_surface)

    def action_expression(self) -> None:
        if self._surface_only("expression surfaces"):
            return
        initial = getattr(self._surface, "expr", "") if self._surface and self._surface.origin == "expression" else ""
        self.push_screen(ExpressionScreen(initial), self.switch_expression)

    def switch_expression(self, expr: str | None) -> None:
        if expr:
            self.worker.submit(SwitchSurface(expr=expr))

    def action_pan(self, dx: int, dy: int) -> None:
        if self._surface_only("panning"):
            return
        if self.view is None:
            return
        (x0, x1), (y0, y1) = self.view
        sx, sy = (x1 - x0) * PAN_FRACTION * dx, (y1 - y0) * PAN_FRACTION * dy
        self._set_view((x0 + sx, x1 + sx), (y0 + sy, y1 + sy))

    def action_zoom(self, direction: int) -> None:
        if self._surface_only("zooming"):
            return
        if self.view is None:
            return
        factor = ZOOM_FACTOR ** -direction
        (x0, x1), (y0, y1) = self.view
        cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 * factor, (y1 - y0) / 2 * factor
        if min(hx, hy) < 1e-9 or max(hx, hy) > 1e9:
            return
        self._set_view((cx - hx, cx + hx), (cy - hy, cy + hy))

    def _set_view(self, xlim, ylim) -> None:
        self.view = (tuple(float(v) for v in xlim), tuple(float(v) for v in ylim))
        self._request_levels()

    # --- modes and MLP-only views ------------------------------------------------------------
    def _surface_only(self, what: str) -> bool:
        """In MLP mode: say so (a short notification) and return True."""
        if self.mode != "mlp":
            return False
        self.notify(f"{what}: surface mode only (m switches modes)", severity="warning", timeout=3)
        return True

    def _show_mode(self) -> None:
        main_screen = self.screen_stack[0] if self.screen_stack else self.screen
        main_screen.set_class(self.mode == "mlp", "mlp-mode")
        main_screen.set_class(self.mode == "mlp" and self.mlp.landscape is not None, "landscape")

    async def action_switch_mode(self) -> None:
        """A new session in the other mode: its default race, paused; the current lanes are dropped.
        While recording (--record), the outgoing session is written first, next to the record file."""
        outgoing = self.mode
        target = "surface" if outgoing == "mlp" else "mlp"
        try:
            session = (build_surface_session(self.registry, getattr(self.launch_args, "seed", 0) or 0)
                       if target == "surface" else build_mlp_session(self.launch_args))
        except ValueError as exc:
            self.notify(f"cannot switch to {target} mode: {exc}", severity="error")
            return
        if self.record_path is not None:
            record = self.record_path
            path = free_path(record.with_name(f"{record.stem}.{outgoing}{record.suffix}"))  # run.surface.toml
            if not await self._write(path, timeout=RECORD_TIMEOUT):
                self.notify("mode switch would drop the recorded session: press w to save it, or run without"
                            " --record", severity="error", timeout=8)
                return
            self.notify(f"recorded {outgoing} session written to {path}", timeout=5)
        old, self.worker = self.worker, self._new_worker(session, self.speed_index)
        old.stop(timeout=0.0)  # the old thread exits at its next step boundary; never wait for it here
        self.worker.start()
        self.running, self.selected, self.colours, self._added_lane = False, None, LaneColours(), None
        self._surface, self._frame_seq, self._dirty = None, -1, True
        self.mlp.forget()
        self._show_mode()
        self.notify(f"{target} mode: default race, paused (space runs)", timeout=3)
        self._tick()

    def action_landscape(self) -> None:
        self._request_slice()

    def action_landscape_directions(self) -> None:
        if self.mode == "mlp":
            self.landscape_directions = DIRECTIONS[(DIRECTIONS.index(self.landscape_directions) + 1) % len(DIRECTIONS)]
        self._request_slice()

    def _request_slice(self) -> None:
        """Compute the selected lane's loss slice in the session thread; drawn when it arrives."""
        if self.mode != "mlp":
            self.notify("loss slices: MLP mode only (m switches modes)", severity="warning", timeout=3)
            return
        if self.selected is None:
            self.notify("no lane selected: press a to add one", severity="warning")
            return
        lane, directions, worker = self.selected, self.landscape_directions, self.worker
        future = worker.call(functools.partial(compute_slice, lane=lane, directions=directions))

        async def wait() -> tuple:
            return worker, await asyncio.wrap_future(future)

        self.run_worker(wait, group="landscape", exclusive=True, name="landscape")

    def _landscape_done(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR:
            self.notify(f"loss slice failed: {event.worker.error}", severity="error")
        elif event.state == WorkerState.SUCCESS:
            worker, piece = event.worker.result
            if worker is self.worker:  # not from a session since replaced by a mode switch
                self.mlp.show_landscape(piece, self.colours.plot(piece.lane))
                self._show_mode()

    @property
    def landscape_ready(self) -> bool:
        return self.mlp is not None and self.mlp.landscape is not None

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        self._dirty = True

    def action_speed(self, direction: int) -> None:
        self.speed_index = min(max(self.speed_index + direction, 0), len(SPEED_LEVELS) - 1)
        self.worker.set_speed(self.speed_index)
        self._dirty = True

    async def action_write_script(self) -> None:
        # The record file is this session's own, rewritten on each press; a timestamped name never
        # overwrites an earlier script (two presses in one second: ...-2.toml).
        path = self.record_path or free_path(Path.cwd() / f"sgdtui-session-{datetime.now():%Y%m%d-%H%M%S}.toml")
        if await self._write(path):
            self.notify(f"session script written to {path}")

    async def _write(self, path: Path, timeout: float | None = None) -> bool:
        try:
            future = asyncio.wrap_future(self.worker.call(operator.methodcaller("to_toml")))
            text = await asyncio.wait_for(future, timeout)
            Path(path).write_text(text, encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - shown, never fatal
            reason = "the session did not answer in time" if isinstance(exc, TimeoutError) else exc
            self.notify(f"cannot write {path}: {reason}", severity="error")
            return False
        self.written_scripts.append(Path(path))
        return True

    def help_bindings(self) -> list[tuple[str, str]]:
        rows = []
        for binding in BINDINGS:
            key = binding.key_display or binding.key
            rows.append((key, binding.description))
        rows.append(("ctrl+p", "command palette: every action, surface and optimizer"))
        quick = ", ".join(f"{i + 1}={name}" for i, name in enumerate(self.quick_surfaces()))
        rows.append(("1-9", f"quick surfaces: {quick}"))
        return rows

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_bindings()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for binding in BINDINGS:
            if binding.action.startswith("quick_surface"):
                continue
            yield SystemCommand(binding.description, f"key: {binding.key_display or binding.key}",
                                lambda action=binding.action: self.run_action(action))
        for surface in self.registry:
            yield SystemCommand(f"Surface: {surface.name}", surface.description,
                                lambda name=surface.name: self.switch_surface(name), discover=False)
        for name, spec in OPTIMIZERS.items():
            yield SystemCommand(f"Add lane: {name}", spec.description,
                                lambda name=name: self.add_lane(name), discover=False)
