"""The playground's modes: for each problem kind, the view that draws it and how its session is
stepped (in this process on a thread, or in a process of its own) and snapshotted."""

from __future__ import annotations

from dataclasses import dataclass

from sgdtui.ui.mlp_panes import MLPView
from sgdtui.ui.surface_panes import SurfaceView
from sgdtui.ui.view_base import ModeView
from sgdtui.ui.worker import WorkerOptions

# Which worker steps a session: "auto" (each mode's own choice), "thread" or "process" (every session).
WORKER_KINDS = ("auto", "thread", "process")


@dataclass(frozen=True)
class Mode:
    kind: str
    view: type[ModeView]
    own_process: bool  # "auto" steps this mode's session in a process of its own
    publish_rate: float | None  # frames per second while running (None: the frame rate)
    costly_period: float | None  # seconds between snapshots with the costly read-outs (0: every one, None: never)

    def options(self, frame_rate: float, speed_index: int, costly_period: float | None | str = "mode") -> WorkerOptions:
        return WorkerOptions(frame_rate=frame_rate, speed_index=speed_index, publish_rate=self.publish_rate,
                             costly_period=self.costly_period if costly_period == "mode" else costly_period)


MODES: dict[str, Mode] = {
    # Surface sessions are cheap to step and snapshot: a thread, a frame per frame, the selected
    # lane's Hessian in every one.
    "surface": Mode("surface", SurfaceView, own_process=False, publish_rate=None, costly_period=0.0),
    # MLP training would share the GIL with rendering: its own process, a frame per frame (a
    # snapshot costs 4-9 % of one lane's or four lanes' training at 25/s; the plots redraw at their
    # own rates) and a gradient-noise estimate twice a second.
    "mlp": Mode("mlp", MLPView, own_process=True, publish_rate=None, costly_period=0.5),
}
