"""The session worker in a separate process, so training steps and Textual's rendering do not
share one GIL (MLP mode: the App's frames would otherwise cost the training thread a third of its
speed).

``ProcessSessionWorker`` implements the ``Worker`` interface. The child process (forked from a
multiprocessing forkserver that preloads torch and the engine) rebuilds the Session from the parent's script (a Session is a pure function of its
script, so it steps to identical numbers), runs an ordinary ``SessionWorker`` thread, and
forwards: requests arrive on a Pipe; every newly published Frame, every error and each future's
result go back. The parent keeps ``latest`` current from a receiver thread.

Only data crosses the Pipe (commands, queries and controls are plain dataclasses). The child's
stderr goes to /dev/null (it shares the terminal the TUI draws on); its exceptions arrive as
``WorkerError``s.
"""

from __future__ import annotations

import collections
import concurrent.futures
import itertools
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import signal
import sys
import threading
import time
from dataclasses import replace
from typing import Any

from sgdtui.engine.commands import Command, Query
from sgdtui.engine.script import validate_script
from sgdtui.engine.session import Session
from sgdtui.engine.surfaces import SurfaceRegistry
from sgdtui.ui.worker import UNRESPONSIVE_SECONDS, Frame, SessionWorker, Worker, WorkerError, WorkerOptions

CHILD_POLL_SECONDS = 0.01  # how often the child looks for a newly published frame
START_TIMEOUT = 60.0  # seconds a request may wait for the child to come up (torch import, session build)


class SessionProcessError(RuntimeError):
    """The session process is gone (stopped, crashed or never started)."""


# --- the child ------------------------------------------------------------------------------


def rebuild_session(script: dict, pending: list, steps: int | None, history_capacity: int | None,
                    registry: SurfaceRegistry | None) -> Session:
    """The session a script dict describes, stepped to its clock; ``pending`` events still to come."""
    parsed = validate_script(script, path="<session>", text="", registry=registry)
    session = Session.from_script(parsed, history_capacity=history_capacity)
    session.run(script.get("steps", 0))  # replays the logged events up to the parent's clock
    session.pending = list(pending)
    session.steps = steps
    return session


def _safe_result(value: Any, error: BaseException | None) -> tuple[bool, Any]:
    if error is None:
        try:
            pickle.dumps(value)
            return True, value
        except Exception as exc:  # noqa: BLE001
            error = exc
    try:
        pickle.dumps(error)
        return False, error
    except Exception:  # noqa: BLE001
        return False, RuntimeError(f"{type(error).__name__}: {error}")


def _process_context():
    """A forkserver that has imported torch and the engine once, so each session process (a mode
    switch, a restart, a browser tab's MLP session) starts in milliseconds instead of paying the
    imports again; "spawn" where there is no forkserver. The forkserver is single-threaded and has
    run no torch op, so forking it is safe, and each child still rebuilds its Session from the
    script, so the numbers are the same."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["sgdtui.ui.process_worker", "sgdtui.mlp.race"])
    return context


def warm_up() -> None:
    """Start the forkserver (it imports torch and the engine in the background) so the first
    session process forks at once; a no-op once it runs, or where processes are spawned."""
    context = _process_context()
    if context.get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()


def _child_main(conn, script: dict, pending: list, steps: int | None, history_capacity: int | None,
                registry: SurfaceRegistry | None, options: WorkerOptions) -> None:
    # The TUI owns the terminal: nothing of the child may write to it.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    send_lock = threading.Lock()

    def send(message: tuple) -> None:
        with send_lock:
            try:
                conn.send(message)
            except (OSError, EOFError):
                pass  # the parent is gone; the receive loop ends next
            except Exception as exc:  # noqa: BLE001 - an unpicklable frame, say
                conn.send(("errors", [WorkerError(f"session process: {type(exc).__name__}: {exc}")]))

    try:
        import torch

        torch.set_num_threads(1)  # tiny tensors: a thread pool would only spin
        inner = SessionWorker(rebuild_session(script, pending, steps, history_capacity, registry), options)
    except Exception as exc:  # noqa: BLE001
        send(("fatal", f"session process failed to start: {type(exc).__name__}: {exc}"))
        conn.close()
        return
    inner.start()
    stop = threading.Event()
    sent: list[Frame | None] = [None]

    flush_lock = threading.Lock()

    def flush() -> None:
        """Send a newly published frame (first) and any errors."""
        with flush_lock:
            frame = inner.latest
            if frame is not sent[0]:
                logged = inner.take_logged()  # taken after the frame: they all precede it
                if logged:
                    send(("logged", logged))
                sent[0] = frame
                send(("frame", frame))
            errors = inner.take_errors()
            if errors:
                send(("errors", errors))

    published = threading.Event()
    inner.on_publish = published.set  # a new frame goes out at once, not at the next poll

    def publisher() -> None:
        while not stop.is_set():
            published.clear()
            flush()
            published.wait(CHILD_POLL_SECONDS)  # the poll still picks up errors and logged commands

    def reply(request_id: int):
        def done(future: concurrent.futures.Future) -> None:
            error = future.exception()
            ok, value = _safe_result(None if error else future.result(), error)
            send(("result", request_id, ok, value))
        return done

    thread = threading.Thread(target=publisher, name="sgdtui-frames", daemon=True)
    thread.start()
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break  # the parent is gone: never outlive it
            kind = message[0]
            if kind == "stop":
                break
            try:
                if kind in ("submit", "ask"):
                    _, request_id, item = message
                    future = inner.submit(item) if kind == "submit" else inner.ask(item)
                    future.add_done_callback(reply(request_id))
                elif kind == "running":
                    inner.set_running(message[1])
                elif kind == "speed":
                    inner.set_speed(message[1])
                elif kind == "step_once":
                    inner.step_once()
                elif kind == "refresh":
                    inner.refresh()
                elif kind == "selected":
                    inner.selected = message[1]
                elif kind == "wait_idle":
                    _, request_id, timeout = message
                    ok = inner.wait_idle(timeout)
                    flush()
                    send(("idle", request_id, ok))
            except Exception as exc:  # noqa: BLE001 - reported, the child keeps serving
                send(("errors", [WorkerError(f"session process: {type(exc).__name__}: {exc}")]))
    finally:
        stop.set()
        inner.stop()
        send(("stopped",))
        conn.close()


# --- the parent -------------------------------------------------------------------------------


class ProcessSessionWorker(Worker):
    """The ``Worker`` interface over a child process that owns the session."""

    def __init__(self, session: Session, options: WorkerOptions | None = None, *,
                 script: dict | None = None, pending: list | None = None):
        """``script`` (with ``pending``): the child replays this instead of ``session``'s own
        script (a restart from the App's copy; ``session`` then only gives the first frame)."""
        options = options or WorkerOptions()
        # A local worker that never starts: takes the first frame, so the App has something to draw
        # while the child imports torch and rebuilds the session.
        local = SessionWorker(session, options)
        self.kind = local.kind
        self.options = options
        self._seq = local.latest.seq
        self.latest: Frame = local.latest
        self.errors: collections.deque[WorkerError] = collections.deque()
        self.logged: collections.deque[tuple[int, Command]] = collections.deque()
        self._heard_at = time.monotonic()  # the latest message from the child
        self._asked_at: dict[int, float] = {}  # unanswered requests: when each was sent
        self._selected: str | None = None
        context = _process_context()
        self._conn, child_conn = context.Pipe()
        self.process = context.Process(
            target=_child_main, name="sgdtui-session",
            args=(child_conn, script or session.to_script(), list(session.pending if pending is None else pending),
                  session.steps,
                  session.race.history_capacity, session.registry, options),
            daemon=True)
        self._child_conn = child_conn
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._futures: dict[int, concurrent.futures.Future] = {}
        self._idle_waits: dict[int, list] = {}
        self._futures_lock = threading.Lock()
        self._started = self._stopping = self._closed = self._child_ready = False
        self._reaper: threading.Thread | None = None
        self._launched = threading.Event()  # process.start() has returned (or failed)
        self._receiver = threading.Thread(target=self._receive, name="sgdtui-session-receiver", daemon=True)

    # --- the App's side ----------------------------------------------------------------------
    def start(self) -> None:
        # Textual replaces sys.stderr with a capture whose fileno() is -1; multiprocessing hands that
        # fd to its resource tracker (and forkserver) when it first starts them: give them the real
        # stderr meanwhile. Forking the child waits for the forkserver's imports, so that part runs
        # on the receiver thread: the UI never waits for it (requests queue in the Pipe meanwhile).
        stderr = sys.stderr
        try:
            if stderr is not sys.__stderr__ and sys.__stderr__ is not None:
                sys.stderr = sys.__stderr__
            warm_up()
        finally:
            sys.stderr = stderr
        self._started = True
        self._receiver.start()

    def _launch(self) -> bool:
        try:
            self.process.start()
        except Exception as exc:  # noqa: BLE001 - shown, the App stays usable
            self.errors.append(WorkerError(f"session process failed to start: {type(exc).__name__}: {exc}"))
            self._closed = True
            return False
        finally:
            self._launched.set()
        self._child_conn.close()  # the child holds its end; ours closing lets recv see EOF when it exits
        return True

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the child to stop; wait up to ``timeout`` s, then end it. With timeout 0 a reaper
        thread waits for it instead, so no process is left behind either way."""
        if self._stopping:
            return
        stuck = self._started and self.health() is not None  # not answering: no grace to give
        self._stopping = True
        if not self._started:
            return
        self._send(("stop",))
        if timeout > 0:
            self._reap(min(timeout, 0.2) if stuck else timeout)
        else:
            self._reaper = threading.Thread(target=self._reap, args=(0.2 if stuck else 5.0,),
                                            name="sgdtui-session-reaper", daemon=True)
            self._reaper.start()

    def join(self, timeout: float = 15.0) -> bool:
        """After ``stop``: wait until the child is gone (reaped by whichever thread stopped it).
        Only this waits on the process, so no two threads race for its exit status."""
        if self._reaper is not None:
            self._reaper.join(timeout)
        elif self._started:
            self._reap(timeout)
        return self.process.pid is None or not self.process.is_alive()

    def end_now(self) -> None:
        """At the program's exit: the child has nothing to save (the App keeps the script), so it
        is killed rather than waited for (it may still be importing torch)."""
        self._stopping = True
        # Not forked yet (the forkserver still importing): the child would see a closed Pipe and end.
        if self._started and self._launched.is_set() and self.process.pid is not None:
            self.process.kill()
            self.process.join(1.0)

    def _reap(self, timeout: float) -> None:
        self._launched.wait(START_TIMEOUT)
        if self.process.pid is None:  # never started
            return
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.terminate()
            self._continue()  # a stopped (SIGSTOP) child takes the SIGTERM only once it runs again
            self.process.join(2.0)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(2.0)
        self._receiver.join(1.0)

    def _continue(self) -> None:
        try:
            os.kill(self.process.pid, signal.SIGCONT)
        except (OSError, TypeError):  # gone already, or never started
            pass

    @property
    def alive(self) -> bool:
        return self._started and not self._closed and (not self._launched.is_set() or self.process.is_alive())

    @property
    def selected(self) -> str | None:
        return self._selected

    @selected.setter
    def selected(self, name: str | None) -> None:
        if name != self._selected:
            self._selected = name
            self._send(("selected", name))

    def submit(self, command: Command) -> concurrent.futures.Future:
        return self._request("submit", command)

    def ask(self, query: Query) -> concurrent.futures.Future:
        return self._request("ask", query)

    def set_running(self, running: bool) -> None:
        self._send(("running", bool(running)))

    def set_speed(self, speed_index: int) -> None:
        self._send(("speed", speed_index))

    def step_once(self) -> None:
        self._send(("step_once",))

    def refresh(self) -> None:
        self._send(("refresh",))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until the child has processed everything sent so far and its frame is ``latest``."""
        request_id = next(self._ids)
        done = threading.Event()
        answer = [False]
        with self._futures_lock:
            self._idle_waits[request_id] = [done, answer]
        if not self._send(("wait_idle", request_id, timeout)):
            return False
        # The child may still be starting (importing torch): allow for that on top of ``timeout``.
        done.wait(timeout + (1.0 if self._child_ready else START_TIMEOUT))
        with self._futures_lock:
            self._idle_waits.pop(request_id, None)
        return done.is_set() and answer[0]

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
        if not self._started or self._stopping:
            return None
        if self._closed or (self._launched.is_set() and not self.process.is_alive()):
            return "the session process has exited"
        now = time.monotonic()
        limit = UNRESPONSIVE_SECONDS if self._child_ready else START_TIMEOUT
        with self._futures_lock:
            oldest = min(self._asked_at.values(), default=None)
        waiting = oldest is not None and now - oldest > limit
        silent = self.latest.running and now - self._heard_at > limit
        if waiting or silent:
            since = oldest if waiting else self._heard_at
            return f"the session process has not answered for {now - since:.0f} s"
        return None

    def _request(self, kind: str, item: Any) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        request_id = next(self._ids)
        with self._futures_lock:
            self._futures[request_id] = future
            self._asked_at[request_id] = time.monotonic()
        if not self._send((kind, request_id, item)):
            with self._futures_lock:
                self._futures.pop(request_id, None)
                self._asked_at.pop(request_id, None)
            if not future.done():
                future.set_exception(SessionProcessError("the session process is not running"))
        return future

    def _send(self, message: tuple) -> bool:
        if self._closed:
            return False
        with self._send_lock:
            try:
                self._conn.send(message)
                return True
            except (OSError, EOFError, BrokenPipeError):
                return False

    # --- the receiver thread -------------------------------------------------------------------
    def _receive(self) -> None:
        if not self._launch():
            return
        try:
            while True:
                try:
                    message = self._conn.recv()
                except (EOFError, OSError):
                    if not self._stopping:
                        self.errors.append(WorkerError("the session process exited unexpectedly"))
                    break
                except Exception as exc:  # noqa: BLE001 - a message that does not unpickle here
                    self.errors.append(WorkerError(f"session process: {type(exc).__name__}: {exc}"))
                    continue
                kind = message[0]
                self._child_ready = True
                self._heard_at = time.monotonic()
                if kind == "logged":
                    self.logged.extend(message[1])
                elif kind == "frame":
                    self._seq += 1
                    self.latest = replace(message[1], seq=self._seq)
                    self._announce_frame()  # as a thread worker does: the App draws it now
                elif kind == "errors":
                    self.errors.extend(message[1])
                elif kind == "result":
                    _, request_id, ok, value = message
                    with self._futures_lock:
                        future = self._futures.pop(request_id, None)
                        self._asked_at.pop(request_id, None)
                    if future is not None and future.set_running_or_notify_cancel():
                        if ok:
                            future.set_result(value)
                        else:
                            future.set_exception(value)
                elif kind == "idle":
                    _, request_id, ok = message
                    with self._futures_lock:
                        waiting = self._idle_waits.pop(request_id, None)
                    if waiting is not None:
                        waiting[1][0] = ok
                        waiting[0].set()
                elif kind == "fatal":
                    self.errors.append(WorkerError(message[1]))
                elif kind == "stopped":
                    break
        finally:
            self._closed = True
            with self._futures_lock:
                futures, self._futures = list(self._futures.values()), {}
                waits, self._idle_waits = list(self._idle_waits.values()), {}
            for future in futures:
                # Stopped on purpose (a mode switch, app exit): what was still asked is cancelled.
                if self._stopping:
                    future.cancel()
                elif future.set_running_or_notify_cancel():
                    future.set_exception(SessionProcessError("the session process exited"))
            for done, _ in waits:
                done.set()
            try:
                self._conn.close()
            except OSError:
                pass
