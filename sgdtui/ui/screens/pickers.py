"""Pickers: choose an optimizer for a new lane (or type one's import path), or a surface to switch to."""

from __future__ import annotations

from typing import Iterable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from sgdtui.engine.optimizers import OPTIMIZERS, get_optimizer
from sgdtui.engine.surfaces import Surface
from sgdtui.ui.screens import Modal


class PickerScreen(Modal[str | None]):
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


class OptimizerPicker(PickerScreen):
    """The registry's optimizers, and a line to type any torch.optim.Optimizer subclass's import
    path ("package.module:Class"); a path that does not import is explained under it."""

    DEFAULT_CSS = """
    OptimizerPicker #optimizer-path-error { color: $error; height: auto; }
    """

    def compose(self) -> ComposeResult:
        with Vertical(classes="picker"):
            yield Static(self.title_text, classes="picker-title")
            options = OptionList(*[Option(label, id=key) for key, label in self.options])
            options.styles.max_height = "50vh"  # leaves room for the path line on a 24-row terminal
            yield options
            yield Input(placeholder="or type an import path, package.module:Class (tab here, enter adds)",
                        id="optimizer-path")
            yield Static("", id="optimizer-path-error", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        path = event.value.strip()
        try:
            get_optimizer(path)  # imports and inspects it here, so the reason shows in the picker
        except ValueError as exc:
            self.query_one("#optimizer-path-error", Static).update(" ".join(str(getattr(exc, "reason", exc)).split()))
            return
        self.dismiss(path)


def optimizer_picker() -> PickerScreen:
    options = [(name, f"{name:<17} {spec.description}") for name, spec in OPTIMIZERS.items()]
    return OptimizerPicker("Add a lane: pick an optimizer (enter adds, escape cancels)", options)


def surface_picker(surfaces: Iterable[Surface], current: str | None = None) -> PickerScreen:
    options = []
    for surface in surfaces:
        description = surface.description if len(surface.description) <= 70 else surface.description[:69] + "…"
        options.append((surface.name, f"{surface.name:<20} {description}"))
    return PickerScreen("Switch surface (enter switches, escape cancels)", options, initial=current)
