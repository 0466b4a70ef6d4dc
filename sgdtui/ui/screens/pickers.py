"""Pickers: choose an optimizer for a new lane, or a surface to switch to."""

from __future__ import annotations

from typing import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from sgdtui.engine.optimizers import OPTIMIZERS
from sgdtui.engine.surfaces import Surface


class PickerScreen(ModalScreen[str | None]):
    """A titled list; enter picks (dismisses with the option's id), escape cancels (None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, options: Iterable[tuple[str, str]], *, initial: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.options = list(options)
        self.initial = initial

    def compose(self) -> ComposeResult:
        with Vertical(classes="picker"):
            yield Static(self.title_text, classes="picker-title")
            yield OptionList(*[Option(label, id=key) for key, label in self.options])

    def on_mount(self) -> None:
        option_list = self.query_one(OptionList)
        keys = [key for key, _ in self.options]
        if self.initial in keys:
            option_list.highlighted = keys.index(self.initial)
        option_list.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


def optimizer_picker() -> PickerScreen:
    options = [(name, f"{name:<17} {spec.description}") for name, spec in OPTIMIZERS.items()]
    return PickerScreen("Add a lane: pick an optimizer (enter adds, escape cancels)", options)


def surface_picker(surfaces: Iterable[Surface], current: str | None = None) -> PickerScreen:
    options = []
    for surface in surfaces:
        description = surface.description if len(surface.description) <= 70 else surface.description[:69] + "…"
        options.append((surface.name, f"{surface.name:<20} {description}"))
    return PickerScreen("Switch surface (enter switches, escape cancels)", options, initial=current)
