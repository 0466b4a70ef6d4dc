"""The playground App: a thin shell that turns key presses into Commands and draws Frames.

Key press -> action -> Command (data) -> Worker -> applied by the session's worker at a step
boundary. A timer polls ``worker.latest`` at the frame rate and hands the snapshot to the view
of the session's mode (``modes.MODES``), which draws it; the App draws the lanes table and the
status line from what the view gives. Nothing here blocks: background work (level lines, loss
slices) runs in Textual workers whose failures become notifications.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Iterable

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from sgdtui.engine.commands import AddLane, Nudge, RemoveLane, Reset, ScriptText, SwitchProblem
from sgdtui.engine.session import Session
from sgdtui.ui.bindings import BINDINGS, QUICK_SURFACES, action_name
from sgdtui.ui.modes import MODES, WORKER_KINDS
from sgdtui.ui.palette import playground_commands
from sgdtui.ui.present import LaneColours
from sgdtui.ui.process_worker import ProcessSessionWorker
from sgdtui.ui.screens.expression import ExpressionScreen
from sgdtui.ui.screens.help import HelpScreen
from sgdtui.ui.screens.pickers import optimizer_picker, surface_picker
from sgdtui.ui.sessions import SessionFactory
from sgdtui.ui.view_base import ModeView, ViewContext
from sgdtui.ui.widgets.lanes import LanesTable
from sgdtui.ui.widgets.status import StatusLine
from sgdtui.ui.worker import DEFAULT_SPEED, FRAME_RATE, SPEED_LEVELS, Frame, SessionWorker, Worker, speed_label

MIN_SIZE = (60, 20)  # below this the panes are replaced by a notice
RECORD_TIMEOUT = 10.0  # seconds a mode switch waits for the outgoing session's script


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

    def __init__(self, session: Session, factory: SessionFactory | None = None, *,
                 record_path: str | Path | None = None, speed_index: int = DEFAULT_SPEED,
                 start_running: bool = False, live_rates: bool = True, frame_rate: float = FRAME_RATE,
                 costly_period: float | None | str = "mode", worker_kind: str = "auto"):
        super().__init__()
        if worker_kind not in WORKER_KINDS:
            raise ValueError(f"worker_kind must be one of {', '.join(WORKER_KINDS)}, got {worker_kind!r}")
        self.worker_kind, self.frame_rate, self.costly_period = worker_kind, frame_rate, costly_period
        self.factory = factory or SessionFactory(session._registry(), seed=session.seed)
        self.record_path = Path(record_path) if record_path else None
        self.speed_index = speed_index
        self.worker: Worker = self._new_worker(session)
        self.start_running = start_running
        self.running = False
        self.live_rates = live_rates  # tests switch the wall-clock read-outs off for stable screenshots
        self.selected: str | None = None
        self.log_scale = False
        self.colours = LaneColours()
        self.frames_rendered = 0
        self._frame_seq = -1
        self._dirty = True
        self._frame_times: list[float] = []
        self.written_scripts: list[Path] = []
        self._added_lane = None  # the future of the latest `a`: its lane is selected once applied

    def _new_worker(self, session: Session) -> Worker:
        mode = MODES[session.kind]
        own_process = self.worker_kind == "process" or (self.worker_kind == "auto" and mode.own_process)
        kind = ProcessSessionWorker if own_process else SessionWorker
        return kind(session, mode.options(self.frame_rate, self.speed_index, self.costly_period))

    @property
    def mode(self) -> str:
        """The problem kind of the session being played ("surface", "mlp")."""
        return self.worker.kind

    @property
    def view(self) -> ModeView:
        return self.query_one(f"#{self.mode}-view", ModeView)

    # --- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Vertical(id="main"):
            with Horizontal(id="plots"):
                for mode in MODES.values():
                    yield mode.view(id=f"{mode.kind}-view")
            yield LanesTable(id="lanes")
            yield StatusLine(id="status")
        yield Static(f"terminal too small: sgdtui needs at least {MIN_SIZE[0]}x{MIN_SIZE[1]} (q quits)",
                     id="too-small")
        yield Footer()

    def on_mount(self) -> None:
        self._show_mode()
        self.worker.start()
        if self.start_running:
            self.action_toggle_run()
        self._check_size()
        self.set_interval(1.0 / self.frame_rate, self._tick)
        self._tick()

    async def on_unmount(self) -> None:
        if self.record_path is not None:
            await self._write(self.record_path)
        self.worker.stop()

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size)

    def _main_screen(self) -> Screen:
        return self.screen_stack[0] if self.screen_stack else self.screen

    def _check_size(self, size=None) -> None:
        width, height = size or self.size
        self._main_screen().set_class(width < MIN_SIZE[0] or height < MIN_SIZE[1], "too-small")

    def _show_mode(self) -> None:
        for view in self.query(ModeView):
            view.set_class(view.kind == self.mode, "-active")
        for kind in MODES:
            self._main_screen().set_class(kind == self.mode, f"mode-{kind}")
        self.refresh_bindings()  # the footer shows only what works in this mode

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
        except NoMatches:  # the timer can fire while the screen is being torn down (or not yet composed)
            self._dirty = True

    def render_frame(self, frame: Frame) -> None:
        snap = frame.snapshot
        self.running = frame.running
        names = snap.lane_names()
        self.colours.forget_missing(names)
        added = self._added_lane
        if added is not None and added.done():  # resolved before the frame showing the lane was published
            self._added_lane = None
            command = added.result()
            if isinstance(command, AddLane) and command.lane.get("name") in names:
                self.selected = self.worker.selected = command.lane["name"]
                self.worker.refresh()  # a snapshot with its read-outs, even when paused
        if self.selected not in names:
            self.selected = names[0] if names else None
        self.worker.selected = self.selected
        context = ViewContext(self.colours, self.selected, self.log_scale, frame.running)
        view = self.view
        view.show_snapshot(snap, context)
        columns, rows = view.table(snap, context)
        self.query_one(LanesTable).show(columns, rows, self.selected, self.colours)
        now = time.perf_counter()
        self._frame_times = [t for t in self._frame_times if now - t < 1.0] + [now]
        self.frames_rendered += 1
        self.query_one(StatusLine).show(view.status(
            snap, context, speed=speed_label(SPEED_LEVELS[self.speed_index]),
            steps_per_second=frame.steps_per_second if self.live_rates else None,
            frames_per_second=len(self._frame_times) if self.live_rates else None))

    # --- which actions work here ---------------------------------------------------------------
    def action_available(self, name: str) -> bool:
        """Mode-only actions (pan, loss slices, ...) work only in their mode."""
        owners = [mode for mode in MODES.values() if name in mode.view.actions]
        return not owners or any(mode.kind == self.mode for mode in owners)

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # tab/shift+tab are priority bindings: hand them back to modal screens (inputs, lists).
        if action == "select" and isinstance(self.screen, ModalScreen):
            return False
        return self.action_available(action)

    def on_key(self, event: events.Key) -> None:
        """A key of another mode's action says which mode it needs (the footer hides it)."""
        if isinstance(self.screen, ModalScreen):
            return
        for binding in BINDINGS:
            name = action_name(binding.action)
            if event.key in binding.key.split(",") and not self.action_available(name):
                other = next(mode.kind for mode in MODES.values() if name in mode.view.actions)
                self.notify(f"{binding.description}: {other} mode only (m switches modes)", severity="warning",
                            timeout=3)
                return

    # --- steering ------------------------------------------------------------------------------
    def _nudge(self, what: str, direction: int = 1) -> None:
        if self.selected is None:
            self.notify("no lane selected: press a to add one", severity="warning")
            return
        self.worker.submit(Nudge(self.selected, what, direction))

    def action_lr(self, direction: int) -> None:
        self._nudge("lr", direction)

    def action_beta(self, direction: int) -> None:
        self._nudge("decay", direction)

    def action_batch(self, direction: int) -> None:
        self._nudge("batch", direction)

    def action_schedule(self) -> None:
        self._nudge("schedule")

    def action_coupling(self) -> None:
        self._nudge("coupling")

    def action_weight_decay(self, direction: int) -> None:
        self._nudge("weight_decay", direction)

    def action_noise(self, direction: int) -> None:
        self._nudge("noise", direction)

    def action_toggle_run(self) -> None:
        self.running = not self.running
        self.worker.set_running(self.running)

    def action_step_once(self) -> None:
        self.running = False
        self.worker.step_once()

    def action_select(self, direction: int) -> None:
        names = self.worker.latest.snapshot.lane_names()
        if not names:
            return
        index = names.index(self.selected) if self.selected in names else -direction
        self.selected = self.worker.selected = names[(index + direction) % len(names)]
        # The selected lane's read-outs (Hessian, decision boundary) come with the next snapshot:
        # ask for one now, so a paused run shows them too.
        self.worker.refresh()
        self._dirty = True
        self._tick()

    def action_add_lane(self) -> None:
        self.push_screen(optimizer_picker(), self.add_lane)

    def add_lane(self, optimizer: str | None) -> None:
        """Add a lane of ``optimizer``; the session names it when it applies the command (sgd, sgd-2,
        ...), so quick presses never collide, and the lane is selected once a frame shows it."""
        if optimizer is not None:
            self._added_lane = self.worker.submit(AddLane({"optimizer": optimizer}))

    def action_remove_lane(self) -> None:
        if self.selected is None:
            return
        names = self.worker.latest.snapshot.lane_names()
        self.worker.submit(RemoveLane(self.selected))
        rest = [n for n in names if n != self.selected]
        self.selected = rest[min(names.index(self.selected), len(rest) - 1)] if rest and self.selected in names else None
        self.worker.selected = self.selected  # read when the frame after the removal is snapshotted

    def action_reset(self) -> None:
        self.worker.submit(Reset())

    # --- surfaces ------------------------------------------------------------------------------
    def quick_surfaces(self) -> list[str]:
        names = self.factory.registry.names()
        ordered = [n for n in QUICK_SURFACES if n in names] + [n for n in names if n not in QUICK_SURFACES]
        return ordered[:9]

    def action_quick_surface(self, index: int) -> None:
        names = self.quick_surfaces()
        if index < len(names):
            self.switch_surface(names[index])

    def switch_surface(self, name: str | None) -> None:
        if name is not None:
            self.worker.submit(SwitchProblem({"surface": name}))

    def action_pick_surface(self) -> None:
        self.push_screen(surface_picker(self.factory.registry, self.worker.latest.snapshot.label), self.switch_surface)

    def action_expression(self) -> None:
        surface = getattr(self.worker.latest.snapshot.payload, "surface", None)
        initial = getattr(surface, "expr", "") if surface is not None and surface.origin == "expression" else ""
        self.push_screen(ExpressionScreen(initial), self.switch_expression)

    def switch_expression(self, expr: str | None) -> None:
        if expr:
            self.worker.submit(SwitchProblem({"expr": expr}))

    def action_pan(self, dx: int, dy: int) -> None:
        self.view.pan(dx, dy)

    def action_zoom(self, direction: int) -> None:
        self.view.zoom(direction)

    # --- modes and MLP-only views ------------------------------------------------------------
    async def action_switch_mode(self) -> None:
        """A new session in the next mode: its default race, paused; the current lanes are dropped.
        While recording (--record), the outgoing session is written first, next to the record file."""
        outgoing, target = self.mode, self.factory.next_kind(self.mode)
        try:
            session = self.factory.build(target)
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
        old, self.worker = self.worker, self._new_worker(session)
        old.stop(timeout=0.0)  # the old thread exits at its next step boundary; never wait for it here
        self.worker.start()
        self.running, self.selected, self.colours, self._added_lane = False, None, LaneColours(), None
        self._frame_seq, self._dirty = -1, True
        for view in self.query(ModeView):
            view.forget()
        self._show_mode()
        self.notify(f"{target} mode: default race, paused (space runs)", timeout=3)
        self._tick()

    def action_landscape(self) -> None:
        if self.selected is None:
            self.notify("no lane selected: press a to add one", severity="warning")
            return
        self.view.request_slice(self.worker, self.selected)

    def action_landscape_directions(self) -> None:
        if self.selected is not None:
            self.view.request_slice(self.worker, self.selected, self.view.next_directions())

    async def action_phase(self) -> None:
        from sgdtui.ui.screens.phase import open_phase_screen  # the sweep, its screen and theory
        await open_phase_screen(self)

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale
        self._dirty = True

    def action_speed(self, direction: int) -> None:
        self.speed_index = min(max(self.speed_index + direction, 0), len(SPEED_LEVELS) - 1)
        self.worker.set_speed(self.speed_index)
        self._dirty = True

    # --- scripts -------------------------------------------------------------------------------
    async def action_write_script(self) -> None:
        # The record file is this session's own, rewritten on each press; a timestamped name never
        # overwrites an earlier script (two presses in one second: ...-2.toml).
        path = self.record_path or free_path(Path.cwd() / f"sgdtui-session-{datetime.now():%Y%m%d-%H%M%S}.toml")
        if await self._write(path):
            self.notify(f"session script written to {path}")

    async def _write(self, path: Path, timeout: float | None = None) -> bool:
        try:
            text = await asyncio.wait_for(asyncio.wrap_future(self.worker.ask(ScriptText())), timeout)
            Path(path).write_text(text, encoding="utf-8")
        except Exception as exc:  # noqa: BLE001 - shown, never fatal
            reason = "the session did not answer in time" if isinstance(exc, TimeoutError) else exc
            self.notify(f"cannot write {path}: {reason}", severity="error")
            return False
        self.written_scripts.append(Path(path))
        return True

    # --- help and palette ----------------------------------------------------------------------
    def help_bindings(self) -> list[tuple[str, str]]:
        rows = [(binding.key_display or binding.key, binding.description) for binding in BINDINGS]
        rows.append(("ctrl+p", "command palette: every action, surface and optimizer"))
        quick = ", ".join(f"{i + 1}={name}" for i, name in enumerate(self.quick_surfaces()))
        rows.append(("1-9", f"quick surfaces: {quick}"))
        return rows

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_bindings()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from playground_commands(self, super().get_system_commands(screen))
