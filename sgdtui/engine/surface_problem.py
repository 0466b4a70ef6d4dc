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
from sgdtui.engine.surface_race import SurfaceRace, hessian_info
from sgdtui.engine.surfaces import DEFAULT_BOUND, DEFAULT_SURFACE, Surface, SurfaceError, SurfaceRegistry, surface_from_expr

GD_FRACTION = 0.2  # the scaled race's GD lr is this fraction of 2/lambda_max at the start
FIRST_STEP = 0.05  # ... and never moves more than this fraction of the view on its first step


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

    def default_lanes(self) -> list[dict[str, Any]]:
        """The surface file's own race, or (an expression, a user surface without [[lanes]]) one
        scaled from the curvature and slope at the start."""
        if self.surface.race:
            return [dict(table) for table in self.surface.race]
        return scaled_race(self.surface)


def scaled_race(surface: Surface) -> list[dict[str, Any]]:
    """GD at a fraction of its stability limit 2/lambda_max at the start (capped so its first step
    moves a few percent of the view), heavy-ball momentum at half that lr, and RMSprop and Adam with
    steps a small fraction of the view (their step size does not depend on the gradient's scale)."""
    import torch

    start = surface.starts[0]
    span = min(surface.xlim[1] - surface.xlim[0], surface.ylim[1] - surface.ylim[0])
    _, grad = surface.value_and_grad(torch.tensor([start], dtype=torch.float64))
    slope = float(grad.norm())
    limits = [FIRST_STEP * span / slope] if math.isfinite(slope) and slope > 1e-12 else []
    try:
        stability = hessian_info(surface, start).stability_lr
    except RuntimeError:
        stability = None
    if stability is not None and math.isfinite(stability):
        limits.append(GD_FRACTION * stability)
    lr = min(limits) if limits else 0.01
    lr = float(f"{min(max(lr, 1e-8), 1e3):.2g}")  # a round number a user can read and type
    step = float(f"{0.01 * span:.2g}")
    return [
        {"name": "sgd", "optimizer": "sgd", "lr": lr},
        {"name": "momentum", "optimizer": "momentum", "lr": float(f"{lr / 2:.2g}"), "momentum": 0.9},
        {"name": "rmsprop", "optimizer": "rmsprop", "lr": float(f"{step / 2:.2g}")},
        {"name": "adam", "optimizer": "adam", "lr": step},
    ]
