"""Type an expression surface, e.g. ``x**2 + 10*y**2``; a bad one is explained in one line."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from sgdtui.engine.surfaces import surface_from_expr
from sgdtui.ui.screens import Modal


class ExpressionScreen(Modal[str | None]):
    """Dismisses with a valid expression, or None on escape. Invalid input stays in the box."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, initial: str = "") -> None:
        super().__init__()
        self.initial = initial

    def compose(self) -> ComposeResult:
        with Vertical(classes="picker"):
            yield Static("Expression surface in x and y (enter switches, escape cancels)", classes="picker-title")
            yield Input(value=self.initial, placeholder="x**2 + 10*y**2", id="expr-input")
            yield Static("", id="expr-error", markup=False)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        error = self.query_one("#expr-error", Static)
        try:
            surface_from_expr(text)  # cheap: parse and compile, so the error shows here
        except ValueError as exc:
            error.update(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
