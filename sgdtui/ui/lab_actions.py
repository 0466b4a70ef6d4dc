"""The Lab's keys (a mixin of PlaygroundApp): the density view, a burn-in, SWA and the
gradient-flow reference on the selected lane, and a range test's suggestion applied to the
other lanes. Each lane option is sent as a SetLane, so it is recorded and replays; the view of
the current mode says what a range test suggests (``ModeView.suggested_lr``)."""

from __future__ import annotations

from sgdtui.engine.commands import SetLane
from sgdtui.ui.formatting import fmt


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
        self.submit(SetLane(lane.name, {"burn_in": lane.t if on else False}))
        self.notify(f"{lane.name}: stationary statistics after step {lane.t}" if on
                    else f"{lane.name}: stationary statistics off", timeout=3)

    def action_toggle_swa(self) -> None:
        """W: average the lane's iterate (or weights) from its current step on (SWA), or stop."""
        lane = self._selected_lane()
        if lane is None:
            return
        # Surface lanes report their options; MLP lanes report the steps averaged so far.
        on = lane.lab_options.get("swa_start") is None and lane.swa_steps is None
        self.submit(SetLane(lane.name, {"swa": {"start": lane.t} if on else False}))
        self.notify(f"{lane.name}: SWA from step {lane.t}" if on else f"{lane.name}: SWA off", timeout=3)

    def action_toggle_flow(self) -> None:
        """F: the gradient-flow reference beside the lane's path (surface mode)."""
        lane = self._selected_lane()
        if lane is None:
            return
        on = not lane.lab_options.get("flow")
        self.submit(SetLane(lane.name, {"flow": on}))
        self.notify(f"{lane.name}: gradient flow {'on' if on else 'off'} (dimmed line)", timeout=3)

    def action_apply_range_test(self) -> None:
        """R: the suggested lr of the selected lane's range test (or, when the selected lane runs
        none, of the first range-test lane with a suggestion) becomes every other lane's lr;
        other range-test lanes are left alone (a range test ignores lr)."""
        snapshot = self.worker.latest.snapshot
        names = snapshot.lane_names()
        order = ([self.selected] if self.selected in names else []) + [n for n in names if n != self.selected]
        source = next((name for name in order if self.view.suggested_lr(snapshot, name) is not None), None)
        if source is None:
            self.notify("no range test with a suggestion yet: give a lane schedule = range-test"
                        " (s cycles schedules) and run it", severity="warning", timeout=5)
            return
        lr = float(self.view.suggested_lr(snapshot, source))
        targets = [lane.name for lane in snapshot.lanes
                   if lane.name != source and lane.schedule_name != "range-test"]
        for name in targets:
            self.submit(SetLane(name, {"lr": lr}))
        self.notify(f"lr {fmt(lr)} from {source}'s range test → {', '.join(targets) or 'no other lane'}",
                    timeout=4)
