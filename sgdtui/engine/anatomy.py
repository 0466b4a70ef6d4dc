"""The anatomy of the next update at a lane's point: how much of it is the plain gradient step
-lr*grad, and how much the optimizer's memory (momentum buffer, velocity) or preconditioning
(Adam's per-axis division) adds, so a step-by-step view can draw them as arrows.

The update is found by taking the step for real on a copy of the optimizer (its state, its
parameter and its random stream copied; see ``SurfaceLane.next_update``): exact for every
optimizer, and the lane itself is untouched. The gradient used is the full (noise-free) one at the point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Anatomy:
    """For the first start point of a lane: each as (dx, dy)."""

    gradient_step: tuple[float, float]  # -lr_eff * grad
    update: tuple[float, float]  # what the optimizer will actually do
    # update - gradient_step: the momentum buffer's push (heavy ball, EMA) or the per-axis
    # rescaling (Adam, RMSprop) the optimizer adds to the plain gradient step
    extra: tuple[float, float]

    @property
    def per_axis_gain(self) -> tuple[float, float]:
        """update / gradient step on each axis (1 for plain GD; the preconditioner's gain)."""
        return tuple(u / g if g else float("nan") for u, g in zip(self.update, self.gradient_step))


def anatomy_of(delta, grad, lr: float) -> Anatomy:
    """The anatomy of an update ``delta`` (dx, dy) made from gradient ``grad`` at lr ``lr``."""
    gradient_step = (-lr * np.asarray(grad, dtype=np.float64)).tolist()
    extra = (np.asarray(delta, dtype=np.float64) - np.asarray(gradient_step)).tolist()
    return Anatomy(tuple(gradient_step), tuple(float(d) for d in delta), tuple(extra))
