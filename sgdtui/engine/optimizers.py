"""The optimizer registry: user-facing names, hyperparameters with ranges and key steps, factories.

Every factory returns a ``torch.optim.Optimizer`` over the given parameters; on a surface that
is one (N, 2) tensor, so N trajectories step as one tensor. Where torch has the exact algorithm
we use torch.optim; the course material's own algorithms live in ``variants.py``.

Default learning rates are the playground's (chosen so a race on a 2-D surface moves in a few
hundred steps); every other hyperparameter keeps torch's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from sgdtui.engine import variants
from sgdtui.engine.checks import did_you_mean
from sgdtui.engine.params import KEY_FACTOR, ParamSpec, SettingError  # noqa: F401 - KEY_FACTOR re-exported

class OptimizerConfigError(SettingError):
    """Unknown optimizer or invalid hyperparameter; the key names it, the reason the valid choices."""


def LR(default: float) -> ParamSpec:
    return ParamSpec("lr", default, float, 0.0, 1e6, low_open=True, step="log",
                     help="learning rate η: the step size (and the temperature)")


def _decay(name: str, default: float, help: str) -> ParamSpec:
    return ParamSpec(name, default, float, 0.0, 1.0, high_open=True, step="decay", help=help)


def _log(name: str, default: float, high: float, help: str, **extra: Any) -> ParamSpec:
    return ParamSpec(name, default, float, 0.0, high, step="log", help=help, **extra)


def _flag(name: str, help: str) -> ParamSpec:
    return ParamSpec(name, False, bool, step="bool", help=help)


MOMENTUM = _decay("momentum", 0.9, "heavy-ball momentum μ: buf = μ·buf + g")
DAMPENING = ParamSpec("dampening", 0.0, float, 0.0, 1.0, help="torch SGD dampening: buf = μ·buf + (1-d)·g")
NESTEROV = _flag("nesterov", "Nesterov look-ahead momentum")
WEIGHT_DECAY = _log("weight_decay", 0.0, 1e3, "weight decay λ (L2 pull toward 0)", first=1e-4)
BETAS = ParamSpec("betas", (0.9, 0.999), "pair", 0.0, 1.0, high_open=True, step="decay",
                  help="EMA decays (β1 for the gradient, β2 for its square)")
EPS = _log("eps", 1e-8, 1.0, "ε added to the denominator for stability")
AMSGRAD = _flag("amsgrad", "keep the running max of the second moment")


@dataclass(frozen=True)
class OptimizerSpec:
    """A registry entry: how to build and steer one optimizer."""

    name: str
    description: str
    update_rule: str
    hyper: tuple[ParamSpec, ...]
    factory: Callable[..., torch.optim.Optimizer]
    decay_param: str | None = None  # the "β" the ] and [ keys move
    heavy_ball: bool = False  # lr multiplies a velocity that sums gradients: temperature ~ η/(1-μ)
    needs_generator: bool = False
    per_row_option: bool = False  # lars/lamb: treat each trajectory as a layer
    fixed: dict = field(default_factory=dict)  # torch arguments this name pins (momentum's nesterov=False ...)

    def param(self, name: str) -> ParamSpec:
        for hp in self.hyper:
            if hp.name == name:
                return hp
        raise OptimizerConfigError(
            name, f"optimizer '{self.name}' has no hyperparameter '{name}'{did_you_mean(name, self.param_names())}"
            f" (valid: {', '.join(self.param_names())})"
        )

    def param_names(self) -> list[str]:
        return [hp.name for hp in self.hyper]

    def defaults(self) -> dict[str, Any]:
        return {hp.name: hp.default for hp in self.hyper}

    def validate(self, hyper: dict[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``hyper``, each value checked; raises OptimizerConfigError
        naming the key."""
        out = self.defaults()
        for key, value in hyper.items():
            try:
                out[key] = self.param(key).validate(value)
            except SettingError as exc:
                raise OptimizerConfigError(exc.key, exc.reason) from None
        if self.name == "sgd" and out["nesterov"] and (out["momentum"] <= 0 or out["dampening"] != 0):
            raise OptimizerConfigError("nesterov", "needs momentum > 0 and dampening = 0")
        return out

    def make(
        self,
        params: list[torch.Tensor],
        hyper: dict[str, Any],
        *,
        generator: torch.Generator | None = None,
        per_row: bool = False,
    ) -> torch.optim.Optimizer:
        kwargs = {**self.validate(hyper), **self.fixed}
        if self.needs_generator:
            kwargs["generator"] = generator
        if self.per_row_option:
            kwargs["per_row"] = per_row
        return self.factory(params, **kwargs)

    def momentum_of(self, hyper: dict[str, Any]) -> float:
        """Heavy-ball momentum μ (0 for EMA-style or momentum-free optimizers).

        Used by the coupling rule η = (1-μ)·B·η₀ and by the temperature η/(B(1-μ)), both of
        which the course notes state for the heavy-ball (PyTorch/vanilla) parameterization.
        """
        if not self.heavy_ball:
            return 0.0
        return float(hyper.get("momentum", 0.0))

    def decay_value(self, hyper: dict[str, Any]) -> float | None:
        """The primary decay as a β in [0, 1) for display (n_g is shown as 1 - 1/n_g)."""
        if self.decay_param is None:
            return None
        value = hyper[self.decay_param]
        if isinstance(value, tuple):
            return value[0]
        if self.param(self.decay_param).step == "count":
            return 1.0 - 1.0 / value
        return float(value)


def _torch(cls: type[torch.optim.Optimizer]) -> Callable[..., torch.optim.Optimizer]:
    def make(params, **kwargs):
        # foreach=False: a single small tensor per optimizer, the per-tensor path is the fastest.
        return cls(params, foreach=False, **kwargs)

    return make


_SPECS = [
    OptimizerSpec(
        "sgd", "torch SGD (plain gradient descent unless momentum > 0)",
        "buf = μ·buf + (1-d)·g; p -= lr·buf  (buf = g when μ = 0)",
        (LR(0.1), _decay("momentum", 0.0, MOMENTUM.help),
         DAMPENING, NESTEROV, WEIGHT_DECAY),
        _torch(torch.optim.SGD), decay_param="momentum", heavy_ball=True,
    ),
    OptimizerSpec(
        "momentum", "torch SGD heavy-ball momentum (PyTorch parameterization)",
        "buf = μ·buf + g (buf₁ = g₁); p -= lr·buf", (LR(0.1), MOMENTUM, WEIGHT_DECAY),
        _torch(torch.optim.SGD), decay_param="momentum", heavy_ball=True,
        fixed={"nesterov": False, "dampening": 0.0},
    ),
    OptimizerSpec(
        "nesterov", "torch SGD with Nesterov momentum",
        "buf = μ·buf + g; p -= lr·(g + μ·buf)", (LR(0.1), MOMENTUM, WEIGHT_DECAY),
        _torch(torch.optim.SGD), decay_param="momentum", heavy_ball=True,
        fixed={"nesterov": True, "dampening": 0.0},
    ),
    OptimizerSpec(
        "adagrad", "torch Adagrad: per-coordinate steps shrink with the summed squared gradients",
        "s += g²; p -= lr/(1+(t-1)·lr_decay) · g/(√s + ε)",
        (LR(0.5), ParamSpec("lr_decay", 0.0, float, 0.0, 1.0, increment=1e-3, help="lr decay per step"),
         WEIGHT_DECAY, ParamSpec("initial_accumulator_value", 0.0, float, 0.0, 1e6, help="initial s"),
         _log("eps", 1e-10, 1.0, EPS.help)),
        _torch(torch.optim.Adagrad),
    ),
    OptimizerSpec(
        "rmsprop", "torch RMSprop: gradient divided by an EMA of its square",
        "s = α·s + (1-α)·g²; p -= lr·g/(√s + ε)",
        (LR(0.01), _decay("alpha", 0.99, "EMA decay α of the squared gradient"),
         EPS, WEIGHT_DECAY,
         _decay("momentum", 0.0,
                "heavy-ball momentum on the normalized step: buf = μ·buf + g/(√s + ε); p -= lr·buf"),
         _flag("centered", "subtract the squared mean gradient")),
        _torch(torch.optim.RMSprop), decay_param="alpha", heavy_ball=True,
    ),
    OptimizerSpec(
        "adam", "torch Adam: EMA momentum over an EMA of the squared gradient, bias-corrected",
        "m = β1·m + (1-β1)·g; v = β2·v + (1-β2)·g²; p -= lr·m̂/(√v̂ + ε)",
        (LR(0.1), BETAS, EPS, WEIGHT_DECAY, AMSGRAD), _torch(torch.optim.Adam), decay_param="betas",
    ),
    OptimizerSpec(
        "adamw", "torch AdamW: Adam with decoupled weight decay",
        "p -= lr·λ·p; then the Adam step", (LR(0.1), BETAS, EPS,
        _log("weight_decay", 1e-2, 1e3, WEIGHT_DECAY.help, first=1e-4), AMSGRAD),
        _torch(torch.optim.AdamW), decay_param="betas",
    ),
    OptimizerSpec(
        "nadam", "torch NAdam: Adam with Nesterov momentum",
        "Adam with a Nesterov look-ahead on m and a momentum-decay schedule",
        (LR(0.1), BETAS, EPS, WEIGHT_DECAY,
         _log("momentum_decay", 4e-3, 1.0, "ψ: momentum schedule decay")),
        _torch(torch.optim.NAdam), decay_param="betas",
    ),
    OptimizerSpec(
        "radam", "torch RAdam: Adam with a rectified variance warm-up",
        "Adam whose adaptive term is switched on once the variance estimate is tractable",
        (LR(0.1), BETAS, EPS, WEIGHT_DECAY), _torch(torch.optim.RAdam), decay_param="betas",
    ),
    OptimizerSpec(
        "ema-momentum", "EMA momentum (course notes): m₀ = 0, m = βm + (1-β)g",
        "m = β·m + (1-β)·g; p -= lr·m",
        (LR(0.1), _decay("beta", 0.9, "EMA decay β = 1 - 1/N"), WEIGHT_DECAY),
        variants.EMAMomentum, decay_param="beta",
    ),
    OptimizerSpec(
        "vanilla-momentum", "vanilla momentum (course notes): lr inside the velocity",
        "v = μ·v + lr·g; p -= v", (LR(0.1), MOMENTUM, WEIGHT_DECAY),
        variants.VanillaMomentum, decay_param="momentum", heavy_ball=True,
    ),
    OptimizerSpec(
        "adam-nobias", "Adam without bias correction (course notes)",
        "m = β1·m + (1-β1)·g; s = β2·s + (1-β2)·g²; p -= lr·m/√(s + ε)",
        (LR(0.1), BETAS, EPS, WEIGHT_DECAY), variants.AdamNoBias, decay_param="betas",
    ),
    OptimizerSpec(
        "adam-centered", "centered Adam (course notes): the variance s - m² in the denominator",
        "m, s as Adam without bias correction; p -= lr·m/√(s - m² + ε)",
        (LR(0.1), BETAS, EPS, WEIGHT_DECAY), variants.AdamCentered, decay_param="betas",
    ),
    OptimizerSpec(
        "adam-minbias", "Adam with EMA rate 1/min(t, N) instead of bias correction (course notes)",
        "m = (1-1/min(t,N_g))·m + g/min(t,N_g); s likewise with N_s; p -= lr·m/(√s + ε)",
        (LR(0.1), ParamSpec("n_g", 10.0, float, 1.0, 1e9, step="count", help="EMA length N_g of the gradient"),
         ParamSpec("n_s", 1000.0, float, 1.0, 1e9, step="count", help="EMA length N_s of the squared gradient"), EPS, WEIGHT_DECAY),
        variants.AdamMinBias, decay_param="n_g",
    ),
    OptimizerSpec(
        "sgld", "stochastic gradient Langevin dynamics: samples exp(-loss/T)",
        "p ← p - lr·g + √(2·lr·T)·ξ, ξ ~ N(0, I)",
        (LR(0.01), _log("temperature", 0.01, 1e3, "Langevin temperature T"), WEIGHT_DECAY),
        variants.SGLD, needs_generator=True,
    ),
    OptimizerSpec(
        "lars", "LARS: heavy-ball momentum with a layer-wise trust ratio ‖w‖/‖g‖",
        "local = trust·‖w‖/(‖g‖ + λ‖w‖); v = μ·v + lr·local·(g + λw); p -= v",
        (LR(1.0), MOMENTUM, WEIGHT_DECAY, _log("trust", 1.0, 1e3, "trust coefficient (1 = the slides' plain ratio)", low_open=True)),
        variants.LARS, decay_param="momentum", heavy_ball=True, per_row_option=True,
    ),
    OptimizerSpec(
        "lamb", "LAMB: the Adam step scaled by a layer-wise trust ratio ‖w‖/‖r‖",
        "r = m̂/(√v̂ + ε) + λw; p -= lr·(‖w‖/‖r‖)·r",
        (LR(0.1), BETAS, _log("eps", 1e-6, 1.0, EPS.help), WEIGHT_DECAY),
        variants.LAMB, decay_param="betas", per_row_option=True,
    ),
]

OPTIMIZERS: dict[str, OptimizerSpec] = {spec.name: spec for spec in _SPECS}


def get_optimizer(name: str) -> OptimizerSpec:
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):  # TypeError: a list or table where a name belongs
        raise OptimizerConfigError(
            "optimizer",
            f"unknown optimizer {name!r}{did_you_mean(name, list(OPTIMIZERS))} (choose from {', '.join(OPTIMIZERS)})",
        ) from None


def set_hyper(optimizer: torch.optim.Optimizer, name: str, value: Any) -> None:
    """A live hyperparameter change, torch's way: write it into every param group."""
    for group in optimizer.param_groups:
        group[name] = value
