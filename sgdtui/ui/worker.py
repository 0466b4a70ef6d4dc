"""The session worker: the only thread that touches the Session once the app has started.

The App hands it data: commands (applied between steps; a ``Nudge`` is resolved by the Session
against the lane as it is then), queries (answered between steps) and run controls. The worker
steps while running and publishes an immutable ``Frame`` by replacing one reference,
``latest``; the App polls ``latest`` at its frame rate. The worker never touches widgets.

``Worker`` is the interface the App uses; ``SessionWorker`` implements it on a thread and
``process_worker.ProcessSessionWorker`` over a child process, for problems whose stepping
should not share the GIL with rendering.

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
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable

from sgdtui.engine.commands import Command, CommandError, Query, Step
from sgdtui.engine.session import Session
from sgdtui.engine.snapshot import Snapshot

# Steps per frame for each speed level; None: as fast as possible (frames throttled).
SPEED_LEVELS: tuple[int | None, ...] = (1, 2, 5, 10, 50, 200, None)
DEFAULT_SPEED = 1  # index into SPEED_LEVELS: two steps a frame
FRAME_RATE = 25.0
# Flat out, the worker steps in chunks of about this many seconds: short enough that a command or
# the next publish waits little, long enough that checking the clock costs nothing.
CHUNK_SECONDS = 0.02
YIELD_SECONDS = 1.0  # flat out, after the App skipped a frame: this long, wait for it to draw each one
UNRESPONSIVE_SECONDS = 5.0  # a request unanswered (or a running session silent) this long: not responding


def speed_label(level: int | None) -> str:
    return "max" if level is None else f"{level}/frame"


@dataclass(frozen=True)
class WorkerOptions:
    """How a worker paces and snapshots a session (they cross to a session process as they are).

    ``publish_rate``: frames published per second while running (None: the frame rate).
    ``costly_period``: seconds between snapshots with the costly read-outs (0: every snapshot;
    None: never, but for a ``refresh``).
    """

    frame_rate: float = FRAME_RATE
    speed_index: int = DEFAULT_SPEED
    snapshot_rows: int = 2000
    publish_rate: float | None = None
    costly_period: float | None = 0.0

    def __post_init__(self) -> None:
        if not self.frame_rate > 0:
            raise ValueError(f"frame_rate must be > 0, got {self.frame_rate!r}")
        if self.publish_rate is not None and not self.publish_rate > 0:
            raise ValueError(f"publish_rate must be > 0, got {self.publish_rate!r}")
        if not 0 <= self.speed_index < len(SPEED_LEVELS):
            raise ValueError(f"speed_index must be in 0..{len(SPEED_LEVELS) - 1}, got {self.speed_index!r}")


@dataclass(frozen=True)
class Frame:
    """What the worker publishes: a snapshot plus the run state it was taken in."""

    seq: int
    snapshot: Snapshot
    running: bool
    steps_per_frame: int | None
    steps_per_second: float
    script_end: int | None = None  # the run paused here: the script's last step (space goes on)


@dataclass(frozen=True)
class WorkerError:
    message: str
    severity: str = "error"


class Worker(ABC):
    """What the App needs of whoever steps its session (a thread or a process)."""

    kind: str  # the session's problem kind
    latest: Frame
    selected: str | None  # the lane whose costly read-outs snapshots carry
    # Called on the worker's thread right after a frame is published (None: nobody is told; the
    # App polls ``latest`` anyway). It must be thread-safe and quick: the App posts itself a message.
    on_publish: Callable[[], None] | None = None

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self, timeout: float = 2.0) -> None: ...

    @property
    @abstractmethod
    def alive(self) -> bool: ...

    @abstractmethod
    def submit(self, command: Command) -> concurrent.futures.Future:
        """Apply ``command`` at the next step boundary. The future resolves, before the frame
        showing the change is published, to the command as the session logged it (a Nudge as its
        SetLane, an added lane with its name), or None when it was rejected (the error goes to
        ``errors``)."""

    @abstractmethod
    def ask(self, query: Query) -> concurrent.futures.Future:
        """Answer ``query`` between steps; the future holds the answer or the exception."""

    @abstractmethod
    def set_running(self, running: bool) -> None: ...

    @abstractmethod
    def set_speed(self, speed_index: int) -> None: ...

    @abstractmethod
    def step_once(self) -> None:
        """Pause, then take exactly one step."""

    @abstractmethod
    def refresh(self) -> None:
        """Publish a fresh frame (with the costly read-outs), even while paused."""

    @abstractmethod
    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until everything handed over so far is processed and published (tests)."""

    @abstractmethod
    def take_errors(self) -> list[WorkerError]: ...

    @abstractmethod
    def take_logged(self) -> list[tuple[int, Command]]:
        """The (step, command) entries the session logged since the last call, in order: every
        applied change, the App's and a script's own events alike (the App's ScriptMirror)."""

    @abstractmethod
    def health(self) -> str | None:
        """None while the session answers; else what is wrong, in a few words."""

    def frame_drawn(self, seq: int) -> None:
        """The App has put frame ``seq`` on screen (a worker may pace itself by it)."""

    def _announce_frame(self) -> None:
        """Tell ``on_publish`` that ``latest`` is new (the App polls too: a failure here is no loss)."""
        if self.on_publish is not None:
            try:
                self.on_publish()
            except Exception:  # noqa: BLE001 - the thread telling it must go on
                pass


class _Request:
    """An item that resolves a future: a command to apply or a query to answer."""

    def __init__(self, item: Command | Query):
        self.item = item
        self.future: concurrent.futures.Future = concurrent.futures.Future()


class _Control:
    """Run state changes travel through the queue too, so they are ordered with commands."""

    def __init__(self, running: bool | None = None, speed: int | None | str = "keep", refresh: bool = False):
        self.running = running
        self.speed = speed
        self.refresh = refresh


class SessionWorker(Worker):
    """Owns a Session on a daemon thread; see the module docstring for the protocol."""

    def __init__(self, session: Session, options: WorkerOptions | None = None):
        options = options or WorkerOptions()
        self._session = session
        self.kind = session.kind
        self.options = options
        self.frame_period = 1.0 / options.frame_rate
        self.publish_period = 1.0 / min(options.frame_rate, options.publish_rate or options.frame_rate)
        self._seconds_per_step = 0.0  # flat out: the latest measured cost of one step
        self.selected: str | None = None  # None: every lane's costly read-outs
        self._costly_at = -float("inf")
        self._force_costly = False
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0  # submitted items not yet processed and published
        self._idle = threading.Condition()
        self._stop = threading.Event()
        self._running = False
        self._steps_per_frame = SPEED_LEVELS[options.speed_index]
        self._rate = 0.0
        self._rate_mark: tuple[float, int] | None = None
        self._seq = 0
        self._done_now = 0  # items handled since the last _mark_done
        self._held: list[Any] = []  # an item taken while pacing, handled first by the next _drain
        # A script's run pauses once at its own step count (the session's ``steps``), then goes on.
        self._stop_at = session.steps if session.steps and session.clock < session.steps else None
        self._script_end: int | None = None
        self.errors: collections.deque[WorkerError] = collections.deque()
        self.logged: collections.deque[tuple[int, Command]] = collections.deque()
        self._log_cursor = len(session.log)
        self._busy_since: float | None = None  # when the oldest unprocessed item was handed over
        self._published_at = time.monotonic()
        self._frame_due: float | None = None  # when the current paced frame was due to start
        self._drawn = threading.Event()  # the App has drawn the latest frame (see frame_drawn)
        self._drawing = False  # an App says when it has drawn a frame
        self._yield_until = -float("inf")  # flat out: wait for the App to draw each frame until then
        self.latest: Frame = self._make_frame()  # published before the thread starts
        self._thread = threading.Thread(target=self._loop, name="sgdtui-session", daemon=True)

    # --- the App's side ----------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._queue.put(None)  # wake the loop
        if self._thread.is_alive() and timeout > 0:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def submit(self, command: Command) -> concurrent.futures.Future:
        request = _Request(command)
        self._put(request)
        return request.future

    def ask(self, query: Query) -> concurrent.futures.Future:
        request = _Request(query)
        self._put(request)
        return request.future

    def set_running(self, running: bool) -> None:
        self._put(_Control(running=running))

    def set_speed(self, speed_index: int) -> None:
        self._put(_Control(speed=SPEED_LEVELS[speed_index]))

    def step_once(self) -> None:
        self._put(_Control(running=False))
        self._put(_Request(Step(1)))

    def refresh(self) -> None:
        self._put(_Control(refresh=True))

    def wait_idle(self, timeout: float = 10.0) -> bool:
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

    def take_logged(self) -> list[tuple[int, Command]]:
        out = []
        while self.logged:
            out.append(self.logged.popleft())
        return out

    def health(self) -> str | None:
        if not self._thread.is_alive():
            return None if self._stop.is_set() or self._thread.ident is None else "the session thread stopped"
        now = time.monotonic()
        waiting = self._busy_since is not None and now - self._busy_since > UNRESPONSIVE_SECONDS
        silent = self._running and now - self._published_at > UNRESPONSIVE_SECONDS
        if waiting or silent:
            since = self._busy_since if waiting else self._published_at
            return f"the session has not answered for {now - since:.0f} s"
        return None

    def frame_drawn(self, seq: int) -> None:
        self._drawing = True
        if seq == self._seq:
            self._drawn.set()

    def _put(self, item: Any) -> None:
        with self._idle:
            if self._pending == 0:
                self._busy_since = time.monotonic()
            self._pending += 1
        self._queue.put(item)

    # --- the thread's side ---------------------------------------------------------------
    def _loop(self) -> None:
        self._session.race.for_display()
        last_publish = time.perf_counter()
        while not self._stop.is_set():
            try:
                processed = self._drain(block=not self._running)
                if self._stop.is_set():
                    break
                if self._running and processed:
                    self._publish()  # a key's effect shows now, not after the next frame's steps
                    last_publish = time.perf_counter()
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
                self._busy_since = None if self._pending == 0 else time.monotonic()
                self._idle.notify_all()

    def _handle(self, item: Any) -> None:
        if isinstance(item, _Control):
            if item.running is not None:
                self._running = item.running
                self._script_end = None
                self._rate_mark = None
                if not item.running:
                    self._rate = 0.0
            if item.speed != "keep":
                self._steps_per_frame = item.speed
            if item.refresh:
                self._force_costly = True
            return
        if not item.future.set_running_or_notify_cancel():
            return  # the caller stopped waiting (a timeout): nothing to do
        try:
            if isinstance(item.item, Query):
                item.future.set_result(self._session.query(item.item))
            else:
                item.future.set_result(self._session.apply(item.item))
        except CommandError as exc:
            self._resolve_failed(item, exc)
            self.errors.append(WorkerError(str(exc)))
        except Exception as exc:  # noqa: BLE001 - reported, the worker keeps serving
            self._resolve_failed(item, exc)
            self._report(exc)

    @staticmethod
    def _resolve_failed(request: _Request, exc: BaseException) -> None:
        # A rejected command resolves to None (its error is shown); a failed query carries the error.
        if isinstance(request.item, Query):
            request.future.set_exception(exc)
        else:
            request.future.set_result(None)

    def _report(self, exc: BaseException, prefix: str = "") -> None:
        self.errors.append(WorkerError(f"{prefix}{type(exc).__name__}: {exc}"))

    def _advance(self, n: int) -> None:
        """Step ``n`` times, or up to the script's end, where the run pauses once."""
        session = self._session
        if self._stop_at is not None:
            n = min(n, self._stop_at - session.clock)
        pause = session.next_pause()
        if pause is not None:
            n = max(0, min(n, pause - session.clock))
        session.advance(n)  # with n = 0 it applies the events due now (a pause at this step)
        if session.pause_requested:
            session.pause_requested = False
            self._running = False
            self._rate = 0.0
            text = session.caption[1] if session.caption else ""
            self.errors.append(WorkerError(f"paused at step {session.clock}: {text} (space goes on)"
                                           if text else f"paused at step {session.clock} (space goes on)",
                                           severity="information"))
            return
        if self._stop_at is not None and session.clock >= self._stop_at:
            self._script_end, self._stop_at = self._stop_at, None
            self._running = False
            self.errors.append(WorkerError(f"paused at the script's end (step {self._script_end}): space goes on",
                                           severity="information"))

    def _run_one_frame(self, last_publish: float) -> float:
        start = time.perf_counter()
        # Paced frames keep to a fixed schedule: a frame that starts late (waiting for the GIL while
        # the App draws, a busy machine) is followed by a shorter wait, so frames come at the frame
        # rate on average, not a few percent under it. Early (a command woke the loop) or more than
        # a frame late, the schedule starts again from now.
        due = self._frame_due
        if due is None or not 0.0 <= start - due <= self.frame_period:
            due = start
        self._frame_due = due + self.frame_period
        if self._steps_per_frame is None:
            # Flat out: step in chunks of about CHUNK_SECONDS until a publish is due (or a command waits).
            while ((left := self.publish_period - (time.perf_counter() - last_publish)) > 0 and self._queue.empty()
                   and self._running):
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
        else:  # paced: every frame, or every publish period when that is longer
            due = now - last_publish >= self.publish_period - self.frame_period * 0.5
        if due or not self._running:
            if self._drawing and not self._drawn.is_set():  # the App has not drawn the last one yet
                self._yield_until = now + YIELD_SECONDS
            self._publish()
            # Flat out, publishes keep to a fixed schedule too (see above).
            scheduled = last_publish + self.publish_period
            flat_out = self._steps_per_frame is None
            last_publish = scheduled if flat_out and 0.0 <= now - scheduled <= self.publish_period else now
        if self._steps_per_frame is None and (due or not self._running) and now < self._yield_until:
            # Flat out, stepping holds the GIL while the App draws the frame just published; when
            # the App falls behind (it skipped a frame), give it the time to draw each one (at
            # most half a publish period, less when it is quick) for a while, then step on.
            self._drawn.wait(self.publish_period * 0.5)
        if self._steps_per_frame is not None:
            # Pace to the frame rate, waking early for a command.
            wait = self._frame_due - time.perf_counter()
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
        return Frame(self._seq, self._snapshot(), self._running, self._steps_per_frame, self._rate, self._script_end)

    def _snapshot(self) -> Snapshot:
        period = self.options.costly_period
        now = time.perf_counter()
        costly = self._force_costly or (period is not None and now - self._costly_at >= period)
        if costly:
            self._costly_at, self._force_costly = now, False
        # While running, frames stream: a plot may reuse data a few frames old. A paused frame
        # (a step, a command, the pause itself) is the one that stays on screen: all of it fresh.
        return self._session.snapshot(self.options.snapshot_rows, selected=self.selected, costly=costly,
                                      live=self._running)

    def _publish(self) -> None:
        log = self._session.log
        if len(log) > self._log_cursor:  # handed over before the frame that shows them
            self.logged.extend(log[self._log_cursor:])
            self._log_cursor = len(log)
        self._drawn.clear()  # set again when the App has drawn this frame
        self.latest = self._make_frame()  # one reference swap: readers see old or new, never half
        self._published_at = time.monotonic()
        self._announce_frame()

    def _safe_publish(self) -> None:
        try:
            self._publish()
        except Exception as exc:  # noqa: BLE001
            self._report(exc, prefix="snapshot failed: ")
