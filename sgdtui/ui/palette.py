"""The command palette (ctrl+p): every action that works in the current mode, each once, plus
'Surface: ...' and 'Add lane: ...' entries found by typing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from textual.app import SystemCommand

from sgdtui.engine.optimizers import OPTIMIZERS
from sgdtui.ui.bindings import BINDINGS, action_name

if TYPE_CHECKING:
    from sgdtui.ui.app import PlaygroundApp

def playground_commands(app: "PlaygroundApp", inherited: Iterable[SystemCommand]) -> Iterable[SystemCommand]:
    ours = []
    seen: set[str] = set()
    for binding in BINDINGS:
        name = action_name(binding.action)
        if name == "quick_surface" or not app.action_available(name) or binding.description in seen:
            continue
        seen.add(binding.description)
        ours.append(SystemCommand(binding.description, f"key: {binding.key_display or binding.key}",
                                  lambda action=binding.action: app.run_action(action)))
    for command in inherited:  # Textual's own, less those a playground binding already offers (Quit)
        if command.title not in seen:
            yield command
    yield from ours
    if app.action_available("pick_surface"):
        for surface in app.factory.registry:
            yield SystemCommand(f"Surface: {surface.name}", f"with its default race · {surface.description}",
                                lambda name=surface.name: app.switch_surface(name), discover=False)
            yield SystemCommand(f"Surface, keep lanes: {surface.name}", surface.description,
                                lambda name=surface.name: app.switch_surface(name, keep_lanes=True), discover=False)
    for name, spec in OPTIMIZERS.items():
        yield SystemCommand(f"Add lane: {name}", spec.description, lambda name=name: app.add_lane(name),
                            discover=False)
