"""Surface mode's actions: quick surfaces, the picker, expressions, pan and zoom, and choosing
where the selected lane starts (a mouse click, or the keyboard crosshair over SSH).

A mixin of ``PlaygroundApp``; each action is available only in surface mode (``SurfaceView.actions``).
"""

from __future__ import annotations

from sgdtui.engine.commands import MoveStarts, SwitchProblem
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
            self.submit(SwitchProblem({"surface": name}, None if keep_lanes else "default"))

    async def action_phase(self) -> None:
        from sgdtui.ui.screens.phase import open_phase_screen  # the sweep, its screen and theory

        await open_phase_screen(self)

    def action_pick_surface(self) -> None:
        self.push_screen(surface_picker(self.factory.registry, self.worker.latest.snapshot.label), self.switch_surface)

    def action_expression(self) -> None:
        surface = getattr(self.worker.latest.snapshot.payload, "surface", None)
        initial = getattr(surface, "expr", "") if surface is not None and surface.origin == "expression" else ""
        self.push_screen(ExpressionScreen(initial), self.switch_expression)

    def switch_expression(self, expr: str | None) -> None:
        if expr:
            self.submit(SwitchProblem({"expr": expr}, "default"))

    def action_pan(self, dx: int, dy: int) -> None:
        """Arrows pan the view, or move the crosshair while one is up."""
        if self.view.crosshair is not None:
            self.view.move_crosshair(dx, dy)
        else:
            self.view.pan(dx, dy)

    def action_zoom(self, direction: int) -> None:
        self.view.zoom(direction)

    def action_reset_view(self) -> None:
        self.view.reset_view()

    def action_crosshair(self) -> None:
        """p: a crosshair at the selected lane's start (arrows move it); p or enter again starts the
        lane there, escape puts it away."""
        view = self.view
        if view.crosshair is not None:
            self.action_place_start()
            return
        lane = self._selected_lane()
        if lane is None:
            self.notify("no lane selected: press a to add one", severity="warning")
            return
        view.show_crosshair(tuple(float(v) for v in lane.positions[0, 0]))
        self.notify("crosshair: arrows move it, p or enter starts the selected lane there, escape cancels",
                    timeout=4)

    def action_place_start(self) -> None:
        point = self.view.crosshair
        self.view.show_crosshair(None)
        if point is not None:
            self.start_selected_at(point)

    def action_cancel_crosshair(self) -> None:
        self.view.show_crosshair(None)

    def start_selected_at(self, point: tuple[float, float]) -> None:
        """The selected lane restarts from ``point`` (a recorded MoveStarts)."""
        if self.selected is not None:
            self.submit(MoveStarts(self.selected, ((float(point[0]), float(point[1])),)))

    def _selected_lane(self):
        snapshot = self.worker.latest.snapshot
        return next((lane for lane in snapshot.lanes if lane.name == self.selected), None)
