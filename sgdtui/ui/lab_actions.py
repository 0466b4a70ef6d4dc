"""The Lab's keys (a mixin of PlaygroundApp): the density view, a burn-in, SWA and the
gradient-flow reference on the selected lane, and the range test's suggestion applied to the
other lanes. Each lane option is sent as a SetLane, so it is recorded and replays."""

from __future__ import annotations

from sgdtui.engine.commands import SetLane


class LabActions:
    def _selected_lane(self):
        if self.selected is None:
            self.notify("no lane selected: press a to add one", severity="warning")
            return None
        try:
            return self.worker.latest.snapshot.lane(self.selected)
        except KeyError:
            return None

    def action_toggle_density(self) -> None:
        view = self.view
        view.density_view = not view.density_view
        if view.density_view:
            self.worker.refresh()  # the density comes with the next snapshot's read-outs
            lane = self._selected_lane()
            if lane is not None and getattr(lane, "stationary", None) is None:
                self.notify("density view: the selected lane has no burn-in yet (K starts one)", timeout=4)
        self._dirty = True

    def action_toggle_burn_in(self) -> None:
        """K: stationary statistics from the lane's current step on, or off again."""
        lane = self._selected_lane()
        if lane is None:
            return
        on = lane.lab_options.get("burn_in") is None
        self.worker.submit(SetLane(lane.name, {"burn_in": lane.t if on else False}))
        self.notify(f"{lane.name}: stationary statistics after step {lane.t}" if on
                    else f"{lane.name}: stationary statistics off", timeout=3)

    def action_toggle_swa(self) -> None:
        """W: average the lane's iterate from its current step on (SWA), or stop."""
        lane = self._selected_lane()
        if lane is None:
            return
        on = lane.lab_options.get("swa_start") is None
        self.worker.submit(SetLane(lane.name, {"swa": {"start": lane.t} if on else False}))
        self.notify(f"{lane.name}: SWA from step {lane.t}" if on else f"{lane.name}: SWA off", timeout=3)

    def action_toggle_flow(self) -> None:
        """F: the gradient-flow reference beside the lane's path (surface mode)."""
        lane = self._selected_lane()
        if lane is None:
            return
        on = not lane.lab_options.get("flow")
        self.worker.submit(SetLane(lane.name, {"flow": on}))
        self.notify(f"{lane.name}: gradient flow {'on' if on else 'off'} (dimmed line)", timeout=3)

    def action_apply_range_test(self) -> None:
        """R: the selected range-test lane's suggested lr on every other lane."""
        snapshot = self.worker.latest.snapshot
        suggestion = self.view.suggested_lr(snapshot, self.selected)
        if suggestion is None:
            self.notify("R applies a range test's suggestion: select a lane on the range-test schedule"
                        " (s cycles schedules) once it has run", severity="warning", timeout=5)
            return
        others = [lane.name for lane in snapshot.lanes
                  if lane.name != self.selected and lane.schedule_name != "range-test"]
        for name in others:
            self.worker.submit(SetLane(name, {"lr": suggestion}))
        self.notify(f"lr {suggestion:.3g} on {', '.join(others) if others else 'no other lane'}", timeout=4)
