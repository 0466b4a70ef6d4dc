"""The optimizer registry: user-facing names, hyperparameters with ranges and key steps, factories.

Every factory returns a ``torch.optim.Optimizer`` over the given parameters; on a surface that
is one (N, 2) tensor, so N trajectories step as one tensor. Where torch has the exact algorithm
we use torch.optim; the course material's own algorithms live in ``variants.py``.

Default learning rates are the playground's (chosen so a race on a 2-D surface moves in a few
hundred steps); every other hyperparameter keeps torch's default.

Any other ``torch.optim.Optimizer`` subclass joins by import path, ``"package.module:Class"``
(``imported_optimizer``): its hyperparameters are read from the ``defaults`` it builds with, and
the keys' steps are guessed from their names, so scripts, keys and validation treat it like a
registry entry. ``SGDTUI_NO_IMPORTS=1`` switches import paths off (``sgdtui serve`` does, so a
browser cannot make the server import code).
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
import re
import sys
from dataclasses import dataclass, field, replace
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
EPS = _log("eps", 1e-8, 1e3, "ε added to the denominator for stability (large: Adam tends to SGD with lr/ε)")
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
    imported: bool = False  # named by import path ("package.module:Class"), not in OPTIMIZERS

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
        if self.imported and out != self.defaults():
            _check_constructs(self, out)  # the class's own checks, so a script fails at its line
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


TORCH_EXTRA = {"foreach": False}  # what _torch adds to every torch.optim class's arguments


def _torch(cls: type[torch.optim.Optimizer]) -> Callable[..., torch.optim.Optimizer]:
    def make(params, **kwargs):
        # foreach=False: a single small tensor per optimizer, the per-tensor path is the fastest.
        return cls(params, **TORCH_EXTRA, **kwargs)

    make.optimizer_class = cls  # read by optimizer_class (the torch export names the class)
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
        "m, s as Adam without bias correction (one window); p -= lr·m/√(s - m² + ε) (√(s + ε) where s ≤ m²)",
        (LR(0.1), replace(BETAS, default=(0.99, 0.99), help="EMA decays of m and s: the notes use one window N for both"),
         EPS, WEIGHT_DECAY), variants.AdamCentered, decay_param="betas",
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
        "normalized-gd", "normalized gradient descent: steps of length lr along -g (course tutorial)",
        "p -= lr·g/‖g‖",
        (LR(0.5), WEIGHT_DECAY), variants.NormalizedGD, per_row_option=True,
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
    if isinstance(name, str) and ":" in name:
        return imported_optimizer(name)
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):  # TypeError: a list or table where a name belongs
        raise OptimizerConfigError(
            "optimizer",
            f"unknown optimizer {name!r}{did_you_mean(name, list(OPTIMIZERS))} (choose from {', '.join(OPTIMIZERS)},"
            " or give a torch.optim.Optimizer subclass as 'package.module:Class')",
        ) from None


def optimizer_class(spec: OptimizerSpec) -> tuple[type[torch.optim.Optimizer], dict[str, Any]]:
    """The torch.optim.Optimizer subclass an entry builds and the constructor arguments it adds to
    the hyperparameters (``fixed``, foreach=False for torch's own)."""
    cls = getattr(spec.factory, "optimizer_class", None)
    if cls is not None:
        return cls, {**TORCH_EXTRA, **spec.fixed}
    return spec.factory, dict(spec.fixed)


def set_hyper(optimizer: torch.optim.Optimizer, name: str, value: Any) -> None:
    """A live hyperparameter change, torch's way: write it into every param group."""
    for group in optimizer.param_groups:
        group[name] = value


# --- optimizers by import path ------------------------------------------------------------

IMPORT_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
NO_IMPORTS_ENV = "SGDTUI_NO_IMPORTS"
IMPORTED_LR = 1e-3  # the lr an imported class gets when its own signature has no default
# defaults keys that are implementation switches, not hyperparameters a race should steer
TECHNICAL = frozenset({"foreach", "capturable", "differentiable", "fused", "maximize"})
DECAY_NAME = re.compile(r"(momentum|beta\d*|alpha|rho|ema|ema_decay|decay_rate)")
_IMPORTED: dict[str, OptimizerSpec] = {}


def imported_optimizer(path: str) -> OptimizerSpec:
    """The registry entry of the ``torch.optim.Optimizer`` subclass at ``"package.module:Class"``;
    OptimizerConfigError (key ``optimizer``, one line) if it does not import or is not one."""
    if path in _IMPORTED:
        return _IMPORTED[path]
    if not IMPORT_PATH.fullmatch(path):
        raise OptimizerConfigError("optimizer", f"{path!r} is not an import path such as 'package.module:Class'")
    if os.environ.get(NO_IMPORTS_ENV) == "1":
        raise OptimizerConfigError("optimizer", f"optimizers by import path are switched off here ({path!r}); "
                                                f"choose from {', '.join(OPTIMIZERS)}")
    module_name, _, attribute = path.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())  # a module in the current folder, as `python -m` finds it (searched last)
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any failure of foreign code is the user's input error
        raise OptimizerConfigError("optimizer", f"cannot import {module_name!r} for {path!r} "
                                                f"({type(exc).__name__}: {_first_line(exc)})") from None
    for part in attribute.split("."):
        if not hasattr(target, part):
            raise OptimizerConfigError("optimizer", f"{module_name!r} has no {attribute!r}"
                                                    f"{did_you_mean(part, dir(target))}")
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, torch.optim.Optimizer)):
        kind = f"class {target.__name__}" if isinstance(target, type) else type(target).__name__
        raise OptimizerConfigError("optimizer", f"{path!r} is not a torch.optim.Optimizer subclass (it is a {kind})")
    spec = _introspect(path, target)
    _IMPORTED[path] = spec
    return spec


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] or type(exc).__name__


def _probe_parameter() -> torch.Tensor:
    return torch.zeros(2, dtype=torch.float64, requires_grad=True)


def _introspect(path: str, cls: type[torch.optim.Optimizer]) -> OptimizerSpec:
    """Hyperparameters from the ``defaults`` of one instance built on a probe tensor."""
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        signature = None
    accepts = set() if signature is None else {
        n for n, p in signature.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_any = signature is not None and any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    lr_param = signature.parameters.get("lr") if signature is not None else None
    probe_kwargs = {"lr": IMPORTED_LR} if lr_param is not None and lr_param.default is inspect.Parameter.empty else {}
    try:
        probe = _probe_parameter()
        optimizer = cls([probe], **probe_kwargs)
        defaults = dict(optimizer.defaults)
    except Exception as exc:  # noqa: BLE001
        raise OptimizerConfigError("optimizer", f"cannot build {path!r} with its default arguments"
                                                f" ({type(exc).__name__}: {_first_line(exc)})") from None
    try:  # a race steps without a closure: refuse what cannot (LBFGS) now, not at the first step
        probe.grad = torch.ones_like(probe)
        optimizer.step()
    except Exception as exc:  # noqa: BLE001
        raise OptimizerConfigError("optimizer", f"{path!r} cannot take a plain step() on a gradient"
                                                f" ({type(exc).__name__}: {_first_line(exc)})") from None
    hyper: list[ParamSpec] = []
    for name, value in defaults.items():
        if name in TECHNICAL or not (name in accepts or takes_any):
            continue
        annotation = signature.parameters[name].annotation if signature and name in signature.parameters else ""
        spec = _guess_spec(name, value, floating="float" in str(annotation))
        if spec is not None:
            hyper.append(spec)
    names = [hp.name for hp in hyper]
    if "lr" not in names:
        raise OptimizerConfigError("optimizer", f"{path!r} has no numeric 'lr' in its defaults: every lane's lr"
                                                " is steered (and scheduled) through its param groups")
    hyper.sort(key=lambda hp: hp.name != "lr")  # lr first, as in the registry
    decays = [hp.name for hp in hyper if hp.step == "decay"]
    preferred = [n for n in ("momentum", "betas") if n in decays]
    doc = inspect.getdoc(cls) or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else f"{cls.__name__} from {cls.__module__}"
    return OptimizerSpec(
        path, summary, f"{cls.__qualname__}'s own update rule (see its documentation)", tuple(hyper), cls,
        decay_param=(preferred or decays or [None])[0], heavy_ball=issubclass(cls, torch.optim.SGD), imported=True,
    )


def _guess_spec(name: str, value: Any, floating: bool = False) -> ParamSpec | None:
    """A ParamSpec for one ``defaults`` entry, its key step guessed from the name: lr
    multiplicative, β-like decays in log(1 - β), weight decay and ε on a log scale from 0, counts
    by one. ``floating``: the signature says float (torch writes ``momentum: float = 0``). None
    for what a key cannot steer (None, strings, tensors, ...)."""
    help = "from the optimizer's defaults"
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool):
        return ParamSpec(name, value, bool, step="bool", help=help)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_real(v) for v in value):
        pair = tuple(float(v) for v in value)
        if all(0.0 <= v < 1.0 for v in pair):
            return ParamSpec(name, pair, "pair", 0.0, 1.0, high_open=True, step="decay", help=help)
        return None  # a pair without a known range: left at its default
    if not _real(value):
        return None
    if name == "lr":
        return LR(float(value)) if value > 0 else LR(IMPORTED_LR)
    floating = floating or "decay" in name or name.startswith("eps") or bool(DECAY_NAME.fullmatch(name))
    if isinstance(value, int) and not floating:
        return ParamSpec(name, value, int, 0 if value >= 0 else None, increment=1, help=help)
    value = float(value)
    if "weight_decay" in name and value >= 0:
        return _log(name, value, 1e3, help, first=1e-4)
    if DECAY_NAME.fullmatch(name) and 0.0 <= value < 1.0:
        return _decay(name, value, help)
    if name.startswith("eps") and 0.0 <= value <= 1.0:
        return _log(name, value, 1.0, help, first=1e-8)
    if value >= 0:
        return _log(name, value, 1e6, help, first=value or 1e-4)
    return ParamSpec(name, value, float, help=help)


def _real(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_constructs(spec: OptimizerSpec, hyper: dict[str, Any]) -> None:
    try:
        spec.factory([_probe_parameter()], **hyper)
    except Exception as exc:  # noqa: BLE001
        changed = [k for k, v in hyper.items() if v != spec.param(k).default]
        raise OptimizerConfigError(changed[0] if len(changed) == 1 else "optimizer",
                                   f"{spec.name} refused it ({type(exc).__name__}: {_first_line(exc)})") from None
