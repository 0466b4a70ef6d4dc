"""Building the playground's sessions: the default race of each problem kind, and the factory
the App asks for a new session when the mode switches (so the App never sees the CLI's flags)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.session import Session
from sgdtui.engine.surfaces import DEFAULT_SURFACE, SurfaceRegistry

HISTORY_CAPACITY = 4096  # rows kept per lane in the TUI (older rows are decimated)
MODE_ORDER = ("surface", "mlp")  # what `m` cycles through


def default_lanes(kind: str = "surface") -> list[LaneConfig]:
    """The race a new session of ``kind`` opens with."""
    if kind == "mlp":  # four optimizers at batch 32 from the same initial weights
        return [
            LaneConfig.create("sgd", "sgd", lr=0.1, batch=32),
            LaneConfig.create("momentum", "momentum", lr=0.05, momentum=0.9, batch=32),
            LaneConfig.create("adam", "adam", lr=0.01, batch=32),
            LaneConfig.create("ema-momentum", "ema-momentum", lr=0.3, beta=0.9, batch=32),
        ]
    return [  # all from the surface's default start ((-4, 5) on pathological)
        LaneConfig.create("sgd", "sgd", lr=1.0),
        LaneConfig.create("ema-momentum", "ema-momentum", lr=1.0, beta=0.9),
        LaneConfig.create("rmsprop", "rmsprop", lr=0.3),
        LaneConfig.create("adam", "adam", lr=0.3),
    ]


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
        """A new session of ``kind`` with its default race (ValueError on a bad table)."""
        return Session(self.tables[kind], default_lanes(kind), seed=self.seed, registry=self.registry,
                       history_capacity=HISTORY_CAPACITY)

    @staticmethod
    def next_kind(kind: str) -> str:
        return MODE_ORDER[(MODE_ORDER.index(kind) + 1) % len(MODE_ORDER)] if kind in MODE_ORDER else MODE_ORDER[0]
