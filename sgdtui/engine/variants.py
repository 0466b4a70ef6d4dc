"""The course material's own optimizers, as ``torch.optim.Optimizer`` subclasses.

Written in torch's style (``torch/optim/sgd.py``, ``adam.py``) so they plug into everything
torch offers (param groups, ``state_dict``, ``lr_scheduler``):

* hyperparameters live in ``defaults`` (and so in every param group) and are validated in
  ``__init__`` with ``ValueError``;
* per-parameter state is created lazily on the first step (``self.state[p]``);
* ``step(closure=None)`` runs under ``torch.no_grad()`` and reads every hyperparameter from
  its group on every call, so a live change ``group["lr"] = x`` takes effect on the next step;
* each class writes its update rule out in its docstring.

Sources: course notes 000 (EMA momentum, vanilla momentum, Adam without bias correction,
centered Adam, min(t, N) bias correction), slides 002 (LARS, LAMB), blog post 004 (Langevin).

Rows never interact: every optimizer here is elementwise, except LARS and LAMB whose
layer-wise norms are taken per row when ``per_row=True`` (sgdtui steps N independent 2-D
trajectories as one (N, 2) tensor). A row that becomes NaN/inf therefore never changes the
numbers of any other row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

__all__ = [
    "EMAMomentum",
    "VanillaMomentum",
    "AdamNoBias",
    "AdamCentered",
    "AdamMinBias",
    "SGLD",
    "LARS",
    "LAMB",
    "NormalizedGD",
    "VARIANTS",
]

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


def _require(owner: str, name: str, value: Any, ok: bool, rule: str) -> None:
    """Raise a one-line ValueError naming the optimizer and the offending hyperparameter."""
    if not ok:
        raise ValueError(f"{owner}: invalid {name}={value!r} ({rule})")


def _is_real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_nonneg(owner: str, name: str, value: Any) -> None:
    _require(owner, name, value, _is_real(value) and value >= 0.0, "must be a finite number >= 0")


def _check_unit_interval(owner: str, name: str, value: Any) -> None:
    _require(owner, name, value, _is_real(value) and 0.0 <= value < 1.0, "must be in [0, 1)")


def _check_betas(owner: str, betas: Any) -> None:
    ok = isinstance(betas, (tuple, list)) and len(betas) == 2
    _require(owner, "betas", betas, ok, "must be a pair (beta1, beta2)")
    _check_unit_interval(owner, "betas[0]", betas[0])
    _check_unit_interval(owner, "betas[1]", betas[1])


def _grad_of(owner: str, p: Tensor) -> Tensor:
    if p.grad.is_sparse:
        raise RuntimeError(f"{owner} does not support sparse gradients")
    return p.grad


def _coupled_grad(owner: str, p: Tensor, weight_decay: float) -> Tensor:
    """g <- g + wd * p (coupled L2), without touching p.grad."""
    grad = _grad_of(owner, p)
    return grad if weight_decay == 0 else grad.add(p, alpha=weight_decay)


def _layer_norm(t: Tensor, per_row: bool) -> Tensor:
    """The "layer" norm: per row (shape (N, 1)) for a 2-D tensor when per_row, else a scalar."""
    if per_row and t.dim() == 2:
        return torch.linalg.vector_norm(t, dim=1, keepdim=True)
    return torch.linalg.vector_norm(t)


def _new_step_counter() -> Tensor:
    # float64 counts exactly to 2**53 steps; the key "step" is kept as-is by load_state_dict.
    return torch.tensor(0.0, dtype=torch.float64)


def _update_moments(state: dict, p: Tensor, grad: Tensor, beta1: float, beta2: float) -> tuple[Tensor, Tensor]:
    """The EMAs m = b1 m + (1-b1) g and s = b2 s + (1-b2) g^2 from m0 = s0 = 0, in place."""
    if len(state) == 0:
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    m, s = state["exp_avg"], state["exp_avg_sq"]
    m.mul_(beta1).add_(grad, alpha=1.0 - beta1)
    s.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
    return m, s


def _run_closure(closure: Callable[[], Any] | None) -> Any:
    if closure is None:
        return None
    with torch.enable_grad():
        return closure()


class EMAMomentum(Optimizer):
    r"""EMA momentum (course notes 000, "EMA Momentum").

    .. math::
        m_0 = 0, \quad
        m_t = \beta m_{t-1} + (1 - \beta)\, g_t, \quad
        p_{t+1} = p_t - \eta\, m_t

    with ``g_t = grad + weight_decay * p`` (coupled L2). The first step moves by
    ``lr * (1 - beta) * g``. While lr is constant this equals
    ``torch.optim.SGD(momentum=beta, dampening=0, lr=(1 - beta) * lr)``; it is *not*
    ``SGD(momentum=beta, dampening=beta)``, whose first buffer is the raw first gradient.
    A single gradient's total influence is lr for every beta (temperature independent of N).
    """

    def __init__(self, params: ParamsT, lr: float, beta: float = 0.9, weight_decay: float = 0.0) -> None:
        _check_nonneg("EMAMomentum", "lr", lr)
        _check_unit_interval("EMAMomentum", "beta", beta)
        _check_nonneg("EMAMomentum", "weight_decay", weight_decay)
        super().__init__(params, {"lr": lr, "beta": beta, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; ``closure`` re-evaluates the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, beta, wd = group["lr"], group["beta"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = _coupled_grad("EMAMomentum", p, wd)
                state = self.state[p]
                if len(state) == 0:
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                m = state["momentum_buffer"]
                m.mul_(beta).add_(grad, alpha=1.0 - beta)
                p.add_(m, alpha=-lr)
        return loss


class VanillaMomentum(Optimizer):
    r"""Vanilla (velocity) momentum (course notes 000, "Vanilla SGD Momentum Parameterization").

    .. math::
        v_0 = 0, \quad
        v_t = \mu v_{t-1} + \eta_t\, g_t, \quad
        p_{t+1} = p_t - v_t

    with ``g_t = grad + weight_decay * p``. The learning rate sits *inside* the velocity
    buffer, so a change of lr only scales new gradients. torch's
    ``SGD(momentum=mu)`` (``buf = mu*buf + g; p -= lr*buf``) agrees with this only while lr
    is constant; under a schedule they differ. The notes pair it with ``eta = (1 - mu) B eta0``.
    """

    def __init__(self, params: ParamsT, lr: float, momentum: float = 0.9, weight_decay: float = 0.0) -> None:
        _check_nonneg("VanillaMomentum", "lr", lr)
        _check_unit_interval("VanillaMomentum", "momentum", momentum)
        _check_nonneg("VanillaMomentum", "weight_decay", weight_decay)
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; ``closure`` re-evaluates the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = _coupled_grad("VanillaMomentum", p, wd)
                state = self.state[p]
                if len(state) == 0:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                v = state["velocity"]
                v.mul_(mu).add_(grad, alpha=lr)
                p.sub_(v)
        return loss


class AdamNoBias(Optimizer):
    r"""Adam without bias correction (course notes 000, "Adam (Without Bias Correction)").

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        s_t = \beta_2 s_{t-1} + (1 - \beta_2) g_t^2, \quad
        p_{t+1} = p_t - \eta\, \frac{m_t}{\sqrt{s_t + \epsilon}}

    with ``m_0 = s_0 = 0`` and ``g_t = grad + weight_decay * p``. As in the notes, eps is
    *inside* the square root (torch's Adam puts it outside). ``beta = 1 - 1/N``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        _check_nonneg("AdamNoBias", "lr", lr)
        _check_betas("AdamNoBias", betas)
        _check_nonneg("AdamNoBias", "eps", eps)
        _check_nonneg("AdamNoBias", "weight_decay", weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; ``closure`` re-evaluates the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = _coupled_grad("AdamNoBias", p, wd)
                m, s = _update_moments(self.state[p], p, grad, beta1, beta2)
                p.addcdiv_(m, s.add(eps).sqrt_(), value=-lr)
        return loss


class AdamCentered(Optimizer):
    r"""Centered Adam (course notes 000, "Adam (Centered)").

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        s_t = \beta_2 s_{t-1} + (1 - \beta_2) g_t^2, \quad
        p_{t+1} = p_t - \eta\, \frac{m_t}{d_t}, \quad
        d_t = \begin{cases} \sqrt{s_t - m_t^2 + \epsilon} & s_t - m_t^2 > 0 \\
                            \sqrt{s_t + \epsilon} & \text{otherwise (the guard)} \end{cases}

    with ``m_0 = s_0 = 0`` and ``g_t = grad + weight_decay * p``; ``s - m^2`` estimates the
    gradient-noise variance. The notes average both moments over the same window N_s, so the
    defaults are ``betas = (0.99, 0.99)`` (N = 100): with ``beta1 == beta2`` the estimate is >= 0
    (Cauchy-Schwarz) and dips to 0 or below only by rounding. With ``beta1 != beta2`` it is
    genuinely negative whenever the gradient noise is small (for a constant gradient
    ``s - m^2 = ((1 - beta2^t) - (1 - beta1^t)^2) g^2``, below 0 at every step for (0.9, 0.999)),
    and a clamp at 0 would step by ``lr * m / sqrt(eps)``, ~3000 lr. Where no variance is
    measured the guard uses the uncentered denominator instead (adam-nobias's step). On a
    noise-free gradient the centered variance still shrinks like beta^t with one window, so the
    step grows: the notes' "low noise -> larger learning rate", taken literally.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.99, 0.99),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        _check_nonneg("AdamCentered", "lr", lr)
        _check_betas("AdamCentered", betas)
        # The clamped variance is often exactly 0, so eps is the only guard against m/0.
        _require("AdamCentered", "eps", eps, _is_real(eps) and eps > 0.0, "must be a finite number > 0")
        _check_nonneg("AdamCentered", "weight_decay", weight_decay)
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; ``closure`` re-evaluates the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = _coupled_grad("AdamCentered", p, wd)
                m, s = _update_moments(self.state[p], p, grad, beta1, beta2)
                # Separate multiply and subtract (no fused addcmul): s - m^2 cancels, and a fused
                # op would expose g^2's rounding error as a spurious variance (then / sqrt(eps)).
                variance = s.sub(m * m)
                variance = torch.where(variance > 0, variance, s)  # the guard: no variance seen
                p.addcdiv_(m, variance.add_(eps).sqrt_(), value=-lr)
        return loss


class AdamMinBias(Optimizer):
    r"""Adam with the notes' min(t, N) bias correction (course notes 000, "Bias Correction").

    .. math::
        a_g = \frac{1}{\min(t, N_g)}, \quad a_s = \frac{1}{\min(t, N_s)}, \\
        m_t = (1 - a_g)\, m_{t-1} + a_g\, g_t, \quad
        s_t = (1 - a_s)\, s_{t-1} + a_s\, g_t^2, \quad
        p_{t+1} = p_t - \eta\, \frac{m_t}{\sqrt{s_t} + \epsilon}

    with t counting steps from 1 (per parameter) and ``g_t = grad + weight_decay * p``.
    For t <= N the average is the exact mean of the gradients so far (no bias toward the
    zero start); afterwards it is an EMA with ``beta = 1 - 1/N``. The first step is the
    sign-like ``lr * g / (|g| + eps)``.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        n_g: float = 10,
        n_s: float = 1000,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        _check_nonneg("AdamMinBias", "lr", lr)
        _require("AdamMinBias", "n_g", n_g, _is_real(n_g) and n_g >= 1.0, "must be a finite number >= 1")
        _require("AdamMinBias", "n_s", n_s, _is_real(n_s) and n_s >= 1.0, "must be a finite number >= 1")
        _check_nonneg("AdamMinBias", "eps", eps)
        _check_nonneg("AdamMinBias", "weight_decay", weight_decay)
        defaults = {"lr": lr, "n_g": n_g, "n_s": n_s, "eps": eps, "weight_decay": weight_decay}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; ``closure`` re-evaluates the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, n_g, n_s, eps, wd = group["lr"], group["n_g"], group["n_s"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = _coupled_grad("AdamMinBias", p, wd)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _new_step_counter()
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"].item()
                a_g = 1.0 / min(t, n_g)
                a_s = 1.0 / min(t, n_s)
                m, s = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(1.0 - a_g).add_(grad, alpha=a_g)
                s.mul_(1.0 - a_s).addcmul_(grad, grad, value=a_s)
                p.addcdiv_(m, s.sqrt().add_(eps), value=-lr)
        return loss


class SGLD(Optimizer):
    r"""Stochastic gradient Langevin dynamics (blog post 004: SGD as annealing).

    .. math::
        p_{t+1} = p_t - \eta\, g_t + \sqrt{2 \eta T}\; \xi_t, \qquad \xi_t \sim N(0, I)

    with ``g_t = grad + weight_decay * p``. Its stationary density is proportional to
    ``exp(-L(p) / T)``. The noise comes from the ``generator`` passed in (a
    ``torch.Generator``; ``None`` gives a fresh one seeded 0), never from the global RNG, so
    a given generator seed reproduces a run bit for bit on CPU. Noise is drawn on the
    generator's device, one tensor of ``p``'s shape per parameter in param-group order, then
    moved to ``p``'s device. ``state_dict()`` carries the generator's state as well.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        temperature: float = 0.01,
        weight_decay: float = 0.0,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        _check_nonneg("SGLD", "lr", lr)
        _check_nonneg("SGLD", "temperature", temperature)
        _check_nonneg("SGLD", "weight_decay", weight_decay)
        _require(
            "SGLD",
            "generator",
            generator,
            generator is None or isinstance(generator, torch.Generator),
            "must be a torch.Generator or None",
        )
        super().__init__(params, {"lr": lr, "temperature": temperature, "weight_decay": weight_decay})
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; ``closure`` re-evaluates the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, temperature, wd = group["lr"], group["temperature"], group["weight_decay"]
            noise_scale = math.sqrt(2.0 * lr * temperature)
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = _coupled_grad("SGLD", p, wd)
                # Always draw, even at T = 0, so a temperature change never shifts later noise.
                noise = torch.randn(p.shape, generator=self.generator, dtype=p.dtype, device=self.generator.device)
                p.add_(grad, alpha=-lr).add_(noise.to(p.device), alpha=noise_scale)
        return loss

    def state_dict(self) -> dict[str, Any]:
        """torch's state dict plus ``"generator_state"`` so a resumed run draws the same noise."""
        state = super().state_dict()
        state["generator_state"] = self.generator.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load torch's state dict and, when present, the generator's state."""
        state_dict = dict(state_dict)
        generator_state = state_dict.pop("generator_state", None)
        super().load_state_dict(state_dict)
        if generator_state is not None:
            self.generator.set_state(generator_state)


class LARS(Optimizer):
    r"""LARS: layer-wise adaptive rate scaling (slides 002, "Use Layer-wise Adaptive LR Scaling").

    The slides' rule is ``w <- w - eta * (||w|| / ||g||) * g`` per layer with g the stochastic
    gradient. This class implements the LARS paper's (You et al., 2017) generalisation, which
    reduces to the slides' rule exactly when ``momentum=0, weight_decay=0, trust=1`` (up to eps):

    .. math::
        \lambda = \tau\, \frac{\|w\|}{\|g\| + wd\, \|w\| + \epsilon}
            \quad (\lambda = 1 \text{ when } \|w\| = 0 \text{ or } \|g\| = 0), \\
        v_t = \mu v_{t-1} + \eta\, \lambda\, (g + wd\, w), \quad v_0 = 0, \quad
        w_{t+1} = w_t - v_t

    Where the slides and the paper differ we follow the slides: the default trust coefficient
    is ``trust = 1.0`` (the slides' ratio ``||w|| / ||g||`` has none; the paper uses 0.001 with
    a correspondingly larger lr). The norms are taken over the whole parameter tensor (one
    "layer"), or per row of a 2-D parameter when ``per_row=True``: sgdtui steps N independent
    2-D trajectories as one (N, 2) tensor, and each row is then its own layer. The weight
    decay is LARS's own (inside the trust ratio), not an extra coupled L2 term.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust: float = 1.0,
        eps: float = 1e-9,
        *,
        per_row: bool = False,
    ) -> None:
        _check_nonneg("LARS", "lr", lr)
        _check_unit_interval("LARS", "momentum", momentum)
        _check_nonneg("LARS", "weight_decay", weight_decay)
        _require("LARS", "trust", trust, _is_real(trust) and trust > 0.0, "must be a finite number > 0")
        _check_nonneg("LARS", "eps", eps)
        _require("LARS", "per_row", per_row, isinstance(per_row, bool), "must be True or False")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust": trust,
            "eps": eps,
            "per_row": per_row,
        }
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; ``closure`` re-evaluates the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            trust, eps, per_row = group["trust"], group["eps"], group["per_row"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = _grad_of("LARS", p)
                w_norm = _layer_norm(p, per_row)
                g_norm = _layer_norm(grad, per_row)
                local = trust * w_norm / (g_norm + wd * w_norm + eps)
                # Elementwise fallback (no data-dependent branch), so a NaN row stays NaN alone.
                local = torch.where((w_norm == 0) | (g_norm == 0), torch.ones_like(local), local)
                state = self.state[p]
                if len(state) == 0:
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                v = state["momentum_buffer"]
                update = grad.add(p, alpha=wd) if wd != 0 else grad.clone()
                v.mul_(mu).add_(update.mul_(local), alpha=lr)
                p.sub_(v)
        return loss


class NormalizedGD(Optimizer):
    r"""Normalized gradient descent (the course tutorial's linear-regression figure, 001):

    .. math::
        p_{t+1} = p_t - \eta\, \frac{g_t}{\|g_t\|} \quad (p_{t+1} = p_t \text{ where } g_t = 0)

    with ``g_t = grad + weight_decay * p``. Every step has length lr whatever the gradient's size,
    so the iterate never settles: it hops around the minimum at distance ~ lr. The norm is taken
    over the whole parameter, or per row of a 2-D parameter when ``per_row=True`` (each of
    sgdtui's stacked 2-D trajectories normalizes its own gradient).
    """

    def __init__(self, params: ParamsT, lr: float, weight_decay: float = 0.0, *, per_row: bool = False) -> None:
        _check_nonneg("NormalizedGD", "lr", lr)
        _check_nonneg("NormalizedGD", "weight_decay", weight_decay)
        _require("NormalizedGD", "per_row", per_row, isinstance(per_row, bool), "must be True or False")
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "per_row": per_row})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; ``closure`` re-evaluates the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, wd, per_row = group["lr"], group["weight_decay"], group["per_row"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = _coupled_grad("NormalizedGD", p, wd)
                norm = _layer_norm(grad, per_row)
                # A zero gradient takes no step (0/0 would be NaN); a NaN norm stays NaN.
                scale = torch.where(norm == 0, torch.zeros_like(norm), 1.0 / norm)
                p.add_(grad * scale, alpha=-lr)
        return loss


class LAMB(Optimizer):
    r"""LAMB: layer-wise adaptive moments (slides 002: "LAMB: g is the Adam update").

    .. math::
        m_t = \beta_1 m_{t-1} + (1 - \beta_1) g_t, \quad
        v_t = \beta_2 v_{t-1} + (1 - \beta_2) g_t^2, \quad
        \hat m_t = \frac{m_t}{1 - \beta_1^t}, \quad \hat v_t = \frac{v_t}{1 - \beta_2^t}, \\
        r_t = \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + wd\, w_t, \quad
        \rho = \frac{\|w_t\|}{\|r_t\|} \quad (\rho = 1 \text{ when either norm is } 0), \quad
        w_{t+1} = w_t - \eta\, \rho\, r_t

    This is the slides' rule ``w <- w - eta * (||w|| / ||g||) * g`` with g the (bias-corrected)
    Adam update, plus the LAMB paper's decoupled weight decay inside r; the paper's optional
    clipping function phi(||w||) is the identity here, as on the slides. Norms are over the
    whole parameter tensor, or per row of a 2-D parameter when ``per_row=True`` (each of the
    N trajectories in an (N, 2) tensor is its own layer). The weight decay is LAMB's own
    (decoupled, inside r), not a coupled L2 term on g.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        *,
        per_row: bool = False,
    ) -> None:
        _check_nonneg("LAMB", "lr", lr)
        _check_betas("LAMB", betas)
        _check_nonneg("LAMB", "eps", eps)
        _check_nonneg("LAMB", "weight_decay", weight_decay)
        _require("LAMB", "per_row", per_row, isinstance(per_row, bool), "must be True or False")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "per_row": per_row}
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Perform a single optimization step; ``closure`` re-evaluates the loss."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            wd, per_row = group["weight_decay"], group["per_row"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = _grad_of("LAMB", p)
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = _new_step_counter()
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"].item()
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(grad, alpha=1.0 - beta1)
                v.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
                m_hat = m / (1.0 - beta1**t)
                v_hat = v / (1.0 - beta2**t)
                r = m_hat.div_(v_hat.sqrt_().add_(eps))
                if wd != 0:
                    r.add_(p, alpha=wd)
                w_norm = _layer_norm(p, per_row)
                r_norm = _layer_norm(r, per_row)
                ratio = torch.where((w_norm == 0) | (r_norm == 0), torch.ones_like(w_norm), w_norm / r_norm)
                p.sub_(r.mul_(ratio), alpha=lr)
        return loss


VARIANTS: dict[str, type[Optimizer]] = {
    "ema-momentum": EMAMomentum,
    "vanilla-momentum": VanillaMomentum,
    "adam-nobias": AdamNoBias,
    "adam-centered": AdamCentered,
    "adam-minbias": AdamMinBias,
    "sgld": SGLD,
    "lars": LARS,
    "lamb": LAMB,
    "normalized-gd": NormalizedGD,
}
