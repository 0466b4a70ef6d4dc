"""The App's steering actions: each key press becomes a Command (data) for the session's worker.

A mixin of ``PlaygroundApp`` (it reads ``self.worker`` and ``self.selected``), kept apart so the
App stays a thin shell.
"""

from __future__ import annotations

from sgdtui.engine.commands import AddLane, Nudge, RemoveLane, Reset, RestoreLane
from sgdtui.ui.screens.pickers import optimizer_picker
from sgdtui.ui.worker import SPEED_LEVELS


class SteeringActions:
    def _nudge(self, what: str, direction: int = 1) -> None:
        if self.selected is None:
            self.notify("no lane selected: press a to add one", severity="warning")
            return
        self.submit(Nudge(self.selected, what, direction))

    def action_lr(self, direction: int) -> None:
        self._nudge("lr", direction)

    def action_beta(self, direction: int) -> None:
        self._nudge("decay", direction)

    def action_batch(self, direction: int) -> None:
        self._nudge("batch", direction)

    def action_schedule(self) -> None:
        self._nudge("schedule")

    def action_coupling(self) -> None:
        self._nudge("coupling")

    def action_weight_decay(self, direction: int) -> None:
        self._nudge("weight_decay", direction)

    def action_noise(self, direction: int) -> None:
        self._nudge("noise", direction)

    def action_toggle_run(self) -> None:
        self.running = not self.running
        self.worker.set_running(self.running)

    def action_step_once(self) -> None:
        self.running = False
        self.worker.step_once()

    def action_select(self, direction: int) -> None:
        names = self.worker.latest.snapshot.lane_names()
        if not names:
            return
        index = names.index(self.selected) if self.selected in names else -direction
        self.selected = self.worker.selected = names[(index + direction) % len(names)]
        # The selected lane's read-outs (Hessian, decision boundary) come with the next snapshot:
        # ask for one now, so a paused run shows them too.
        self.worker.refresh()
        self._dirty = True
        self._tick()

    def action_add_lane(self) -> None:
        self.push_screen(optimizer_picker(), self.add_lane)

    def add_lane(self, optimizer: str | None) -> None:
        """Add a lane of ``optimizer``; the session names it when it applies the command (sgd, sgd-2,
        ...), so quick presses never collide, and the lane is selected once a frame shows it."""
        if optimizer is not None:
            self._added_lane = self.submit(AddLane({"optimizer": optimizer}))

    def action_remove_lane(self) -> None:
        if self.selected is None:
            return
        names = self.worker.latest.snapshot.lane_names()
        self.submit(RemoveLane(self.selected))
        rest = [n for n in names if n != self.selected]
        self.selected = rest[min(names.index(self.selected), len(rest) - 1)] if rest and self.selected in names else None
        self.worker.selected = self.selected  # read when the frame after the removal is snapshotted

    def action_reset(self) -> None:
        self.submit(Reset())

    def action_restore_lane(self) -> None:
        if self.selected is not None:
            self.submit(RestoreLane(self.selected))

    def action_toggle_log(self) -> None:
        # automatic -> log -> linear -> automatic
        self.log_scale = {None: True, True: False, False: None}[self.log_scale]
        self.notify(f"loss scale: {'automatic' if self.log_scale is None else ('log' if self.log_scale else 'linear')}",
                    timeout=2)
        self._dirty = True

    def action_speed(self, direction: int) -> None:
        self.speed_index = min(max(self.speed_index + direction, 0), len(SPEED_LEVELS) - 1)
        self.worker.set_speed(self.speed_index)
        self._dirty = True
