"""MLP mode's actions: loss-landscape slices (and the dataset and network switches).

A mixin of ``PlaygroundApp``; each action is available only in MLP mode (``MLPView.actions``).
"""

from __future__ import annotations


class MLPActions:
    def action_landscape(self) -> None:
        if self.selected is None:
            self.notify("no lane selected: press a to add one", severity="warning")
            return
        self.view.request_slice(self.worker, self.selected)

    def action_landscape_directions(self) -> None:
        if self.selected is not None:
            self.view.request_slice(self.worker, self.selected, self.view.next_directions())
