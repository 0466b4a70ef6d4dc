"""Commands and queries: plain data the UI (or a script) hands a Session.

A command changes the session at a step boundary and is logged with the session clock;
``Nudge`` is the keyboard's relative change ("lr one step up"), which the Session resolves
against the lane as it is at that boundary into the ``SetLane`` it logs. A query reads
something out of the session (the script so far, a loss-landscape slice) without changing it.
Nothing here is callable: commands and queries pickle, so they cross to a session process.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union


class CommandError(ValueError):
    """A command that cannot be applied (unknown lane, bad value); the session is unchanged."""


@dataclass(frozen=True)
class SetLane:
    """Change a lane's hyperparameters and/or batch, schedule, coupling, noise.

    ``settings`` uses the script's keys: any hyperparameter by name, ``batch``, ``coupling``,
    ``noise`` and ``schedule`` (a name or {name = ..., param = ...}).
    """

    lane: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class AddLane:
    """Add a lane; ``lane`` is a script lane table ({optimizer = ..., lr = ..., ...})."""

    lane: dict[str, Any]


@dataclass(frozen=True)
class RemoveLane:
    lane: str


@dataclass(frozen=True)
class MoveStarts:
    """Move a lane's start points (the lane restarts from them)."""

    lane: str
    starts: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Reset:
    """Every lane back to its start, optimizer state cleared."""


@dataclass(frozen=True)
class SwitchProblem:
    """Switch to another problem of the same kind (a surface, an expression, an MLP dataset or
    architecture): ``table`` is the new [problem] table. ``lanes``: None keeps the lanes (each
    restarts on the new problem), a tuple of lane tables replaces them, and "default" takes the
    new problem's default race (logged as the lane tables it resolved to). With ``merge``, ``table``
    holds only changes, merged into the current problem's table (sub-tables key by key) at the
    step boundary where it lands, so quick presses compose; it is logged merged."""

    table: dict[str, Any]
    lanes: tuple[dict[str, Any], ...] | str | None = None
    merge: bool = False


@dataclass(frozen=True)
class RestoreLane:
    """Put a lane's settings back to what they were when it was added (logged as the SetLane
    it resolves to)."""

    lane: str


@dataclass(frozen=True)
class Step:
    """Take n steps (not logged: the log records the clock at which each change happened)."""

    n: int = 1


NUDGES = ("lr", "decay", "batch", "schedule", "coupling", "noise", "weight_decay")


@dataclass(frozen=True)
class Nudge:
    """One key press on a lane setting: ``what`` in NUDGES, ``direction`` +1 or -1 (cycling
    settings ignore it). Resolved at the step boundary into the SetLane that is logged, so two
    quick presses always give two steps."""

    lane: str
    what: str
    direction: int = 1


@dataclass(frozen=True)
class Caption:
    """A lesson's line of text, shown when the clock reaches it; with ``pause`` the app stops
    running there (a headless replay prints it and goes on)."""

    text: str = ""
    pause: bool = False


Command = Union[SetLane, AddLane, RemoveLane, MoveStarts, Reset, SwitchProblem, Step, Nudge, RestoreLane, Caption]


class Query:
    """Base of read-only requests; a problem kind adds its own (e.g. MLP loss slices)."""


@dataclass(frozen=True)
class ScriptText(Query):
    """The session so far as script text (TOML)."""


@dataclass(frozen=True)
class Trajectories(Query):
    """Every lane's recorded history (``Session.trajectories``)."""
