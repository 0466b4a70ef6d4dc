"""MLP mode's actions: loss-landscape slices, and switching the dataset, the hidden sizes, the
activation and the normalization (recorded problem switches: every lane keeps its settings and
restarts from the new network's initial weights, so replays stay exact).

A mixin of ``PlaygroundApp``; each action is available only in MLP mode (``MLPView.actions``).
"""

from __future__ import annotations

from sgdtui.engine.commands import SwitchProblem
from sgdtui.mlp.datasets import DATASETS
from sgdtui.mlp.problem import ACTIVATIONS, NORMS

DATASET_KEYS = tuple(DATASETS)  # 1-6 in MLP mode, in this order
HIDDEN_PRESETS = ((16,), (32, 32), (64, 64), (32, 32, 32), (128,))


def _next(options: tuple, current) -> object:
    return options[(options.index(current) + 1) % len(options)] if current in options else options[0]


class MLPActions:
    def action_landscape(self) -> None:
        if self.selected is None:
            self.notify("no lane selected: press a to add one", severity="warning")
            return
        self.view.request_slice(self.worker, self.selected)

    def action_intrinsic_view(self) -> None:
        on = self.view.toggle_intrinsic()
        self.notify("loss pane: η/‖W‖² per normalized layer (same lr·λ, same equilibrium)" if on
                    else "loss pane: train loss", timeout=3)
        self._dirty = True

    def action_landscape_directions(self) -> None:
        if self.selected is not None:
            self.view.request_slice(self.worker, self.selected, self.view.next_directions())

    def switch_network(self, **changes) -> None:
        """The MLP problem with ``changes`` (dataset, hidden, activation, norm), lanes kept."""
        mlp = dict(changes)
        if "dataset" in mlp:
            mlp["classes"] = None  # a class count belongs to its dataset: the new one uses its own
        self.submit(SwitchProblem({"mlp": mlp}, merge=True))  # merged where it lands
        described = ", ".join(f"{k} {','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
                              for k, v in changes.items())
        self.notify(f"MLP: {described} (every lane restarts)", timeout=3)

    def action_quick_dataset(self, index: int) -> None:
        if index < len(DATASET_KEYS):
            self.switch_network(dataset=DATASET_KEYS[index])

    def switch_dataset(self, name: str) -> None:
        self.switch_network(dataset=name)

    # The cycles read the network the latest frame shows: a press before that frame arrives gives
    # the same next value again, never a mix of two networks (the switch merges what changed).
    def action_cycle_hidden(self) -> None:
        current = tuple(self.worker.latest.snapshot.table["mlp"]["hidden"])
        self.switch_network(hidden=list(_next(HIDDEN_PRESETS, current)))

    def action_cycle_activation(self) -> None:
        self.switch_network(activation=_next(ACTIVATIONS, self.worker.latest.snapshot.table["mlp"]["activation"]))

    def action_cycle_norm(self) -> None:
        self.switch_network(norm=_next(NORMS, self.worker.latest.snapshot.table["mlp"]["norm"]))
