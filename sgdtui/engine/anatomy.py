"""The anatomy of the next update at a lane's point: how much of it is the plain gradient step
-lr*grad, and how much the optimizer's memory (momentum buffer, velocity) or preconditioning
(Adam's per-axis division) adds, so a step-by-step view can draw them as arrows.

The update is found by taking the step for real on a copy of the optimizer (its state, its
parameter and its random stream deep-copied): exact for every optimizer, and the lane itself is
untouched. The gradient used is the full (noise-free) one at the point.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch


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


def next_update(optimizer: torch.optim.Optimizer, params: torch.Tensor, grad: torch.Tensor, lr: float) -> Anatomy:
    """The update the lane's next step would make with gradient ``grad`` (row 0 reported)."""
    twin = copy.deepcopy(optimizer)
    (param,) = [p for group in twin.param_groups for p in group["params"]]
    with torch.no_grad():
        param.copy_(params.detach())
    before = param.detach().clone()
    for group in twin.param_groups:
        group["lr"] = lr
    param.grad = grad.detach().clone()
    twin.step()
    delta = (param.detach() - before)[0].tolist()
    gradient_step = (-lr * grad.detach()[0]).tolist()
    extra = (np.asarray(delta) - np.asarray(gradient_step)).tolist()
    return Anatomy(tuple(gradient_step), tuple(delta), tuple(extra))
