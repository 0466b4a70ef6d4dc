"""What an MLP session shows, as plain numpy (no torch, no model code): the per-lane readouts,
the problem's payload (dataset and the selected lane's prediction grid), and the loss-slice
query with its answer. Presenters import this module only."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sgdtui.engine.commands import Query
from sgdtui.engine.contours import LevelLine
from sgdtui.engine.snapshot import LaneSnapshot

DIRECTIONS = ("random", "pca")


@dataclass(frozen=True)
class LayerReadout:
    """One Linear layer of a lane now."""

    name: str  # its weight's parameter name ("0.weight", ...)
    normalized: bool  # it feeds a BatchNorm/LayerNorm layer: its output is scale invariant
    weight_norm: float  # ||W||
    grad_norm: float | None  # ||g|| of the latest minibatch gradient (None before the first step)
    effective_lr: float | None  # lr / ||W||^2 for a normalized layer (None otherwise)
    trust_ratio: float | None  # LARS's / LAMB's layer-wise factor (None for other optimizers)
    collapsed: bool  # a normalized layer whose ||W|| fell below 1 % of its initial norm


@dataclass(frozen=True)
class MLPLaneSnapshot(LaneSnapshot):
    weight_decay: float
    train_loss: np.ndarray  # (T,) minibatch loss of each update (the same rows as ``steps``)
    eval_steps: np.ndarray  # (E,) every eval_every steps
    val_loss: np.ndarray  # (E,)
    val_acc: np.ndarray  # (E,) NaN for regression
    weight_norm: float  # ||w|| now
    norm_effective_lr: tuple[float, ...] | None  # eta/||W||^2 of each normalized layer (None: no norm)
    intrinsic_lr: float  # eta * lambda
    grad_noise: float | None  # E||g_hat - g||^2 at the lane's batch size (None: not estimated this time)
    # The Lab's MLP read-outs:
    layers: tuple[LayerReadout, ...] = field(default=(), kw_only=True)  # every Linear layer, in order
    eval_lr: np.ndarray | None = field(default=None, kw_only=True)  # (E,) the lr at each evaluation
    eval_norm_sq: np.ndarray | None = field(default=None, kw_only=True)  # (E, K) ||W||^2 per normalized layer
    swa_acc: np.ndarray | None = field(default=None, kw_only=True)  # (S,) val accuracy of the averaged weights
    swa_count: int = field(default=0, kw_only=True)  # weights averaged so far
    range_curve: tuple[np.ndarray, np.ndarray] | None = field(default=None, kw_only=True)  # (lrs, smoothed loss)


@dataclass(frozen=True)
class MLPPayload:
    """The dataset, the network's shape and the prediction grid of ``boundary_lane``."""

    dataset: str
    hidden: tuple[int, ...]
    activation: str
    norm: str
    device: str
    task: str  # "classification" or "regression"
    n_classes: int
    x_train: np.ndarray  # (n, d) standardized inputs
    y_train: np.ndarray  # (n,) labels or (n, 1) targets
    x_val: np.ndarray
    y_val: np.ndarray
    boundary_lane: str | None  # the lane whose prediction grid is below
    grid_xlim: tuple[float, float]
    grid_ylim: tuple[float, float]
    grid: np.ndarray | None  # (res, res, classes) probabilities, or (res,) regression fit
    data_key: tuple  # identifies the data points (a cache key for drawing them)


@dataclass(frozen=True)
class LossSlice(Query):
    """The loss over a plane through ``lane``'s current weights, along ``directions``."""

    lane: str
    directions: str = "random"


@dataclass(frozen=True)
class LandscapeSlice:
    lane: str
    directions: str
    step: int  # the lane's step (updates taken) when the slice was taken
    alphas: np.ndarray  # (res,)
    betas: np.ndarray  # (res,)
    z: np.ndarray  # (res, res): z[j, i] = loss at (alphas[i], betas[j])
    path: np.ndarray  # (T, 2) the lane's recorded weights projected on the plane
    lines: list[LevelLine]

    @property
    def xlim(self) -> tuple[float, float]:
        return float(self.alphas[0]), float(self.alphas[-1])

    @property
    def ylim(self) -> tuple[float, float]:
        return float(self.betas[0]), float(self.betas[-1])
