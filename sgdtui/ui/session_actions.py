"""The App's hold on its session: the script it keeps, writes and records, and what it does when
the session stops answering.

Nothing here waits on the session. Scripts are written from the App's ``ScriptMirror`` (the
session's confirmed log), so ``w``, a mode switch while recording and the record at exit work
when the session process is dead or stopped. A session that stops answering shows in the status
line; ``ctrl+r`` starts a new one from the mirror's script (it replays to the same numbers).
A record that cannot be written goes to a fallback file in the user's state folder, and the
shell is told where after the screen is gone.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sgdtui.engine.script import validate_script
from sgdtui.engine.session import Session
from sgdtui.ui.script_mirror import ScriptMirror

if TYPE_CHECKING:
    from sgdtui.ui.app import PlaygroundApp


def free_path(path: Path) -> Path:
    """``path`` if no file is there, else the first free ``stem-2.suffix``, ``stem-3.suffix``, ..."""
    path = Path(path)
    k = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
        k += 1
    return candidate


def state_dir() -> Path:
    """Where a script that could not be written where asked goes ($XDG_STATE_HOME/sgdtui)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "sgdtui"


def check_writable(path: str | Path) -> str | None:
    """Why a script cannot be written at ``path`` (checked before a run starts), or None."""
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder"
    if path.exists():
        if not path.is_file():
            return f"{path} is not a regular file"
        if not os.access(path, os.W_OK):
            return f"{path} is not writable"
        return None
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return f"folder {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"folder {parent} is not writable"
    return None


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` in full or raise OSError (a disk-full error names the file)."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)  # a full disk fails here or when the file closes
    except OSError as exc:
        raise OSError(exc.errno, f"{exc.strerror or exc}", str(path)) from None


class SessionActions:
    """Writing, recording and restarting the session (mixed into PlaygroundApp)."""

    mirror: ScriptMirror
    record_failure: str | None = None  # a line for the shell: the record went to a fallback file
    _health: str | None = None

    def new_mirror(self: "PlaygroundApp", session: Session) -> None:
        self.mirror = ScriptMirror(session.to_script(), session.pending)

    def follow_session(self: "PlaygroundApp") -> None:
        """Each tick: take the session's newly logged commands and see if it still answers."""
        self.mirror.confirm(self.worker.take_logged())
        self.mirror.seen(self.worker.latest.snapshot.clock)
        health = self.worker.health()
        if health != self._health:
            self._health = health
            self._dirty = True
            if health is not None:
                self.notify(f"{health}: ctrl+r restarts it from the recorded script; w still writes it",
                            severity="error", timeout=10)

    def health_prefix(self) -> str:
        return f"⚠ {self._health} (ctrl+r restarts) · " if self._health else ""

    # --- writing ---------------------------------------------------------------------------------
    def script_text(self: "PlaygroundApp") -> str:
        """The session so far as script text, from the App's own copy (never waits)."""
        return self.mirror.to_toml()

    async def action_write_script(self: "PlaygroundApp") -> None:
        if self.is_web:  # in a browser (sgdtui serve) the script goes to its user, as a download
            from sgdtui.ui.palette import deliver_session_script

            await deliver_session_script(self)
            return
        # The record file is this session's own, rewritten on each press; a timestamped name never
        # overwrites an earlier script (two presses in one second: ...-2.toml).
        path = self.record_path or free_path(Path.cwd() / f"sgdtui-session-{datetime.now():%Y%m%d-%H%M%S}.toml")
        if self.write_script(path):
            self.notify(f"session script written to {path}")

    def write_script(self: "PlaygroundApp", path: Path) -> bool:
        try:
            write_text(Path(path), self.script_text())
        except OSError as exc:
            self.notify(f"cannot write {exc.filename or path}: {exc.strerror or exc}", severity="error")
            return False
        self.written_scripts.append(Path(path))
        return True

    def write_record(self: "PlaygroundApp") -> None:
        """At exit: the record file, or a fallback one (``record_failure`` says where)."""
        path = self.record_path
        try:
            write_text(path, self.script_text())
            self.written_scripts.append(path)
            return
        except OSError as exc:
            reason = f"{exc.strerror or exc}"
        try:
            folder = state_dir()
            folder.mkdir(parents=True, exist_ok=True)
            fallback = free_path(folder / f"recovered-{datetime.now():%Y%m%d-%H%M%S}.toml")
            write_text(fallback, self.script_text())
            self.record_failure = f"could not write {path} ({reason}); the session was saved to {fallback}"
        except OSError as exc:
            self.record_failure = (f"could not write {path} ({reason}) nor a fallback in {state_dir()}"
                                   f" ({exc.strerror or exc}): the session is lost")

    # --- restarting --------------------------------------------------------------------------------
    def action_restart_session(self: "PlaygroundApp") -> None:
        """A new session from the recorded script, replayed to the same clock (in a thread for a
        thread worker, in the child for a process worker), replacing the one that stopped."""
        script = self.mirror.to_script()
        pending = self.mirror.remaining_pending()
        self.notify(f"restarting the session from its script (step {script['steps']})…", timeout=4)
        self.run_worker(lambda: self._rebuilt(script, pending), thread=True, exit_on_error=False,
                        group="restart", exclusive=True)

    def _rebuilt(self: "PlaygroundApp", script: dict, pending: list) -> None:
        registry = self.factory.registry
        try:
            parsed = validate_script(script, path="<session>", text="", registry=registry)
            session = Session.from_script(parsed, history_capacity=4096)
            if not self.own_process(session.kind):
                session.run(script.get("steps", 0))  # a thread worker starts from the replayed session
            session.pending = list(pending)
        except Exception as exc:  # noqa: BLE001 - shown, the old worker stays
            self.call_from_thread(self.notify, f"cannot restart the session: {type(exc).__name__}: {exc}",
                                  severity="error")
            return
        self.call_from_thread(self._swap_session, session, script, pending)

    def _swap_session(self: "PlaygroundApp", session: Session, script: dict, pending: list) -> None:
        old = self.worker
        self.worker = self.make_worker(session, script=script if self.own_process(session.kind) else None,
                                       pending=pending)
        old.stop(timeout=0.0)  # a hung process is reaped (terminated, killed) by its own thread
        self.worker.start()
        self._health = None
        self.running = False
        self._frame_seq, self._dirty = -1, True
        self._echo = None  # a new worker counts its frames afresh
        self.notify("session restarted, paused (space runs)", timeout=4)
