"""The playground App: a thin shell that turns key presses into Commands and draws Frames.

Key press -> action -> Command (data) -> Worker -> applied by the session's worker at a step
boundary. A timer polls ``worker.latest`` at the frame rate and hands the snapshot to the view
of the session's mode (``modes.MODES``), which draws it; the App draws the lanes table and the
status line from what the view gives. Nothing here blocks: background work (level lines, loss
slices) runs in Textual workers whose failures become notifications.
"""

from __future__ import annotations

import concurrent.futures
import time
from pathlib import Path
from typing import Iterable

from textual import events
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from sgdtui.engine.commands import AddLane, Command
from sgdtui.engine.session import Session
from sgdtui.ui.bindings import BINDINGS, action_name
from sgdtui.ui.lab_actions import LabActions
from sgdtui.ui.mlp_actions import DATASET_KEYS, MLPActions
from sgdtui.ui.modes import MODES, WORKER_KINDS
from sgdtui.ui.palette import PlaygroundPalette, playground_commands
from sgdtui.ui.present import LaneColours
from sgdtui.ui.process_worker import ProcessSessionWorker
from sgdtui.ui.screens.help import HelpScreen
from sgdtui.ui.session_actions import SessionActions, free_path
from sgdtui.ui.sessions import SessionFactory
from sgdtui.ui.steering_actions import SteeringActions
from sgdtui.ui.surface_actions import SurfaceActions
from sgdtui.ui.view_base import ModeView, ViewContext
from sgdtui.ui.widgets.lanes import LanesTable
from sgdtui.ui.widgets.status import CaptionLine, StatusLine
from sgdtui.ui.worker import DEFAULT_SPEED, FRAME_RATE, SPEED_LEVELS, Frame, SessionWorker, Worker, speed_label

MIN_SIZE = (60, 20)  # below this the panes are replaced by a notice
TALL_ROWS = 32  # a terminal this tall keeps the status line's third row (the Lab's) in place
POLL_RATE = 60.0  # ticks per second that look for a newly published frame
# While a key's command is on its way, frames from before it are skipped (the UI thread is then
# free when the frame showing the key arrives), but never for longer than this many seconds.
ECHO_WAIT = 0.25


class FramePublished(Message):
    """The session's thread published a frame (posted from that thread: post_message is thread-safe)."""


class PlaygroundApp(SteeringActions, SurfaceActions, MLPActions, SessionActions, LabActions, App):
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
        self.worker: Worker = self.make_worker(session)
        self.start_running = start_running
        self.running = False
        self.live_rates = live_rates  # tests switch the wall-clock read-outs off for stable screenshots
        self.selected: str | None = None
        self.log_scale: bool | None = None  # None: automatic (log when the live range spans > 3 decades)
        self.colours = LaneColours()
        self.frames_rendered = 0
        self._frame_seq = -1
        self._dirty = True
        self._frame_times: list[float] = []
        self.written_scripts: list[Path] = []
        self._added_lane = None  # the future of the latest `a`: its lane is selected once applied
        # The latest submitted command, while no frame showing it has been drawn: (future, when
        # submitted, the seq of the latest frame when it was applied, or None before that).
        self._echo: list | None = None

    def own_process(self, kind: str) -> bool:
        return self.worker_kind == "process" or (self.worker_kind == "auto" and MODES[kind].own_process)

    def make_worker(self, session: Session, *, script: dict | None = None, pending: list | None = None) -> Worker:
        """The worker for ``session``; a new session (not a restart: ``pending`` given) gets a new mirror."""
        options = MODES[session.kind].options(self.frame_rate, self.speed_index, self.costly_period)
        if pending is None:
            self.new_mirror(session)
        if self.own_process(session.kind):
            worker: Worker = ProcessSessionWorker(session, options, script=script, pending=pending)
        else:
            worker = SessionWorker(session, options)
        # A published frame is drawn at once, not at the next poll (up to 1/POLL_RATE later).
        worker.on_publish = lambda: self.post_message(FramePublished())
        return worker

    def submit(self, command: Command) -> concurrent.futures.Future:
        """Hand ``command`` to the worker; the frame that shows it is drawn as soon as it comes
        (see ``_tick``). Every key's command goes through here."""
        worker = self.worker
        submitted_at = worker.latest.seq
        future = worker.submit(command)
        echo = [future, time.monotonic(), None]

        def applied(_future) -> None:  # on the worker's thread, before the frame showing it is published
            echo[2] = worker.latest.seq

        future.add_done_callback(applied)
        if future.done():  # applied already (the callback ran here): any later frame may show it
            echo[2] = submitted_at
        self._echo = echo
        return future

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
            yield CaptionLine(id="caption")
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
        # Poll for new frames well above the frame rate: a tick without a new frame costs nothing,
        # and a key's effect then waits ~1/(2*POLL_RATE) for the screen, not half a frame.
        self.set_interval(1.0 / max(self.frame_rate, POLL_RATE), self._tick)
        self._tick()

    async def on_unmount(self) -> None:
        self.follow_session()
        if self.record_path is not None:
            self.write_record()
        self.worker.stop(timeout=0.0)  # the thread ends at its next step boundary; a process is reaped

    def on_resize(self, event: events.Resize) -> None:
        self._check_size(event.size)
        self._dirty = True  # the lanes table fits its columns to the new width at the next tick

    def _main_screen(self) -> Screen:
        return self.screen_stack[0] if self.screen_stack else self.screen

    def _check_size(self, size=None) -> None:
        width, height = size or self.size
        self._main_screen().set_class(width < MIN_SIZE[0] or height < MIN_SIZE[1], "too-small")
        try:
            self._main_screen().query_one(StatusLine).set_min_rows(3 if height >= TALL_ROWS else 2)
        except NoMatches:  # not composed yet
            pass

    def _show_mode(self) -> None:
        for view in self.query(ModeView):
            view.set_class(view.kind == self.mode, "-active")
        for kind in MODES:
            self._main_screen().set_class(kind == self.mode, f"mode-{kind}")
        self.refresh_bindings()  # the footer shows only what works in this mode

    # --- the frame loop ----------------------------------------------------------------------
    def on_frame_published(self, message: FramePublished) -> None:
        self._tick()

    def _tick(self) -> None:
        for error in self.worker.take_errors():
            self.notify(error.message, severity=error.severity, timeout=8)
        self.follow_session()
        frame = self.worker.latest
        if frame.seq == self._frame_seq and not self._dirty:
            return
        echo, prompt = self._echo, False
        if echo is not None:
            applied_at = echo[2]
            if applied_at is not None and frame.seq > applied_at:
                self._echo, prompt = None, True  # this frame shows the key's effect
            elif frame.running and time.monotonic() - echo[1] < ECHO_WAIT:
                return  # from before the key: the next frame shows it, so draw that one at once
            else:
                self._echo = None
        self._frame_seq, self._dirty = frame.seq, False
        try:
            self.render_frame(frame, prompt=prompt)
        except NoMatches:  # the timer can fire while the screen is being torn down (or not yet composed)
            self._dirty = True

    def render_frame(self, frame: Frame, prompt: bool = False) -> None:
        """Draw ``frame``; ``prompt``: it answers a key press, so panes that may lag draw later."""
        snap = frame.snapshot
        self.running = frame.running
        self.colours.dark = bool(self.current_theme.dark)  # lane shades follow the theme
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
        context = ViewContext(self.colours, self.selected, self.log_scale, frame.running, prompt=prompt)
        view = self.view
        view.show_snapshot(snap, context)
        columns, rows = view.table(snap, context)
        self.query_one(LanesTable).show(columns, rows, self.selected, self.colours, view.table_drop_order)
        now = time.perf_counter()
        self._frame_times = [t for t in self._frame_times if now - t < 1.0] + [now]
        self.frames_rendered += 1
        status = view.status(snap, context, speed=speed_label(SPEED_LEVELS[self.speed_index]),
                             steps_per_second=frame.steps_per_second if self.live_rates else None,
                             frames_per_second=len(self._frame_times) if self.live_rates else None)
        if frame.script_end is not None:
            status = f"■ script end (step {frame.script_end}), space goes on · {status}"
        self.query_one(StatusLine).show(self.health_prefix() + status)
        self.query_one(CaptionLine).show(snap.caption)
        self.call_after_refresh(self.worker.frame_drawn, frame.seq)  # on screen: flat out, stepping goes on

    # --- which actions work here ---------------------------------------------------------------
    def action_available(self, name: str) -> bool:
        """Mode-only actions (pan, loss slices, ...) work only in their mode; crosshair keys only
        while the crosshair is up."""
        owners = [mode for mode in MODES.values() if name in mode.view.actions]
        if owners and not any(mode.kind == self.mode for mode in owners):
            return False
        if name in getattr(self.view, "crosshair_actions", ()):
            return self.view.crosshair is not None
        return True

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        # tab/shift+tab are priority bindings: hand them back to modal screens (inputs, lists).
        if action == "select" and isinstance(self.screen, ModalScreen):
            return False
        return self.action_available(action)

    def on_key(self, event: events.Key) -> None:
        """A key of another mode's action says which mode it needs (the footer hides it)."""
        if isinstance(self.screen, ModalScreen):
            return
        bindings = [binding for binding in BINDINGS if event.key in binding.key.split(",")]
        if any(self.action_available(action_name(binding.action)) for binding in bindings):
            return  # a binding of this mode took it
        for binding in bindings:
            name = action_name(binding.action)
            others = [mode.kind for mode in MODES.values() if name in mode.view.actions and mode.kind != self.mode]
            if others:
                self.notify(f"{binding.description}: {others[0]} mode only (m switches modes)", severity="warning",
                            timeout=3)
                return

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
            if not self.write_script(path):
                self.notify("mode switch would drop the recorded session: press w to save it elsewhere, or run"
                            " without --record", severity="error", timeout=8)
                return
            self.notify(f"recorded {outgoing} session written to {path}", timeout=5)
        old, self.worker = self.worker, self.make_worker(session)
        old.stop(timeout=0.0)  # the old thread exits at its next step boundary; never wait for it here
        self.worker.start()
        self.running, self.selected, self._added_lane = False, None, None
        self.colours = LaneColours(bool(self.current_theme.dark))
        self._frame_seq, self._dirty = -1, True
        self._echo = None  # a new worker counts its frames afresh
        for view in self.query(ModeView):
            view.forget()
        self._show_mode()
        self.notify(f"{target} mode: default race, paused (space runs)", timeout=3)
        self._tick()

    # --- help and palette ----------------------------------------------------------------------
    def help_bindings(self) -> list[tuple[str, str]]:
        """Every binding's key and what it does, the numbered ones with the surface or dataset they open."""
        quick, datasets = self.quick_surfaces(), DATASET_KEYS
        rows = []
        for binding in BINDINGS:
            description = binding.description
            if binding.action.startswith("quick_surface("):
                index = int(binding.action[len("quick_surface("):-1])
                description = f"surface: {quick[index]}" if index < len(quick) else "surface (none)"
            elif binding.action.startswith("quick_dataset("):
                description = f"dataset: {datasets[int(binding.action[len('quick_dataset('):-1])]} (MLP)"
            rows.append((binding.key_display or binding.key, description))
        return rows

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.help_bindings()))

    def action_command_palette(self) -> None:
        if self.use_command_palette and not PlaygroundPalette.is_open(self):
            self.push_screen(PlaygroundPalette(id="--command-palette"))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from playground_commands(self, super().get_system_commands(screen))
