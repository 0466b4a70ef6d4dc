"""The command palette (ctrl+p): every action that works in the current mode, each once, plus
'Surface: ...' and 'Add lane: ...' entries found by typing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from textual.app import SystemCommand

from sgdtui.engine.optimizers import OPTIMIZERS
from sgdtui.mlp.datasets import DATASETS
from sgdtui.mlp.problem import ACTIVATIONS, NORMS
from sgdtui.ui.bindings import BINDINGS, action_name
from sgdtui.ui.mlp_actions import DATASET_KEYS, HIDDEN_PRESETS

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
    if app.action_available("quick_dataset"):
        for name in DATASET_KEYS:
            yield SystemCommand(f"Dataset: {name}", DATASETS[name], lambda name=name: app.switch_network(dataset=name))
        for hidden in HIDDEN_PRESETS:
            label = ",".join(map(str, hidden))
            yield SystemCommand(f"Hidden sizes: {label}", "every lane restarts on the new network",
                                lambda hidden=hidden: app.switch_network(hidden=list(hidden)))
        for activation in ACTIVATIONS:
            yield SystemCommand(f"Activation: {activation}", "every lane restarts on the new network",
                                lambda activation=activation: app.switch_network(activation=activation))
        for norm in NORMS:
            yield SystemCommand(f"Normalization: {norm}", "every lane restarts on the new network",
                                lambda norm=norm: app.switch_network(norm=norm))
    for name, spec in OPTIMIZERS.items():
        yield SystemCommand(f"Add lane: {name}", spec.description, lambda name=name: app.add_lane(name),
                            discover=False)
