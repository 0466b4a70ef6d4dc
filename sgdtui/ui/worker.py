"""The session worker: the only thread that touches the Session once the app has started.

The App hands it commands (or *command builders*: functions of the session that return a
command, so a key press like ``+`` reads the lr the lane has at the step boundary where the
change lands, not the lr of a possibly stale frame). The worker applies them between steps,
steps while running, and publishes an immutable ``Frame`` by replacing one reference,
``latest``. The App polls ``latest`` at its frame rate; the worker never touches widgets.

Errors never kill the thread: a ``CommandError`` (a bad value) or any other exception is
queued on ``errors`` for the App to show as a notification; an unexpected exception while
stepping also pauses the run, so one broken step does not flood the screen.
"""

from __future__ import annotations

import collections
import concurrent.futures
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Union

from sgdtui.engine.session import Command, CommandError, Session, Snapshot, Step

# Steps per frame for each speed level; None: as fast as possible (frames throttled).
SPEED_LEVELS: tuple[int | None, ...] = (1, 2, 5, 10, 50, 200, None)
DEFAULT_SPEED = 1  # index into SPEED_LEVELS: two steps a frame
FRAME_RATE = 25.0
# MLP mode: seconds between gradient-noise estimates (each costs extra forward/backward passes
# per lane); frames in between are snapshotted without them.
GRAD_NOISE_PERIOD = 0.5
# MLP mode publishes fewer snapshots while running (each one costs metrics, history copies and a
# prediction grid, and every frame costs the App GIL time the training steps need); the panes that
# change slowest are throttled further by the App.
MLP_PUBLISH_RATE = 12.0
# Flat out, the worker steps in chunks of about this many seconds: short enough that a command or
# the next publish waits little, long enough that checking the clock costs nothing.
CHUNK_SECONDS = 0.02

CommandBuilder = Callable[[Session], Union[Command, None]]


def no_change(session: Session) -> None:
    """A call that does nothing: the worker publishes a fresh snapshot after it (even when paused)."""


def built_by(factory: Callable[..., CommandBuilder], lane: str, session: Session) -> Command | None:
    """``factory(lane)(session)``: a builder that pickles when ``factory`` does (module-level functions
    or partials of them), so it can cross to a session process; use ``functools.partial(built_by,
    factory, lane)``."""
    return factory(lane)(session)


def speed_label(level: int | None) -> str:
    return "max" if level is None else f"{level}/frame"


@dataclass(frozen=True)
class Frame:
    """What the worker publishes: a snapshot plus the run state it was taken in."""

    seq: int
    snapshot: Snapshot
    running: bool
    steps_per_frame: int | None
    steps_per_second: float


@dataclass(frozen=True)
class WorkerError:
    message: str
    severity: str = "error"


class _Call:
    """Run ``fn(session)`` in the worker thread and resolve ``future`` with its result."""

    def __init__(self, fn: Callable[[Session], Any]):
        self.fn = fn
        self.future: concurrent.futures.Future = concurrent.futures.Future()


class _Submitted:
    """A command (or builder) and the future that receives the command as the session logged it."""

    def __init__(self, item: Any):
        self.item = item
        self.future: concurrent.futures.Future = concurrent.futures.Future()


class _Control:
    """Run state changes travel through the queue too, so they are ordered with commands."""

    def __init__(self, running: bool | None = None, speed: int | None | str = "keep"):
        self.running = running
        self.speed = speed


class SessionWorker:
    """Owns a Session on a daemon thread; see the module docstring for the protocol."""

    def __init__(self, session: Session, *, frame_rate: float = FRAME_RATE,
                 speed_index: int = DEFAULT_SPEED, snapshot_rows: int = 2000,
                 grad_noise_period: float | None = GRAD_NOISE_PERIOD, publish_rate: float | None = None):
        self._session = session
        self.mode = session.mode
        # Seconds between published frames while running; by default a frame period in surface mode
        # and 1 / MLP_PUBLISH_RATE in MLP mode (never faster than the frame rate).
        if publish_rate is None:
            publish_rate = min(frame_rate, MLP_PUBLISH_RATE) if self.mode == "mlp" else frame_rate
        if not publish_rate > 0:
            raise ValueError(f"publish_rate must be > 0, got {publish_rate!r}")
        self.publish_period = 1.0 / publish_rate
        self._seconds_per_step = 0.0  # flat out: the latest measured cost of one step
        # Set by the App (a plain reference swap): the lane whose Hessian (surface mode) or decision
        # boundary (MLP mode) snapshots carry; None: every lane's Hessian (surface mode).
        self.selected: str | None = None
        self.grad_noise_period = grad_noise_period  # None: never estimate gradient noise
        self._grad_noise_at = -float("inf")
        self.frame_period = 1.0 / frame_rate
        self.snapshot_rows = snapshot_rows
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0  # submitted items not yet processed and published
        self._idle = threading.Condition()
        self._stop = threading.Event()
        self._running = False
        self._steps_per_frame = SPEED_LEVELS[speed_index]
        self._rate = 0.0
        self._rate_mark: tuple[float, int] | None = None
        self._seq = 0
        self._done_now = 0  # items handled since the last _mark_done
        self._held: list[Any] = []  # an item taken while pacing, handled first by the next _drain
        self.errors: collections.deque[WorkerError] = collections.deque()
        self.latest: Frame = self._make_frame()  # published before the thread starts
        self._thread = threading.Thread(target=self._loop, name="sgdtui-session", daemon=True)

    # --- the App's side ----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._queue.put(None)  # wake the loop
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, item: Command | CommandBuilder) -> concurrent.futures.Future:
        """Apply a command (or build one from the session, then apply it) at the next step boundary.

        The future resolves, before the frame showing the change is published, to the command as
        the session logged it (an added lane with the name it got), or None when it was rejected
        (the error goes to ``errors``) or a builder returned None."""
        submitted = _Submitted(item)
        self._put(submitted)
        return submitted.future

    def call(self, fn: Callable[[Session], Any]) -> concurrent.futures.Future:
        """Run ``fn(session)`` in the worker thread between steps; the future holds its result."""
        call = _Call(fn)
        self._put(call)
        return call.future

    def set_running(self, running: bool) -> None:
        self._put(_Control(running=running))

    def set_speed(self, speed_index: int) -> None:
        self._put(_Control(speed=SPEED_LEVELS[speed_index]))

    def step_once(self) -> None:
        """Pause, then take exactly one step."""
        self._put(_Control(running=False))
        self._put(Step(1))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every submitted item has been processed and its result published
        (tests use this to make key presses deterministic). False on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def take_errors(self) -> list[WorkerError]:
        out = []
        while self.errors:
            out.append(self.errors.popleft())
        return out

    def _put(self, item: Any) -> None:
        with self._idle:
            self._pending += 1
        self._queue.put(item)

    # --- the thread's side ---------------------------------------------------------------
    def _loop(self) -> None:
        last_publish = time.perf_counter()
        while not self._stop.is_set():
            try:
                processed = self._drain(block=not self._running)
                if self._stop.is_set():
                    break
                if self._running:
                    last_publish = self._run_one_frame(last_publish)
                elif processed:
                    self._publish()
                    last_publish = time.perf_counter()
            except Exception as exc:  # noqa: BLE001 - the thread must survive anything
                self._running = False
                self._safe_publish()  # first, so a reader who sees the error also sees the pause
                self._report(exc, prefix="run paused: ")
            finally:
                self._mark_done()

    def _drain(self, block: bool) -> int:
        """Process queued items; when ``block``, wait (briefly) for the first one."""
        processed = 0
        while True:
            if self._held:
                item = self._held.pop()
            else:
                try:
                    item = self._queue.get(block=block and processed == 0, timeout=0.1 if block else None)
                except queue.Empty:
                    return processed
            if item is None:
                return processed
            processed += 1
            self._done_now += 1
            self._handle(item)

    def _mark_done(self) -> None:
        done = self._done_now
        if done:
            self._done_now = 0
            with self._idle:
                self._pending -= done
                self._idle.notify_all()

    def _handle(self, item: Any) -> None:
        session = self._session
        try:
            if isinstance(item, _Control):
                if item.running is not None:
                    self._running = item.running
                    self._rate_mark = None
                    if not item.running:
                        self._rate = 0.0
                if item.speed != "keep":
                    self._steps_per_frame = item.speed
            elif isinstance(item, _Call):
                if not item.future.set_running_or_notify_cancel():
                    return  # the caller stopped waiting (a timeout): nothing to run
                try:
                    item.future.set_result(item.fn(session))
                except Exception as exc:  # noqa: BLE001 - the caller gets it through the future
                    item.future.set_exception(exc)
            elif isinstance(item, _Submitted):
                applied = None
                try:
                    applied = self._apply(item.item)
                finally:
                    item.future.set_result(applied)
            else:
                self._apply(item)
        except CommandError as exc:
            self.errors.append(WorkerError(str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported, the worker keeps serving
            self._report(exc)

    def _apply(self, item: Command | CommandBuilder) -> Command | None:
        """Apply a command, a builder's command or a Step; returns the command as logged."""
        session = self._session
        if isinstance(item, Step):
            self._advance(item.n)
            return item
        command = item(session) if callable(item) else item
        if command is None:
            return None
        before = len(session.log)
        session.apply(command)
        return session.log[-1][1] if len(session.log) > before else command

    def _report(self, exc: BaseException, prefix: str = "") -> None:
        self.errors.append(WorkerError(f"{prefix}{type(exc).__name__}: {exc}"))

    def _advance(self, n: int) -> None:
        """Step ``n`` times, applying a script's pending events when their step comes."""
        session = self._session
        left = n
        while left > 0:
            while session.pending and session.pending[0][0] <= session.clock:
                _, command = session.pending.pop(0)
                session.apply(command)
            chunk = left
            if session.pending:
                chunk = max(1, min(chunk, session.pending[0][0] - session.clock))
            session.step(chunk)
            left -= chunk

    def _run_one_frame(self, last_publish: float) -> float:
        start = time.perf_counter()
        if self._steps_per_frame is None:
            # Flat out: step in chunks of about CHUNK_SECONDS until a publish is due (or a command waits).
            while (left := self.publish_period - (time.perf_counter() - last_publish)) > 0 and self._queue.empty():
                # The last chunk is cut to the time left, so publishes keep their rate.
                seconds = min(CHUNK_SECONDS, left)
                chunk = 8 if self._seconds_per_step <= 0 else int(seconds / self._seconds_per_step) + 1
                chunk = min(chunk, 512)
                chunk_start = time.perf_counter()
                self._advance(chunk)
                self._seconds_per_step = (time.perf_counter() - chunk_start) / chunk
        else:
            self._advance(self._steps_per_frame)
        self._update_rate()
        now = time.perf_counter()
        if self._steps_per_frame is None:
            due = now - last_publish >= self.publish_period * 0.5
        else:  # paced: every frame, or every publish period when that is longer (MLP mode)
            due = now - last_publish >= self.publish_period - self.frame_period * 0.5
        if due:
            self._publish()
            last_publish = now
        if self._steps_per_frame is not None:
            # Pace to the frame rate, waking early for a command.
            wait = self.frame_period - (time.perf_counter() - start)
            if wait > 0:
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    pass
                else:
                    self._held.append(item)  # handled first by the next _drain, in order
        return last_publish

    def _update_rate(self) -> None:
        now, clock = time.perf_counter(), self._session.clock
        if self._rate_mark is None:
            self._rate_mark = (now, clock)
            return
        t0, c0 = self._rate_mark
        if now - t0 >= 0.5:
            self._rate = (clock - c0) / (now - t0)
            self._rate_mark = (now, clock)

    def _make_frame(self) -> Frame:
        self._seq += 1
        return Frame(self._seq, self._snapshot(), self._running, self._steps_per_frame, self._rate)

    def _snapshot(self):
        session = self._session
        if session.mode != "mlp":
            # The Hessian read-out (a double backward) only for the lane the status line shows.
            return session.snapshot(self.snapshot_rows, selected=self.selected)
        now = time.perf_counter()
        noise = self.grad_noise_period is not None and now - self._grad_noise_at >= self.grad_noise_period
        if noise:
            self._grad_noise_at = now
        return session.snapshot(self.snapshot_rows, selected=self.selected, gradient_noise=noise)

    def _publish(self) -> None:
        self.latest = self._make_frame()  # one reference swap: readers see old or new, never half

    def _safe_publish(self) -> None:
        try:
            self._publish()
        except Exception as exc:  # noqa: BLE001
            self._report(exc, prefix="snapshot failed: ")
