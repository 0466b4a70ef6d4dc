"""The surface problem kind: a named surface (built-in or the user's) or an expression.

Its [problem] keys: ``surface = "name"``, or ``expr = "..."`` with optional ``xlim``/``ylim``.
The same keys switch surfaces in an event (``surface = "rosenbrock"``), validated here, so an
event is held to exactly the rules of the [problem] table.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from sgdtui.engine.checks import did_you_mean, is_number
from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.params import SettingError
from sgdtui.engine.problem import Problem
from sgdtui.engine.surface_race import SurfaceRace
from sgdtui.engine.surfaces import DEFAULT_BOUND, DEFAULT_SURFACE, Surface, SurfaceError, SurfaceRegistry, surface_from_expr


def check_limits(value: Any, key: str) -> tuple[float, float]:
    """[low, high], finite, low < high and inside the divergence bound (so spans never overflow)."""
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) for v in value)
            and all(math.isfinite(v) and abs(v) <= DEFAULT_BOUND for v in value) and value[0] < value[1]):
        raise SettingError(key, f"must be [low, high] with low < high, finite and within ±{DEFAULT_BOUND:g},"
                                f" got {value!r}")
    return float(value[0]), float(value[1])


class SurfaceProblem(Problem):
    kind: ClassVar[str] = "surface"
    table_keys: ClassVar[tuple[str, ...]] = ("surface", "expr", "xlim", "ylim")
    has_start_points: ClassVar[bool] = True

    def __init__(self, surface: Surface, table: dict[str, Any]):
        self.surface = surface
        self._table = dict(table)

    @classmethod
    def from_table(cls, table: dict[str, Any], registry: SurfaceRegistry | None) -> "SurfaceProblem":
        if "surface" in table and "expr" in table:
            raise SettingError("expr", "give either 'surface' or 'expr', not both")
        lims = {key: check_limits(table[key], key) for key in ("xlim", "ylim") if key in table}
        if "expr" in table:
            expr = table["expr"]
            if not isinstance(expr, str):
                raise SettingError("expr", f"must be a string formula in x and y, got {expr!r}")
            try:
                surface = surface_from_expr(expr, **lims)
            except SurfaceError as exc:
                raise SettingError("expr", str(exc)) from None
            return cls(surface, {"expr": expr, **{k: list(v) for k, v in lims.items()}})
        if lims:
            key = "xlim" if "xlim" in lims else "ylim"
            raise SettingError(key, "xlim/ylim go with 'expr' (a named surface has its own view)")
        name = table.get("surface", DEFAULT_SURFACE)
        if registry is None:
            registry = SurfaceRegistry()
        if not isinstance(name, str) or name not in registry:
            names = registry.names()
            hint = did_you_mean(name, names) if isinstance(name, str) else ""
            raise SettingError("surface", f"unknown surface {name!r}{hint} (choose from {', '.join(names)})")
        return cls(registry.get(name), {"surface": name})

    def to_table(self) -> dict[str, Any]:
        return dict(self._table)

    @property
    def label(self) -> str:
        """The surface's name, or the expression itself for an expression surface."""
        return self._table.get("expr", self.surface.name)

    def make_race(self, lanes: list[LaneConfig], seed: int, history_capacity: int | None) -> SurfaceRace:
        return SurfaceRace(self, lanes, seed=seed, history_capacity=history_capacity)
