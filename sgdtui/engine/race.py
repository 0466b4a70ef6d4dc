"""The race interface: all lanes of a session stepping in lockstep on one problem.

A Session drives any problem kind's race through this interface only (the kinds implement it:
``engine.surface_race.SurfaceRace``, the MLP package's race). Steering that every kind shares
(looking lanes up, applying a validated lane config) lives here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgdtui.engine.commands import CommandError, Query
from sgdtui.engine.lane import LaneConfig, LaneSteering, unique_name

if TYPE_CHECKING:
    from sgdtui.engine.problem import Problem
    from sgdtui.engine.snapshot import Snapshot


class Race(ABC):
    """Lanes on one problem. Subclasses own how lanes step, record and report."""

    problem: "Problem"
    lanes: list[LaneSteering]
    seed: int
    history_capacity: int | None
    step_count: int  # steps since the race (re)started: a reset or a problem switch sets it to 0

    # --- lanes by name ---------------------------------------------------------------------
    def lane(self, name: str) -> LaneSteering:
        for lane in self.lanes:
            if lane.config.name == name:
                return lane
        raise KeyError(f"no lane named {name!r} (lanes: {', '.join(self.lane_names()) or 'none'})")

    def lane_names(self) -> list[str]:
        return [lane.config.name for lane in self.lanes]

    def unique_name(self, base: str) -> str:
        return unique_name(base, self.lane_names())

    def _check_new_name(self, config: LaneConfig) -> None:
        if config.name in self.lane_names():
            raise ValueError(f"a lane named {config.name!r} already exists")

    # --- steering --------------------------------------------------------------------------
    def set_lane(self, name: str, config: LaneConfig) -> None:
        """Steer lane ``name`` to ``config`` (validated by ``LaneConfig.with_settings``)."""
        self.lane(name).apply_config(config)

    def move_starts(self, name: str, starts: tuple[tuple[float, float], ...]) -> None:
        raise CommandError(f"lanes of a {self.problem.kind} problem have no start points to move")

    def answer(self, query: Query) -> Any:
        """A problem-specific query (the Session answers the generic ones)."""
        raise CommandError(f"{type(query).__name__} is not available for a {self.problem.kind} problem")

    @abstractmethod
    def add_lane(self, config: LaneConfig) -> LaneSteering: ...

    @abstractmethod
    def remove_lane(self, name: str) -> None: ...

    @abstractmethod
    def reset(self) -> None:
        """Every lane back to its start, optimizer state and random streams fresh."""

    @abstractmethod
    def set_problem(self, problem: "Problem") -> None:
        """Switch to another problem of the same kind; every lane restarts on it."""

    # --- stepping and read-outs ------------------------------------------------------------
    @abstractmethod
    def step(self, n: int = 1) -> None: ...

    @abstractmethod
    def flush(self) -> None:
        """Move staged per-step numbers into the histories (before any read-out)."""

    @abstractmethod
    def snapshot(self, version: int, clock: int, *, selected: str | None, max_rows: int | None,
                 costly: bool, live: bool = False) -> "Snapshot":
        """An immutable picture; ``costly`` read-outs (a Hessian, a gradient-noise estimate) only
        when asked, and per-lane ones only for ``selected`` where that saves work. ``live``: one of
        a running view's stream of frames, where a plot may show data a few frames old."""

    @abstractmethod
    def trajectories(self) -> dict[str, dict[str, Any]]:
        """Every lane's recorded history as numpy columns."""

    def for_display(self) -> None:
        """This race runs behind a live view and never writes its per-step files: it may skip
        recording what only those files carry. Nothing skipped may feed back into the numbers."""

    # --- headless output -------------------------------------------------------------------
    @abstractmethod
    def write_outputs(self, out: Path) -> list[str]:
        """Write the per-step files of a replay into ``out``; returns their names."""

    @abstractmethod
    def summary(self) -> dict[str, Any]:
        """Per-lane figures (``lanes``) plus the problem's own header fields, for summary.json."""
