"""Building the playground's sessions: the factory the App asks for a new session (its problem's
default race) when the mode switches, so the App never sees the CLI's flags."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.problem import problem_from_table
from sgdtui.engine.session import Session
from sgdtui.engine.surfaces import DEFAULT_SURFACE, SurfaceRegistry

HISTORY_CAPACITY = 4096  # rows kept per lane in the TUI (older rows are decimated)
MODE_ORDER = ("surface", "mlp")  # what `m` cycles through


@dataclass
class SessionFactory:
    """New sessions for the playground: the [problem] table each mode opens on, the seed, and
    the surfaces known to this run."""

    registry: SurfaceRegistry
    seed: int = 0
    tables: dict[str, dict[str, Any]] = field(default_factory=lambda: {
        "surface": {"surface": DEFAULT_SURFACE},
        "mlp": {"mlp": {"dataset": "moons", "hidden": [32, 32]}, "device": "auto"},
    })

    def build(self, kind: str) -> Session:
        """A new session of ``kind`` with its problem's default race (ValueError on a bad table)."""
        problem = problem_from_table(self.tables[kind], self.registry)
        lanes = [LaneConfig.from_table(table) for table in problem.default_lanes()]
        return Session(problem, lanes, seed=self.seed, registry=self.registry, history_capacity=HISTORY_CAPACITY)

    @staticmethod
    def next_kind(kind: str) -> str:
        return MODE_ORDER[(MODE_ORDER.index(kind) + 1) % len(MODE_ORDER)] if kind in MODE_ORDER else MODE_ORDER[0]
