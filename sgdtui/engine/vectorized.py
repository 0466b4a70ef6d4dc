"""Vectorized optimizers: every registry optimizer's update on a structure-of-arrays parameter,
with any hyperparameter given per trajectory.

A parameter here is one (2, n) tensor: row 0 holds the x of all n trajectories, row 1 their y.
Each optimizer's update is written with torch's own in-place ops, in the order torch.optim's
single-tensor path (or the course variant in ``variants.py``) applies them. Elementwise ops do
not depend on the layout, so with Python-float hyperparameters a step is bit for bit the
torch.optim step on the (n, 2) parameter (``tests/test_vectorized.py`` proves it per optimizer).

Any hyperparameter (lr included) may instead be a ``Rows``: one value per trajectory, so a grid
of 4,096 (lr, momentum) cells steps as one tensor. Each scalar op has an exact per-row twin:
torch's ``add(x, alpha=a)`` is a fused multiply-add, and so is ``addcmul(x, a_rows)``;
``addcmul(x, y, value=v)`` rounds ``v*x`` first, like ``addcmul(x*v_rows, y)``. What torch.optim
computes in Python floats from the hyperparameters (bias corrections, ``** 0.5``, NAdam's
momentum schedule) is computed here in Python floats too, once per distinct value of the
hyperparameter, and gathered. A row of a ``Rows`` run therefore equals, to the bit, the
scalar run of that row's values. Where torch branches on a hyperparameter (``momentum != 0``,
``weight_decay != 0``) and the rows disagree, both sides are computed and the branch is
selected per row.

Rows never interact: the only non-elementwise ops, LARS's and LAMB's "layer" norms, are taken
per trajectory, as ``sqrt(x*x + y*y)`` with one fused multiply-add and a correctly rounded
root (torch's own ``vector_norm(dim=1)`` on an (n, 2) tensor computes exactly this for n < 79
rows and switches to another reduction above that, which is not copied: here a trajectory's
numbers never depend on how many others step with it).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

DTYPE = torch.float64


class Rows:
    """A hyperparameter with one value per trajectory.

    ``uniques`` are the distinct values as Python floats and ``index`` (n,) says which one each
    row has; ``values`` is the (n,) float64 tensor. Formulas evaluated in Python floats are
    applied to the distinct values (``map``, ``rowwise``), so each row sees exactly the float the
    scalar code would compute.
    """

    __slots__ = ("uniques", "index", "values", "_joint", "_derived")

    def __init__(self, uniques: Sequence[float], index: Tensor):
        self.uniques = tuple(float(u) for u in uniques)
        self.index = index
        self.values = torch.tensor(self.uniques, dtype=DTYPE)[index]
        self._joint: dict = {}
        self._derived: dict = {}  # step-independent maps and branch masks, made once

    @classmethod
    def of(cls, per_row: Sequence[float]) -> "Rows":
        """From one value per row; equal values (bit for bit, -0.0 apart from 0.0) share an entry."""
        seen: dict[tuple[float, bool], int] = {}
        uniques: list[float] = []
        index = []
        for value in per_row:
            value = float(value)
            key = (value, math.copysign(1.0, value) < 0)
            if key not in seen:
                seen[key] = len(uniques)
                uniques.append(value)
            index.append(seen[key])
        return cls(uniques, torch.tensor(index, dtype=torch.int64))

    def __len__(self) -> int:
        return len(self.index)

    def map(self, fn: Callable[[float], float], key: str | None = None) -> "Rows":
        """``fn`` of every row's value; with a ``key`` the result is kept (fn must not change)."""
        if key is not None:
            cached = self._derived.get(key)
            if cached is None:
                cached = self._derived[key] = Rows([fn(u) for u in self.uniques], self.index)
            return cached
        return Rows([fn(u) for u in self.uniques], self.index)

    def tolist(self) -> list[float]:
        return [self.uniques[i] for i in self.index.tolist()]

    def constant(self) -> float | None:
        """The value when every row has the same one, else None."""
        return self.uniques[0] if len(self.uniques) == 1 else None

    def __repr__(self) -> str:
        return f"Rows({len(self.uniques)} values over {len(self)} rows)"


Hyper = Any  # a Python float (or bool/int) or a Rows


def rowwise(fn: Callable[..., float], *args: Hyper, key: str | None = None) -> Hyper:
    """``fn(*args)`` in Python floats; with Rows among the args, per row (once per distinct
    combination of their values), as a Rows. A ``key`` keeps the result of a one-Rows call with
    the Rows (for maps that do not change from step to step)."""
    rows = [a for a in args if isinstance(a, Rows)]
    if not rows:
        return fn(*args)
    if key is not None and len(args) == 1:
        return rows[0].map(fn, key)
    if len(rows) == 1 or all(r.index is rows[0].index for r in rows):
        base = rows[0]
        picked = [[a.uniques[k] if isinstance(a, Rows) else a for a in args] for k in range(len(base.uniques))]
        return Rows([fn(*p) for p in picked], base.index)
    first = rows[0]
    key = tuple(id(r) for r in rows[1:])
    cached = first._joint.get(key)
    if cached is None:
        code = torch.zeros_like(first.index)
        for r in rows:
            code = code * len(r.uniques) + r.index
        combos, inverse = torch.unique(code, return_inverse=True)
        decoded = []
        for c in combos.tolist():
            parts = []
            for r in reversed(rows):
                c, k = divmod(c, len(r.uniques))
                parts.append(k)
            decoded.append(list(reversed(parts)))
        cached = (decoded, inverse, rows[1:])  # the Rows themselves keep their ids valid
        first._joint[key] = cached
    decoded, inverse, _ = cached
    position = {id(r): i for i, r in enumerate(rows)}
    values = []
    for combo in decoded:
        values.append(fn(*[a.uniques[combo[position[id(a)]]] if isinstance(a, Rows) else a for a in args]))
    return Rows(values, inverse)


def _v(h: Hyper) -> Any:
    """A float as is; a Rows as its (n,) tensor (broadcasting over the (2, n) parameter)."""
    return h.values if isinstance(h, Rows) else h


def _is_rows(h: Any) -> bool:
    return isinstance(h, (Rows, Tensor))


# --- the scalar ops and their per-row twins --------------------------------------------------


def _fma_(t: Tensor, x: Tensor, a: Hyper) -> Tensor:
    """t += a*x in one rounding (torch's ``add_(x, alpha=a)``)."""
    a = _v(a)
    return t.addcmul_(x, a) if isinstance(a, Tensor) else t.add_(x, alpha=a)


def _fma(t: Tensor, x: Tensor, a: Hyper) -> Tensor:
    """t + a*x as a new tensor (torch's ``t.add(x, alpha=a)``)."""
    a = _v(a)
    return torch.addcmul(t, x, a) if isinstance(a, Tensor) else t.add(x, alpha=a)


def _addcmul_(t: Tensor, x: Tensor, y: Tensor, value: Hyper) -> Tensor:
    """torch's ``t.addcmul_(x, y, value=v)``: t += (v*x)*y with v*x rounded first."""
    value = _v(value)
    return t.addcmul_(x * value, y) if isinstance(value, Tensor) else t.addcmul_(x, y, value=value)


def _addcdiv_(t: Tensor, x: Tensor, y: Tensor, value: Hyper) -> Tensor:
    """torch's ``t.addcdiv_(x, y, value=v)``: t += (v*x)/y."""
    value = _v(value)
    return t.addcdiv_(x * value, y) if isinstance(value, Tensor) else t.addcdiv_(x, y, value=value)


def _lerp_(t: Tensor, end: Tensor, weight: Hyper) -> Tensor:
    return t.lerp_(end, _v(weight))


def _test(h: Hyper, predicate: Callable[[float], bool], key: str | None = None) -> bool | Tensor:
    """A branch torch takes on a hyperparameter: a bool, or an (n,) bool mask when the rows
    disagree (kept with the Rows under ``key``)."""
    if not isinstance(h, Rows):
        return bool(predicate(h))
    if key is not None and key in h._derived:
        return h._derived[key]
    flags = [bool(predicate(u)) for u in h.uniques]
    mask = True if all(flags) else False if not any(flags) else torch.tensor(flags)[h.index]
    if key is not None:
        h._derived[key] = mask
    return mask


def _nonzero(h: Hyper, *, positive: bool = False) -> bool | Tensor:
    """torch's ``if h != 0`` (``if h > 0`` when ``positive``)."""
    if positive:
        return _test(h, lambda u: u > 0, "> 0")
    return _test(h, lambda u: u != 0, "!= 0")


def _select(mask: bool | Tensor, yes: Callable[[], Tensor], no: Callable[[], Tensor]) -> Tensor:
    """``yes()`` where the branch is taken, ``no()`` elsewhere (both computed only when mixed)."""
    if mask is True:
        return yes()
    if mask is False:
        return no()
    return torch.where(mask, yes(), no())


def _coupled(grad: Tensor, p: Tensor, wd: Hyper) -> Tensor:
    """g + wd*p (coupled L2) as torch computes it, g itself where wd = 0."""
    return _select(_nonzero(wd), lambda: _fma(grad, p, wd), lambda: grad)


def _row_norm(t: Tensor) -> Tensor:
    """Each trajectory's 2-norm, (1, n): sqrt(x*x + y*y) with the second product fused, and a
    correctly rounded square root (what ``vector_norm`` computes; torch's elementwise ``sqrt`` is
    Sleef's, which is not always correctly rounded, so numpy's is used)."""
    squares = torch.addcmul(t[0] * t[0], t[1], t[1])
    np.sqrt(squares.numpy(), out=squares.numpy())
    return squares.unsqueeze(0)


class _Float32Counter:
    """torch.optim's step counter: a float32 tensor when the default dtype is float32 (so it stops
    at 2**24), float64 otherwise; ``value`` is its Python float, as ``_get_value`` reads it."""

    def __init__(self) -> None:
        self.kind = np.float64 if torch.get_default_dtype() == torch.float64 else np.float32
        self.count = self.kind(0)

    def tick(self) -> float:
        self.count = self.kind(self.count + self.kind(1))
        return float(self.count)


class VectorOptimizer:
    """An optimizer over one (2, n) parameter. ``param_groups[0]`` holds the hyperparameters
    (floats or Rows), read on every step, so ``optimizers.set_hyper`` steers it as it steers a
    torch optimizer. ``step(p, grad, lr)`` updates ``p`` in place; ``lr`` is passed each step."""

    def __init__(self, hyper: dict[str, Any], noise: Callable[[], Tensor] | None = None):
        self.param_groups = [dict(hyper)]
        self.noise = noise
        self.state: dict[str, Any] = {}

    @property
    def hyper(self) -> dict[str, Any]:
        return self.param_groups[0]

    def _zeros(self, name: str, p: Tensor) -> Tensor:
        buf = self.state.get(name)
        if buf is None:
            buf = self.state[name] = torch.zeros_like(p)
        return buf

    def step(self, p: Tensor, grad: Tensor, lr: Hyper) -> None:
        raise NotImplementedError

    def twin(self, noise: Callable[[], Tensor] | None = None) -> "VectorOptimizer":
        """An independent copy (state cloned) that steps as this one would, drawing from ``noise``."""
        other = copy.copy(self)
        other.param_groups = [dict(self.param_groups[0])]
        other.state = {k: v.clone() if isinstance(v, Tensor) else copy.deepcopy(v) for k, v in self.state.items()}
        other.noise = noise
        return other


class TorchOptimizer(VectorOptimizer):
    """Any torch.optim.Optimizer (one named by import path, with no vectorized twin) on the (2, n)
    layout: the class steps an (N, 2) leaf holding the lane's first ``columns`` trajectories (pad
    columns are left alone), so its numbers are the class's own on the (N, 2) parameter.
    Hyperparameters live in the torch optimizer's param group once it exists."""

    def __init__(self, make: Callable[[list[Tensor]], torch.optim.Optimizer], hyper: dict[str, Any],
                 columns: int | None = None):
        super().__init__(hyper)
        self._make = make
        self.columns = columns
        self._torch: torch.optim.Optimizer | None = None
        self._weight: Tensor | None = None

    def step(self, p, grad, lr):
        if isinstance(lr, Rows):
            raise ValueError("an optimizer named by import path cannot be swept (it has no per-trajectory form)")
        n = self.columns or p.shape[1]
        if self._torch is None:
            self._weight = p[:, :n].T.clone().requires_grad_(True)
            self._torch = self._make([self._weight])
            group = self._torch.param_groups[0]
            group.update({k: v for k, v in self.param_groups[0].items() if k in group and k != "params"})
            self.param_groups = self._torch.param_groups  # set_hyper now writes the torch group
        with torch.no_grad():
            self._weight.copy_(p[:, :n].T)
        self._weight.grad = grad[:, :n].T.contiguous()
        self.param_groups[0]["lr"] = lr
        self._torch.step()
        p[:, :n] = self._weight.detach().T

    def twin(self, noise=None) -> "TorchOptimizer":
        other = TorchOptimizer(self._make, dict(self.param_groups[0]), self.columns)
        if self._torch is not None:
            other._torch = copy.deepcopy(self._torch)
            other._weight = other._torch.param_groups[0]["params"][0]
            other.param_groups = other._torch.param_groups
        return other


# --- torch.optim's algorithms --------------------------------------------------------------------


class SGD(VectorOptimizer):
    """torch.optim.SGD: g ← g + λp; buf = μ·buf + (1-d)·g (buf₁ = g); g ← g + μ·buf (Nesterov)
    or buf; p ← p - lr·g."""

    def step(self, p, grad, lr):
        h = self.hyper
        mu, damp = h["momentum"], h["dampening"]
        grad = _coupled(grad, p, h["weight_decay"])
        moving = _nonzero(mu)
        if moving is not False:
            buf = self.state.get("momentum_buffer")
            if buf is None:  # torch clones the first gradient the buffer sees
                buf = self.state["momentum_buffer"] = grad.detach().clone()
            else:
                _fma_(buf.mul_(_v(mu)), grad, rowwise(lambda d: 1 - d, damp, key="1-"))
            if h["nesterov"]:
                step = _select(moving, lambda: _fma(grad, buf, mu), lambda: grad)
            else:
                step = _select(moving, lambda: buf, lambda: grad)
        else:
            step = grad
        _fma_(p, step, _neg(lr))


def _neg(h: Hyper) -> Hyper:
    return h.map(lambda v: -v, "neg") if isinstance(h, Rows) else -h


class Adagrad(VectorOptimizer):
    """torch.optim.Adagrad: s += g²; p ← p - lr/(1 + (t-1)·lr_decay) · g/(√s + ε)."""

    def step(self, p, grad, lr):
        h = self.hyper
        if "sum" not in self.state:
            init = _v(h["initial_accumulator_value"])
            self.state["sum"] = torch.zeros_like(p).add_(init) if isinstance(init, Tensor) else torch.full_like(p, init)
            self.state["step"] = _Float32Counter()
        t = self.state["step"].tick()
        grad = _coupled(grad, p, h["weight_decay"])
        clr = _v(lr) / (1 + (t - 1) * _v(h["lr_decay"]))
        state_sum = self.state["sum"]
        state_sum.addcmul_(grad, grad, value=1)
        std = state_sum.sqrt().add_(_v(h["eps"]))
        _addcdiv_(p, grad, std, -clr)


class RMSprop(VectorOptimizer):
    """torch.optim.RMSprop: s = α·s + (1-α)·g²; (centered: ḡ = lerp(ḡ, g, 1-α), s - ḡ²);
    buf = μ·buf + g/(√s + ε), p ← p - lr·buf (or p ← p - lr·g/(√s + ε) without momentum)."""

    def step(self, p, grad, lr):
        h = self.hyper
        alpha = h["alpha"]
        if "step" not in self.state:
            self.state["step"] = _Float32Counter()
        self.state["step"].tick()
        grad = _coupled(grad, p, h["weight_decay"])
        square_avg = self._zeros("square_avg", p)
        one_minus = rowwise(lambda a: 1 - a, alpha, key="1-")
        _addcmul_(square_avg.mul_(_v(alpha)), grad, grad, one_minus)
        if h["centered"]:
            grad_avg = self._zeros("grad_avg", p)
            _lerp_(grad_avg, grad, one_minus)
            avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
        else:
            avg = square_avg.sqrt()
        avg = avg.add_(_v(h["eps"]))
        mu = h["momentum"]
        moving = _nonzero(mu, positive=True)
        if moving is False:
            _addcdiv_(p, grad, avg, _neg(lr))
            return
        buf = self._zeros("momentum_buffer", p)
        if moving is True:
            buf.mul_(_v(mu)).addcdiv_(grad, avg)
            _fma_(p, buf, _neg(lr))
            return
        # Rows without momentum keep the buffer untouched and step by the plain ratio.
        buf.copy_(torch.where(moving, buf.mul(_v(mu)).addcdiv_(grad, avg), buf))
        plain = p.clone()
        _addcdiv_(plain, grad, avg, _neg(lr))
        _fma_(p, buf, _neg(lr))
        p.copy_(torch.where(moving, p, plain))


def _bias_corrections(beta1: Hyper, beta2: Hyper, t: float) -> tuple[Hyper, Hyper]:
    return rowwise(lambda b: 1 - b ** t, beta1), rowwise(lambda b: 1 - b ** t, beta2)


class Adam(VectorOptimizer):
    """torch.optim.Adam / AdamW (``decoupled``): m = lerp(m, g, 1-β1); v = β2·v + (1-β2)·g²;
    p ← p - lr/(1-β1ᵗ) · m/(√v/√(1-β2ᵗ) + ε) (AMSGrad: the running max of v)."""

    decoupled = False

    def step(self, p, grad, lr):
        h = self.hyper
        beta1, beta2 = h["betas"]
        if "step" not in self.state:
            self.state["step"] = _Float32Counter()
        t = self.state["step"].tick()
        wd = h["weight_decay"]
        if self.decoupled:
            decays = _nonzero(wd)
            if decays is not False:
                factor = 1 - _v(lr) * _v(wd)
                if decays is True:
                    p.mul_(factor)
                else:
                    p.copy_(torch.where(decays, p * factor, p))
        else:
            grad = _coupled(grad, p, wd)
        exp_avg, exp_avg_sq = self._zeros("exp_avg", p), self._zeros("exp_avg_sq", p)
        _lerp_(exp_avg, grad, rowwise(lambda b: 1 - b, beta1, key="1-"))
        _addcmul_(exp_avg_sq.mul_(_v(beta2)), grad, grad, rowwise(lambda b: 1 - b, beta2, key="1-"))
        bc1, bc2 = _bias_corrections(beta1, beta2, t)
        step_size = _v(lr) / _v(bc1)
        bc2_sqrt = rowwise(lambda b: b ** 0.5, bc2)
        if h["amsgrad"]:
            max_sq = self._zeros("max_exp_avg_sq", p)
            torch.maximum(max_sq, exp_avg_sq, out=max_sq)
            denom = (max_sq.sqrt() / _v(bc2_sqrt)).add_(_v(h["eps"]))
        else:
            denom = (exp_avg_sq.sqrt() / _v(bc2_sqrt)).add_(_v(h["eps"]))
        _addcdiv_(p, exp_avg, denom, -step_size)


class AdamW(Adam):
    """torch.optim.AdamW: p ← p·(1 - lr·λ), then the Adam step."""

    decoupled = True


class NAdam(VectorOptimizer):
    """torch.optim.NAdam: μₜ = β1(1 - ½·0.96^(tψ)); m, v as Adam;
    p ← p - lr(1-μₜ)/(1-Πμ) · g/d - lr·μₜ₊₁/(1-Πμ·μₜ₊₁) · m/d with d = √(v/(1-β2ᵗ)) + ε."""

    def step(self, p, grad, lr):
        h = self.hyper
        beta1, beta2 = h["betas"]
        psi = h["momentum_decay"]
        if "step" not in self.state:
            self.state["step"] = _Float32Counter()
            self.state["mu_product"] = rowwise(lambda b: 1.0, beta1)  # torch: a float32 0-d tensor of 1
        t = self.state["step"].tick()
        bc2 = rowwise(lambda b: 1 - b ** t, beta2)
        grad = _coupled(grad, p, h["weight_decay"])
        mu = rowwise(lambda b, d: b * (1.0 - 0.5 * (0.96 ** (t * d))), beta1, psi)
        mu_next = rowwise(lambda b, d: b * (1.0 - 0.5 * (0.96 ** ((t + 1) * d))), beta1, psi)
        # mu_product *= mu on a float32 scalar tensor (torch's scalar dtype): float32 arithmetic.
        mu_product = rowwise(lambda a, b: float(np.float32(a) * np.float32(b)), self.state["mu_product"], mu)
        self.state["mu_product"] = mu_product
        exp_avg, exp_avg_sq = self._zeros("exp_avg", p), self._zeros("exp_avg_sq", p)
        _lerp_(exp_avg, grad, rowwise(lambda b: 1 - b, beta1, key="1-"))
        _addcmul_(exp_avg_sq.mul_(_v(beta2)), grad, grad, rowwise(lambda b: 1 - b, beta2, key="1-"))
        denom = exp_avg_sq.div(_v(bc2)).sqrt()
        mu_product_next = _v(mu_product) * _v(mu_next)
        denom.add_(_v(h["eps"]))
        lr_v = _v(lr)
        _addcdiv_(p, grad, denom, -lr_v * (1.0 - _v(mu)) / (1.0 - _v(mu_product)))
        _addcdiv_(p, exp_avg, denom, (-lr_v * _v(mu_next)) / (1.0 - mu_product_next))


class RAdam(VectorOptimizer):
    """torch.optim.RAdam: m, v as Adam; ρₜ = ρ∞ - 2tβ2ᵗ/(1-β2ᵗ); p ← p - lr·m̂·r·√(1-β2ᵗ)/(√v + ε)
    once ρₜ > 5 (r the rectification), p ← p - lr·m̂ before."""

    def step(self, p, grad, lr):
        h = self.hyper
        beta1, beta2 = h["betas"]
        if "step" not in self.state:
            self.state["step"] = _Float32Counter()
        t = self.state["step"].tick()
        grad = _coupled(grad, p, h["weight_decay"])
        exp_avg, exp_avg_sq = self._zeros("exp_avg", p), self._zeros("exp_avg_sq", p)
        _lerp_(exp_avg, grad, rowwise(lambda b: 1 - b, beta1, key="1-"))
        _addcmul_(exp_avg_sq.mul_(_v(beta2)), grad, grad, rowwise(lambda b: 1 - b, beta2, key="1-"))
        bc1, bc2 = _bias_corrections(beta1, beta2, t)
        corrected = exp_avg / _v(bc1)

        def rho(b2: float, c2: float) -> float:
            rho_inf = 2 / (1 - b2) - 1
            return rho_inf - 2 * t * (b2 ** t) / c2

        def rect(b2: float, c2: float) -> float:
            rho_inf = 2 / (1 - b2) - 1
            rho_t = rho(b2, c2)
            if rho_t <= 5.0:
                return 0.0  # unused: those rows take the unrectified step
            return ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5

        rho_t = rowwise(rho, beta2, bc2)
        rectified = _test(rho_t, lambda r: r > 5.0)
        lr_v = _v(lr)

        def adaptive_step() -> Tensor:
            sq = exp_avg_sq.sqrt().add_(_v(h["eps"]))
            # torch: (bc2 ** 0.5) / tensor is tensor.reciprocal() * (bc2 ** 0.5)
            adaptive = sq.reciprocal() * _v(rowwise(lambda c: c ** 0.5, bc2))
            return corrected * lr_v * adaptive * _v(rowwise(rect, beta2, bc2))

        update = _select(rectified, adaptive_step, lambda: corrected * lr_v)
        p.add_(update, alpha=-1.0)


# --- the course variants (variants.py) -------------------------------------------------------------


class EMAMomentum(VectorOptimizer):
    """variants.EMAMomentum: m = β·m + (1-β)·g from m₀ = 0; p ← p - lr·m."""

    def step(self, p, grad, lr):
        h = self.hyper
        beta = h["beta"]
        grad = _coupled(grad, p, h["weight_decay"])
        m = self._zeros("momentum_buffer", p)
        _fma_(m.mul_(_v(beta)), grad, rowwise(lambda b: 1.0 - b, beta, key="1.0-"))
        _fma_(p, m, _neg(lr))


class VanillaMomentum(VectorOptimizer):
    """variants.VanillaMomentum: v = μ·v + lr·g from v₀ = 0; p ← p - v."""

    def step(self, p, grad, lr):
        h = self.hyper
        grad = _coupled(grad, p, h["weight_decay"])
        v = self._zeros("velocity", p)
        _fma_(v.mul_(_v(h["momentum"])), grad, lr)
        p.sub_(v)


def _moments(opt: VectorOptimizer, p: Tensor, grad: Tensor, beta1: Hyper, beta2: Hyper) -> tuple[Tensor, Tensor]:
    """variants._update_moments: m = β1·m + (1-β1)·g, s = β2·s + (1-β2)·g² from zero."""
    m, s = opt._zeros("exp_avg", p), opt._zeros("exp_avg_sq", p)
    _fma_(m.mul_(_v(beta1)), grad, rowwise(lambda b: 1.0 - b, beta1, key="1.0-"))
    _addcmul_(s.mul_(_v(beta2)), grad, grad, rowwise(lambda b: 1.0 - b, beta2, key="1.0-"))
    return m, s


class AdamNoBias(VectorOptimizer):
    """variants.AdamNoBias: m, s as Adam without bias correction; p ← p - lr·m/√(s + ε)."""

    def step(self, p, grad, lr):
        h = self.hyper
        beta1, beta2 = h["betas"]
        grad = _coupled(grad, p, h["weight_decay"])
        m, s = _moments(self, p, grad, beta1, beta2)
        _addcdiv_(p, m, s.add(_v(h["eps"])).sqrt_(), _neg(lr))


class AdamCentered(VectorOptimizer):
    """variants.AdamCentered: p ← p - lr·m/√(s - m² + ε), √(s + ε) where s - m² ≤ 0 (the guard)."""

    def step(self, p, grad, lr):
        h = self.hyper
        beta1, beta2 = h["betas"]
        grad = _coupled(grad, p, h["weight_decay"])
        m, s = _moments(self, p, grad, beta1, beta2)
        variance = s.sub(m * m)
        variance = torch.where(variance > 0, variance, s)
        _addcdiv_(p, m, variance.add_(_v(h["eps"])).sqrt_(), _neg(lr))


class AdamMinBias(VectorOptimizer):
    """variants.AdamMinBias: a = 1/min(t, N); m = (1-a_g)·m + a_g·g; s likewise with a_s and g²;
    p ← p - lr·m/(√s + ε)."""

    def step(self, p, grad, lr):
        h = self.hyper
        grad = _coupled(grad, p, h["weight_decay"])
        t = self.state["t"] = self.state.get("t", 0.0) + 1.0  # float64, as the variant's counter
        a_g = rowwise(lambda n: 1.0 / min(t, n), h["n_g"])
        a_s = rowwise(lambda n: 1.0 / min(t, n), h["n_s"])
        m, s = self._zeros("exp_avg", p), self._zeros("exp_avg_sq", p)
        _fma_(m.mul_(_v(rowwise(lambda a: 1.0 - a, a_g))), grad, a_g)
        _addcmul_(s.mul_(_v(rowwise(lambda a: 1.0 - a, a_s))), grad, grad, a_s)
        _addcdiv_(p, m, s.sqrt().add_(_v(h["eps"])), _neg(lr))


class SGLD(VectorOptimizer):
    """variants.SGLD: p ← p - lr·g + √(2·lr·T)·ξ; ξ comes from ``noise()``, drawn every step."""

    def step(self, p, grad, lr):
        h = self.hyper
        scale = rowwise(lambda a, temp: math.sqrt(2.0 * a * temp), lr, h["temperature"])
        grad = _coupled(grad, p, h["weight_decay"])
        noise = self.noise()
        _fma_(_fma_(p, grad, _neg(lr)), noise, scale)


class LARS(VectorOptimizer):
    """variants.LARS, per trajectory: local = trust·‖w‖/(‖g‖ + λ‖w‖ + ε) (1 where a norm is 0);
    v = μ·v + lr·local·(g + λw); p ← p - v."""

    EPS = 1e-9  # the variant's default (not a registry hyperparameter)

    def step(self, p, grad, lr):
        h = self.hyper
        wd = h["weight_decay"]
        w_norm, g_norm = _row_norm(p), _row_norm(grad)
        local = _v(h["trust"]) * w_norm / (g_norm + _v(wd) * w_norm + self.EPS)
        local = torch.where((w_norm == 0) | (g_norm == 0), torch.ones_like(local), local)
        v = self._zeros("momentum_buffer", p)
        update = _select(_nonzero(wd), lambda: _fma(grad, p, wd), lambda: grad.clone())
        _fma_(v.mul_(_v(h["momentum"])), update.mul_(local), lr)
        p.sub_(v)


class LAMB(VectorOptimizer):
    """variants.LAMB, per trajectory: r = m̂/(√v̂ + ε) + λw; p ← p - lr·(‖w‖/‖r‖)·r."""

    def step(self, p, grad, lr):
        h = self.hyper
        beta1, beta2 = h["betas"]
        wd = h["weight_decay"]
        t = self.state["t"] = self.state.get("t", 0.0) + 1.0
        m, v = self._zeros("exp_avg", p), self._zeros("exp_avg_sq", p)
        _fma_(m.mul_(_v(beta1)), grad, rowwise(lambda b: 1.0 - b, beta1, key="1.0-"))
        _addcmul_(v.mul_(_v(beta2)), grad, grad, rowwise(lambda b: 1.0 - b, beta2, key="1.0-"))
        m_hat = m / _v(rowwise(lambda b: 1.0 - b ** t, beta1))
        v_hat = v / _v(rowwise(lambda b: 1.0 - b ** t, beta2))
        r = m_hat.div_(v_hat.sqrt_().add_(_v(h["eps"])))
        r = _select(_nonzero(wd), lambda: _fma(r, p, wd), lambda: r)
        w_norm, r_norm = _row_norm(p), _row_norm(r)
        ratio = torch.where((w_norm == 0) | (r_norm == 0), torch.ones_like(w_norm), w_norm / r_norm)
        _fma_(p, r.mul_(ratio), _neg(lr))


class NormalizedGD(VectorOptimizer):
    """variants.NormalizedGD, per trajectory: p ← p - lr·g/‖g‖ (no step where g = 0)."""

    def step(self, p, grad, lr):
        grad = _coupled(grad, p, self.hyper["weight_decay"])
        norm = _row_norm(grad)
        scale = torch.where(norm == 0, torch.zeros_like(norm), 1.0 / norm)
        _fma_(p, grad * scale, _neg(lr))


VECTOR_OPTIMIZERS: dict[str, type[VectorOptimizer]] = {
    "sgd": SGD, "momentum": SGD, "nesterov": SGD, "adagrad": Adagrad, "rmsprop": RMSprop,
    "adam": Adam, "adamw": AdamW, "nadam": NAdam, "radam": RAdam,
    "ema-momentum": EMAMomentum, "vanilla-momentum": VanillaMomentum, "adam-nobias": AdamNoBias,
    "adam-centered": AdamCentered, "adam-minbias": AdamMinBias, "sgld": SGLD, "lars": LARS, "lamb": LAMB,
    "normalized-gd": NormalizedGD,
}


def make_vector_optimizer(name: str, hyper: dict[str, Any], fixed: dict[str, Any] | None = None, *,
                          noise: Callable[[], Tensor] | None = None) -> VectorOptimizer:
    """The vectorized twin of registry optimizer ``name`` with validated ``hyper`` (values may be
    Rows) and the registry's ``fixed`` torch arguments (momentum's nesterov=False, ...)."""
    cls = VECTOR_OPTIMIZERS[name]
    return cls({**hyper, **(fixed or {})}, noise=noise)


def vector_optimizer_for(spec: Any, hyper: dict[str, Any], *, noise: Callable[[], Tensor] | None = None,
                         columns: int | None = None) -> VectorOptimizer:
    """The registry optimizer's vectorized twin, or (an optimizer named by import path) the
    torch class itself behind the same interface."""
    if spec.name in VECTOR_OPTIMIZERS:
        return make_vector_optimizer(spec.name, hyper, spec.fixed, noise=noise)
    return TorchOptimizer(lambda params: spec.make(params, {k: v for k, v in hyper.items()}), hyper, columns)
