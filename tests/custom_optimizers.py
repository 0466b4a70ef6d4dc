"""Optimizers defined outside sgdtui, for the tests of optimizers by import path
(``optimizer = "tests.custom_optimizers:SignMomentum"``)."""

from __future__ import annotations

import torch
from torch.optim import Optimizer


class SignMomentum(Optimizer):
    """Sign of an EMA of the gradient (signSGD with momentum).

    m = beta*m + (1-beta)*(g + weight_decay*p); p -= lr * sign(m) (every step when ``always``,
    else only once ``warmup`` steps are done).
    """

    def __init__(self, params, lr: float = 0.01, beta: float = 0.9, weight_decay: float = 0.0,
                 warmup: int = 0, always: bool = True, eps: float = 1e-12, label: str = "sign"):
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"invalid beta {beta}")
        if warmup > 50:
            raise ValueError(f"warmup must be at most 50 steps, got {warmup}")
        super().__init__(params, dict(lr=lr, beta=beta, weight_decay=weight_decay, warmup=warmup,
                                      always=always, eps=eps, label=label))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["m"] = torch.zeros_like(p)
                    state["t"] = 0
                state["t"] += 1
                g = p.grad + group["weight_decay"] * p
                state["m"].mul_(group["beta"]).add_(g, alpha=1 - group["beta"])
                if group["always"] or state["t"] > group["warmup"]:
                    p.add_(torch.sign(state["m"]), alpha=-group["lr"])
        return None


class NeedsClosure(Optimizer):
    """An optimizer that, like LBFGS, cannot step without a closure."""

    def __init__(self, params, lr: float = 0.1):
        super().__init__(params, dict(lr=lr))

    def step(self, closure):
        return closure()


class NoLearningRate(Optimizer):
    """An optimizer without an lr in its defaults."""

    def __init__(self, params, scale: float = 1.0):
        super().__init__(params, dict(scale=scale))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(p.grad, alpha=-group["scale"])


class NotAnOptimizer:
    """A class, but no torch.optim.Optimizer."""

    def __init__(self, params, lr: float = 0.1):
        self.params = params


raise_on_build = SignMomentum  # an alias: import paths may name any attribute that is an Optimizer class
