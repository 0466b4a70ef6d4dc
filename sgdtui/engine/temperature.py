"""Two temperatures per lane, each defined where it means something and None ("-") elsewhere.

``temperature`` (the course's convention): lr_eff / B, times 1/(1 - mu) for heavy-ball momentum
(torch SGD's, vanilla momentum's, RMSprop's and LARS's velocity sums each gradient 1/(1 - mu)
times; EMA momentum, Adam's m included, sums it once). For adaptive optimizers lr_eff is the
current preconditioned step size, lr / (sqrt(v_hat) + eps) for Adam, averaged over coordinates
and trajectories; it is None before the optimizer has a second-moment estimate.

``gibbs_temperature`` T_G: the temperature of the stationary density exp(-L / T_G) / Z. With
additive isotropic gradient noise of variance sigma^2 / B per coordinate, SGD's stationary
variance along a curvature lambda is lr sigma^2 / (2 B lambda) for small lr * lambda, the Gibbs
variance T_G / lambda, so T_G = sigma^2 * temperature / 2. SGLD adds its own T on top. It is
None where no such density exists: minibatch noise of a data surface (not isotropic), LARS and
LAMB (a step size that depends on the position), or a temperature that is itself None.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

HEAVY_BALL = {"sgd", "momentum", "nesterov", "vanilla-momentum", "rmsprop", "lars"}
ADAPTIVE = {"adam", "adamw", "nadam", "radam", "adagrad", "rmsprop", "adam-nobias", "adam-centered",
            "adam-minbias", "lamb", "lars"}
NO_GIBBS = {"lars", "lamb"}  # position-dependent step sizes: no exp(-L/T) density


def _array(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _value(h: Any) -> Any:
    """A hyperparameter as a float, or per trajectory (a vectorized Rows) as an (n,) array."""
    if hasattr(h, "values") and hasattr(h, "uniques"):
        return _array(h.values)
    return h


def _count(step: Any) -> float:
    if step is None:
        return 0.0
    if hasattr(step, "count"):  # the vectorized core's counter
        return float(step.count)
    if hasattr(step, "item"):
        return float(step.item())
    return float(step)


def preconditioned_lr(name: str, hyper: Mapping[str, Any], state: Mapping[str, Any], lr: Any,
                      columns: slice | np.ndarray | None = None) -> float | None:
    """The mean over coordinates (and trajectories, ``columns`` of a (2, n) state) of the step
    size the optimizer applies to a gradient now; None before its statistics exist."""
    if name not in ADAPTIVE:
        return float(np.mean(_value(lr)))

    def get(key: str) -> np.ndarray | None:
        value = state.get(key)
        if value is None:
            return None
        array = _array(value)
        return array[..., columns] if columns is not None and array.ndim else array

    lr_v = _value(lr)
    cols = (lambda a: a[..., columns] if columns is not None and np.ndim(a) else a)
    eps = cols(_value(hyper.get("eps", 0.0)))
    if name in ("adam", "adamw", "nadam", "radam"):
        v = get("max_exp_avg_sq") if hyper.get("amsgrad") else get("exp_avg_sq")
        t = _count(state.get("step"))
        if v is None or t == 0:
            return None
        beta2 = cols(_value(hyper["betas"][1]))
        v_hat = v / (1.0 - beta2 ** t)
        step = cols(lr_v) / (np.sqrt(v_hat) + eps)
        if name == "radam":
            rho_inf = 2.0 / (1.0 - beta2) - 1.0
            rho_t = rho_inf - 2.0 * t * beta2 ** t / (1.0 - beta2 ** t)
            with np.errstate(invalid="ignore", divide="ignore"):
                rect = np.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            step = np.where(rho_t > 5.0, step * rect, cols(lr_v) * np.ones_like(step))
        return float(np.mean(step))
    if name == "adagrad":
        total = get("sum")
        t = _count(state.get("step"))
        if total is None or t == 0:
            return None
        clr = cols(lr_v) / (1.0 + (t - 1.0) * cols(_value(hyper.get("lr_decay", 0.0))))
        return float(np.mean(clr / (np.sqrt(total) + eps)))
    if name == "rmsprop":
        s = get("square_avg")
        if s is None:
            return None
        if hyper.get("centered"):
            g = get("grad_avg")
            s = np.maximum(s - g * g, 0.0) if g is not None else s
        return float(np.mean(cols(lr_v) / (np.sqrt(s) + eps)))
    if name in ("adam-nobias", "adam-centered", "adam-minbias", "lamb"):
        s = get("exp_avg_sq")
        if s is None:
            return None
        if name == "adam-nobias":
            return float(np.mean(cols(lr_v) / np.sqrt(s + eps)))
        if name == "adam-centered":
            m = get("exp_avg")
            return float(np.mean(cols(lr_v) / np.sqrt(np.maximum(s - m * m, 0.0) + eps)))
        if name == "adam-minbias":
            return float(np.mean(cols(lr_v) / (np.sqrt(s) + eps)))
        return None  # lamb: its trust ratio needs the update's norm; see layer readouts
    return None  # lars: the trust ratio depends on the current gradient


def heavy_ball_factor(name: str, hyper: Mapping[str, Any]) -> float:
    """How many times a heavy-ball velocity applies each gradient: (1 - d)/(1 - mu)."""
    if name not in HEAVY_BALL:
        return 1.0
    mu = float(np.mean(_value(hyper.get("momentum", 0.0))))
    dampening = float(np.mean(_value(hyper.get("dampening", 0.0))))
    return (1.0 - dampening) / (1.0 - mu)


def course_temperature(name: str, hyper: Mapping[str, Any], state: Mapping[str, Any], lr: Any,
                       batch: Any, columns=None) -> float | None:
    """lr_eff / B x heavy-ball factor; None where lr_eff is not defined yet."""
    lr_eff = preconditioned_lr(name, hyper, state, lr, columns)
    if lr_eff is None or not math.isfinite(lr_eff):
        return None
    b = float(np.mean(_value(batch)))
    return lr_eff / b * heavy_ball_factor(name, hyper)


def gibbs_temperature(name: str, temperature: float | None, noise: float, *,
                      sgld_temperature: float | None = None, isotropic_noise: bool = True) -> float | None:
    """T_G = sigma^2 * temperature / 2 (+ T for SGLD); None where no Gibbs density holds."""
    if name in NO_GIBBS or temperature is None or not isotropic_noise:
        return None
    t_g = noise * noise * temperature / 2.0
    if name == "sgld":
        t_g += float(sgld_temperature or 0.0)
    return t_g


def stability_limit(name: str, hyper: Mapping[str, Any]) -> float:
    """The largest lr_eff * lambda_max for which the step is stable on a quadratic: 2 for GD,
    2(1 + mu) for heavy-ball momentum (the velocity's recursion), 2 for EMA-style updates."""
    if name in ("momentum", "vanilla-momentum", "sgd") and not hyper.get("nesterov"):
        mu = float(np.mean(_value(hyper.get("momentum", 0.0))))
        return 2.0 * (1.0 + mu)
    if name == "ema-momentum":  # heavy ball with lr (1 - beta) lr and mu = beta
        beta = float(np.mean(_value(hyper.get("beta", 0.0))))
        return 2.0 * (1.0 + beta) / (1.0 - beta)
    return 2.0
