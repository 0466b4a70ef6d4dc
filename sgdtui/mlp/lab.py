"""The Lab's read-outs of an MLP lane: its temperatures, its per-layer numbers (the intrinsic
learning rate of normalized layers, LARS/LAMB trust ratios, collapsed layers), the running
average of its weights (SWA) and the (lr, loss) rows of an LR range test.

Temperatures follow ``engine.temperature``, with the optimizer state of every parameter tensor
concatenated, and the preconditioned step size lr / (sqrt(v_hat) + eps) averaged over the
network's weights weighted by v_hat, each weight's share of the gradient's second moment: a weight
that receives no gradient (a dead ReLU's) takes no noise, so it sets no temperature, and its step
lr / eps (1e6 x lr for Adam) would otherwise swamp a plain mean.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, update_bn

from sgdtui.engine.rangetest import RangeTestReading, read_range_test, smoothed
from sgdtui.engine.temperature import course_temperature, gibbs_temperature
from sgdtui.mlp.snapshot import LayerReadout

# A normalized layer has collapsed when its ||W|| has fallen below this fraction of its norm at
# initialization: its pre-activations' variance is then ~1e-4 of what it was (about 3e-5 for
# inputs of unit variance), the order of BatchNorm's eps (1e-5), so the layer is no longer scale
# invariant and lr / ||W||^2 no longer measures its step.
COLLAPSE_FRACTION = 0.01
RANGE_TEST_ROWS = 1_000_000  # the longest range test kept exactly (16 MB of rows)
RANGE_CURVE_POINTS = 1000  # points of the smoothed curve a snapshot carries


def merged_state(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's per-parameter state as one state: tensors of a parameter's shape are
    flattened and concatenated over the parameters (in order); scalars (``step``) are the first
    parameter's. Empty before the optimizer's first step."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    states = [optimizer.state.get(p, {}) for p in params]
    if not states or not all(states):
        return {}
    merged: dict[str, Any] = {}
    for key, first in states[0].items():
        if not isinstance(first, Tensor):
            merged[key] = first
        elif first.dim() == 0 or first.shape != params[0].shape:
            merged[key] = first.detach().cpu().numpy()
        else:
            merged[key] = torch.cat([state[key].detach().reshape(-1) for state in states]).cpu().numpy()
    return merged


SECOND_MOMENTS = ("exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum")


def _weighted(second: np.ndarray) -> np.ndarray:
    """The one second moment s whose step 1/sqrt(s) is the s-weighted mean of 1/sqrt(s_i) over the
    coordinates: sum(s_i / sqrt(s_i)) / sum(s_i) = 1/sqrt(s), s = (sum s_i / sum sqrt(s_i))^2."""
    second = np.maximum(np.asarray(second, dtype=np.float64), 0.0)
    total, roots = float(second.sum()), float(np.sqrt(second).sum())
    return np.array((total / roots) ** 2 if roots > 0 else 0.0)


def weighted_state(optimizer_name: str, hyper: Mapping[str, Any], state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with each second-moment array replaced by its v-weighted effective value (the
    centered variants' s - m^2 first folded into it), so ``engine.temperature``'s formulas give
    the v_hat-weighted mean step (bias corrections and RAdam's rectification are the same for
    every coordinate, so they commute with the weighting)."""
    out = dict(state)
    if optimizer_name == "adam-centered" and "exp_avg" in out:
        out["exp_avg_sq"] = out["exp_avg_sq"] - out["exp_avg"] ** 2
        out["exp_avg"] = np.zeros(())
    if optimizer_name == "rmsprop" and hyper.get("centered") and "grad_avg" in out:
        out["square_avg"] = out["square_avg"] - out["grad_avg"] ** 2
        out["grad_avg"] = np.zeros(())
    for key in SECOND_MOMENTS:
        if key in out and np.ndim(out[key]):
            out[key] = _weighted(out[key])
    return out


def lane_temperature(optimizer_name: str, hyper: Mapping[str, Any], optimizer: torch.optim.Optimizer,
                     lr: float, batch: int) -> float | None:
    """The course's temperature lr_eff / B (x 1/(1 - mu) for heavy-ball momentum), lr_eff the
    preconditioned step averaged over the weights (v_hat-weighted, see the module docstring);
    None before an adaptive optimizer has statistics, for LARS/LAMB (whose step size is a
    per-layer trust ratio) and for optimizers by import path (no definition is known for them)."""
    if ":" in optimizer_name:
        return None
    return course_temperature(optimizer_name, hyper, weighted_state(optimizer_name, hyper, merged_state(optimizer)),
                              lr, batch)


def lane_gibbs_temperature(optimizer_name: str, hyper: Mapping[str, Any], temperature: float | None,
                           full_batch: bool) -> float | None:
    """T_G of the stationary density exp(-L/T_G): minibatch noise is not isotropic, so a minibatch
    lane has none; a full-batch lane has no gradient noise at all, which leaves SGLD's own T (and
    0 for plain gradient descent)."""
    if ":" in optimizer_name:
        return None
    return gibbs_temperature(optimizer_name, temperature, 0.0, sgld_temperature=hyper.get("temperature"),
                             isotropic_noise=full_batch)


def trust_ratio(optimizer_name: str, group: Mapping[str, Any], state: Mapping[str, Any], weight: Tensor,
                grad: Tensor | None) -> float | None:
    """The layer-wise factor LARS or LAMB applies to this weight's step, at the current weights:
    LARS's trust * ||w|| / (||g|| + wd ||w|| + eps) with the latest gradient, LAMB's
    ||w|| / ||r|| with its current moments (r = m_hat / (sqrt(v_hat) + eps) + wd w). 1 where a
    norm is 0 (both optimizers fall back to 1 there); None for other optimizers or before the
    first step."""
    with torch.no_grad():
        w_norm = float(weight.detach().norm())
        if optimizer_name == "lars":
            if grad is None:
                return None
            g_norm = float(grad.detach().norm())
            if w_norm == 0 or g_norm == 0:
                return 1.0
            wd = float(group["weight_decay"])
            return float(group["trust"]) * w_norm / (g_norm + wd * w_norm + float(group["eps"]))
        if optimizer_name == "lamb":
            if "exp_avg" not in state:
                return None
            beta1, beta2 = group["betas"]
            t = float(state["step"])
            m_hat = state["exp_avg"] / (1.0 - beta1 ** t)
            v_hat = state["exp_avg_sq"] / (1.0 - beta2 ** t)
            r = m_hat / (v_hat.sqrt() + group["eps"])
            if group["weight_decay"] != 0:
                r = r + group["weight_decay"] * weight.detach()
            r_norm = float(r.norm())
            return 1.0 if w_norm == 0 or r_norm == 0 else w_norm / r_norm
    return None


def is_collapsed(norm_sq: float, init_norm_sq: float) -> bool:
    """A normalized layer whose ||W||^2 is not a positive finite number, or whose ||W|| is below
    COLLAPSE_FRACTION of its initial norm."""
    return not (math.isfinite(norm_sq) and norm_sq > (COLLAPSE_FRACTION ** 2) * init_norm_sq)


def layer_readouts(layers: list[tuple[str, bool]], norms: np.ndarray, init_norm_sq: list[float],
                   lr: float, trust: list[float | None]) -> tuple[LayerReadout, ...]:
    """One lane's per-layer numbers: ``layers`` (name, normalized) and ``norms`` [n, 2] (||W||,
    ||g||) from the trainer, the lane's lr and each layer's trust ratio."""
    out = []
    for (name, normalized), (w_norm, g_norm), init, ratio in zip(layers, norms, init_norm_sq, trust):
        w_sq = float(w_norm) ** 2
        collapsed = normalized and is_collapsed(w_sq, init)
        effective = (lr / w_sq if w_sq > 0 else math.inf) if normalized else None
        out.append(LayerReadout(name=name, normalized=normalized, weight_norm=float(w_norm),
                                grad_norm=None if not math.isfinite(g_norm) else float(g_norm),
                                effective_lr=effective, trust_ratio=ratio, collapsed=collapsed))
    return tuple(out)


class WeightAverage:
    """The running average of a lane's weights (stochastic weight averaging), with
    ``torch.optim.swa_utils``: ``AveragedModel`` keeps the equal-weight mean of every weight it is
    given, ``update_bn`` recomputes BatchNorm's statistics for the averaged weights (one pass over
    the training set in train mode with cumulative averaging, so they are the training set's
    exact mean and variance of each normalized pre-activation), before each evaluation."""

    def __init__(self, module: nn.Module, start: int):
        self.start = start  # the lane step averaging began at
        self.model = AveragedModel(module)
        self.last_step: int | None = None  # the lane step of the latest weights averaged in

    @property
    def count(self) -> int:
        return int(self.model.n_averaged)

    def add(self, module: nn.Module, step: int) -> None:
        if self.last_step != step:
            self.model.update_parameters(module)
            self.last_step = step

    @torch.no_grad()
    def evaluate(self, x_train: Tensor, x_val: Tensor, y_val: Tensor, loss_of, classification: bool) -> Tensor:
        """[val_loss, val_acc] of the averaged weights (a device tensor, no sync; acc NaN for a
        regression); ``loss_of(output, target)`` is the trainer's loss."""
        update_bn([x_train], self.model)
        self.model.eval()
        try:
            out = self.model(x_val)
        finally:
            self.model.train()
        loss = loss_of(out, y_val).float()
        acc = (out.argmax(dim=1) == y_val).float().mean() if classification else torch.full_like(loss, math.nan)
        return torch.stack([loss, acc])


class RangeTestRows:
    """A range-test lane's exact (lr, minibatch loss) rows while its ramp runs (the lane's
    history thins old rows; the suggestion must not depend on that)."""

    def __init__(self) -> None:
        self.lrs: list[np.ndarray] = []
        self.losses: list[np.ndarray] = []
        self.count = 0
        self._reading: tuple[int, RangeTestReading, np.ndarray, np.ndarray] | None = None

    def add(self, lrs: np.ndarray, losses: np.ndarray) -> None:
        room = RANGE_TEST_ROWS - self.count
        if room > 0 and len(lrs):
            self.lrs.append(np.array(lrs[:room], dtype=np.float64))
            self.losses.append(np.array(losses[:room], dtype=np.float64))
            self.count += min(room, len(lrs))

    def reading(self) -> tuple[RangeTestReading, np.ndarray, np.ndarray]:
        """The suggestions by every rule, and the smoothed curve (thinned) they read."""
        if self._reading is None or self._reading[0] != self.count:
            lrs = np.concatenate(self.lrs) if self.lrs else np.empty(0)
            losses = np.concatenate(self.losses) if self.losses else np.empty(0)
            reading = read_range_test(lrs, losses)
            finite = np.isfinite(losses)
            cut = int(np.argmax(~finite)) if not finite.all() else len(losses)
            curve = smoothed(losses[:cut]) if cut else np.empty(0)
            keep = np.unique(np.linspace(0, cut - 1, RANGE_CURVE_POINTS).round().astype(np.int64)) if cut else []
            self._reading = (self.count, reading, lrs[:cut][keep], curve[keep])
        _, reading, lrs, curve = self._reading
        return reading, lrs, curve
