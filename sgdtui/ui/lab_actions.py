"""The Lab's actions that every mode shares: apply a range test's suggested lr to the other lanes
(R) and switch the selected lane's weight averaging (SWA) on from the current step, or off (W).
Each becomes a SetLane command, recorded like a key press, so replays repeat it.

A mixin of ``PlaygroundApp``; the view of the current mode says what a range test suggests
(``ModeView.suggested_lr``).
"""

from __future__ import annotations

from sgdtui.engine.commands import SetLane
from sgdtui.ui.present import fmt


class LabActions:
    def action_apply_range_test(self) -> None:
        """The suggested lr of the selected lane's range test (or, when the selected lane runs
        none, of the first range-test lane with a suggestion) becomes every other lane's lr;
        other range-test lanes are left alone (a range test ignores lr)."""
        snapshot = self.worker.latest.snapshot
        names = snapshot.lane_names()
        order = ([self.selected] if self.selected in names else []) + [n for n in names if n != self.selected]
        source = next((name for name in order if self.view.suggested_lr(snapshot, name) is not None), None)
        if source is None:
            self.notify("no range test with a suggestion yet: give a lane schedule = range-test and run it",
                        severity="warning", timeout=4)
            return
        lr = float(self.view.suggested_lr(snapshot, source))
        targets = [lane.name for lane in snapshot.lanes if lane.name != source and lane.schedule_name != "range-test"]
        for name in targets:
            self.worker.submit(SetLane(name, {"lr": lr}))
        self.notify(f"lr {fmt(lr)} from {source}'s range test → {', '.join(targets) or 'no other lane'}", timeout=4)

    def action_toggle_swa(self) -> None:
        """The selected lane averages its weights from its current step on (swa = { start = t }),
        or, when it already does, stops (swa = false)."""
        if self.selected is None:
            self.notify("no lane selected: press a to add one", severity="warning")
            return
        lane = self.worker.latest.snapshot.lane(self.selected)
        if lane.swa_steps is not None:
            self.worker.submit(SetLane(lane.name, {"swa": False}))
            self.notify(f"{lane.name}: weight averaging off", timeout=3)
        else:
            self.worker.submit(SetLane(lane.name, {"swa": {"start": lane.t}}))
            self.notify(f"{lane.name}: averaging its weights from step {lane.t} (SWA)", timeout=3)
