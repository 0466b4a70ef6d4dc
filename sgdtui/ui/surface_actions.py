"""Surface mode's actions: quick surfaces, the picker, expressions, pan and zoom.

A mixin of ``PlaygroundApp``; each action is available only in surface mode (``SurfaceView.actions``).
"""

from __future__ import annotations

from sgdtui.engine.commands import SwitchProblem
from sgdtui.ui.bindings import QUICK_SURFACES
from sgdtui.ui.screens.expression import ExpressionScreen
from sgdtui.ui.screens.pickers import surface_picker


class SurfaceActions:
    def quick_surfaces(self) -> list[str]:
        names = self.factory.registry.names()
        ordered = [n for n in QUICK_SURFACES if n in names] + [n for n in names if n not in QUICK_SURFACES]
        return ordered[:9]

    def action_quick_surface(self, index: int) -> None:
        names = self.quick_surfaces()
        if index < len(names):
            self.switch_surface(names[index])

    def switch_surface(self, name: str | None, keep_lanes: bool = False) -> None:
        """Switch to surface ``name`` with its default race (or, with ``keep_lanes``, the lanes as they are)."""
        if name is not None:
            self.worker.submit(SwitchProblem({"surface": name}, None if keep_lanes else "default"))

    def action_pick_surface(self) -> None:
        self.push_screen(surface_picker(self.factory.registry, self.worker.latest.snapshot.label), self.switch_surface)

    def action_expression(self) -> None:
        surface = getattr(self.worker.latest.snapshot.payload, "surface", None)
        initial = getattr(surface, "expr", "") if surface is not None and surface.origin == "expression" else ""
        self.push_screen(ExpressionScreen(initial), self.switch_expression)

    def switch_expression(self, expr: str | None) -> None:
        if expr:
            self.worker.submit(SwitchProblem({"expr": expr}, "default"))

    def action_pan(self, dx: int, dy: int) -> None:
        self.view.pan(dx, dy)

    def action_zoom(self, direction: int) -> None:
        self.view.zoom(direction)
