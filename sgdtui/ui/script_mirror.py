"""The App's own copy of its session's script, kept as the session confirms what it did.

The session (on a thread or in another process) logs every change it applies with the step it
took effect at; the worker hands those entries to the App, which adds them here, and each frame
tells the clock. So the script can be written at any moment, instantly, without asking the
session: when its process has died or hangs, the recorded session is still there, and a new
session can be started from it.
"""

from __future__ import annotations

import copy
from typing import Any, Iterable

from sgdtui.engine.commands import Command
from sgdtui.engine.script import command_to_event, dump_script


class ScriptMirror:
    """``header`` is ``Session.to_script()`` when the worker was made; ``pending`` the session's
    script events still to come (a lesson's), kept for a restart."""

    def __init__(self, header: dict[str, Any], pending: Iterable[tuple[int, Command]] = ()):
        self.header = {k: copy.deepcopy(v) for k, v in header.items() if k not in ("events", "steps")}
        self.events: list[dict[str, Any]] = [dict(e) for e in header.get("events", [])]
        self.clock = int(header.get("steps") or 0)
        self.pending = list(pending)

    def confirm(self, entries: Iterable[tuple[int, Command]]) -> None:
        """Commands the session applied, each with the step it took effect at."""
        for step, command in entries:
            self.events.append(command_to_event(step, command))
            self.clock = max(self.clock, step)

    def seen(self, clock: int) -> None:
        """The clock of the latest frame: the script runs at least this far."""
        self.clock = max(self.clock, int(clock))

    def to_script(self) -> dict[str, Any]:
        """The same dict ``Session.to_script`` gives once every entry has arrived."""
        script = {"version": 1, "seed": self.header.get("seed", 0), "steps": self.clock}
        for key, value in self.header.items():
            if key not in script:
                script[key] = copy.deepcopy(value)
        if self.events:
            script["events"] = [dict(e) for e in self.events]
        return script

    def to_toml(self) -> str:
        return dump_script(self.to_script())

    def remaining_pending(self) -> list[tuple[int, Command]]:
        """The script events a restarted session still has to apply (those after the clock)."""
        return [(step, command) for step, command in self.pending if step > self.clock]
