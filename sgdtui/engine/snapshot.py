"""The one snapshot contract: what a UI (or any reader on another thread or process) sees of a
session. Immutable, plain numpy: a reader never touches torch tensors or a race.

Every lane, whatever the problem, has the readouts of ``LaneSnapshot`` (its steering state, its
status and one loss curve); a problem kind subclasses it with its own per-lane fields and puts
what the whole problem shows (a surface, a dataset and a prediction grid) in ``payload``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class LaneSnapshot:
    """What every lane shows: steering state, status, and the curve the loss pane draws."""

    name: str
    optimizer: str
    hyper: dict[str, Any]
    base_lr: float
    effective_lr: float  # after schedule and coupling
    decay_name: str | None
    decay: float | None
    batch: int
    schedule: str  # a short label
    schedule_name: str  # its registry name
    coupling: str
    noise: float
    temperature: float | None  # the course's lr_eff/B (x 1/(1-mu) heavy ball); None: undefined yet
    t: int  # updates this lane has taken since its start
    status: str
    diverged_at: int | None  # the first step at which (any part of) the lane diverged
    steps: np.ndarray  # (T,) step index of each history row
    loss_curve: np.ndarray  # (T,) the lane's loss at each row (mean over its particles, or train loss)
    lrs: np.ndarray  # (T,) effective lr of the update that led to each row
    # The Lab's read-outs (keyword-only, so problem kinds add their own fields freely):
    gibbs_temperature: float | None = field(default=None, kw_only=True)  # T_G of exp(-L/T_G); None: undefined
    sum_lr: float = field(default=0.0, kw_only=True)  # sum(lr_t) since the lane (re)started
    sum_lr2: float = field(default=0.0, kw_only=True)  # sum(lr_t^2)
    range_test: Any = field(default=None, kw_only=True)  # rangetest.RangeTestReading on a range-test schedule
    swa_steps: np.ndarray | None = field(default=None, kw_only=True)  # the averaged iterate's curve: steps
    swa_loss: np.ndarray | None = field(default=None, kw_only=True)  # ... and its loss (val loss in MLP mode)
    warnings: tuple[str, ...] = field(default=(), kw_only=True)
    lr_future: tuple[float, ...] = field(default=(), kw_only=True)  # the schedule's next lrs (lr preview)
    lab_options: dict[str, Any] = field(default_factory=dict, kw_only=True)  # burn_in, swa_start, flow  # e.g. "lr·λmax > 2": the coupling rules fail


@dataclass(frozen=True)
class Snapshot:
    """An immutable picture of a session at one step boundary."""

    version: int  # bumped by every applied command and step batch
    clock: int  # steps since the session began (the script's clock, which never rewinds)
    step: int  # steps since the race (re)started: a reset or a problem switch sets it back to 0
    kind: str  # the problem kind ("surface", "mlp", ...)
    label: str  # the problem in a few words, for the status line and titles
    table: dict[str, Any]  # the problem's [problem] table (a view builds a switch to a variant from it)
    lanes: tuple[LaneSnapshot, ...]
    payload: Any  # the problem kind's own picture (frozen, numpy)
    caption: tuple[int, str] | None = None  # the latest script caption reached: (step, text)

    def lane(self, name: str) -> LaneSnapshot:
        for lane in self.lanes:
            if lane.name == name:
                return lane
        raise KeyError(name)

    def lane_names(self) -> list[str]:
        return [lane.name for lane in self.lanes]
