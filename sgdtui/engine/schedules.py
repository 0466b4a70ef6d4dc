"""Learning-rate schedules and the rules that couple the learning rate to the batch size.

A schedule is a pure function of the step count (the optax habit): ``schedule.lr(t, base_lr)``
where ``t`` is the number of optimizer updates already taken, so ``t = 0`` gives the lr of the
first update. That is torch's ``lr_scheduler`` convention (the optimizer's lr at construction
is used for the first step, ``scheduler.step()`` is called after each ``optimizer.step()``),
so ``lr(t, base)`` equals the lr torch's scheduler holds after ``t`` calls to ``step()``.
``base_lr`` is the lane's lr setting, which the user steers live; schedules scale with it.

Parameter names follow ``torch.optim.lr_scheduler`` wherever torch has the schedule, and the
formulas are torch's closed forms (tests/test_schedules.py drives torch's schedulers as the
oracle). The one stateful schedule, ``plateau``, is fed the loss with ``observe(loss)``.

The coupling rules and the temperature readout come from the course notes (000: "The
learning rate as temperature"): see ``couple`` and ``temperature``.
"""

from __future__ import annotations

import bisect
import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

from sgdtui.engine.checks import did_you_mean
from sgdtui.engine.params import ParamSpec, SettingError

__all__ = [
    "COUPLINGS",
    "SCHEDULES",
    "SCHEDULE_CYCLE",
    "Constant",
    "Cosine",
    "CosineRestarts",
    "CouplingError",
    "Cyclic",
    "Exponential",
    "InverseTime",
    "MultiStep",
    "OneCycle",
    "Plateau",
    "RangeTest",
    "Schedule",
    "ScheduleError",
    "ScheduleSpec",
    "Step",
    "WarmupCosine",
    "couple",
    "make_schedule",
    "next_schedule_name",
    "temperature",
]


class ScheduleError(SettingError):
    """A schedule name or parameter is invalid (the key names it, the reason what is allowed)."""


class CouplingError(SettingError):
    """A coupling rule, batch size or momentum is invalid."""


# --------------------------------------------------------------------------------------------
# Parameters: each is written once, as a dataclass field whose metadata holds its ParamSpec;
# the registry (and so make_schedule, scripts and `sgdtui list schedules`) reads them from there.
# --------------------------------------------------------------------------------------------


def param(default: Any, kind: Any = float, **spec: Any) -> Any:
    """A schedule field: its default and the rest of its ParamSpec (range, help)."""
    return field(default=default, metadata={"spec": dict(kind=kind, none_ok=default is None, **spec)})


def _steps(default: int, help: str) -> Any:  # a count of updates
    return param(default, int, low=1, help=help)


def _positive(default: float | None, help: str) -> Any:
    return param(default, float, low=0.0, low_open=True, help=help)


def _gamma(default: float, help: str) -> Any:  # a decay factor in (0, 1]
    return param(default, float, low=0.0, high=1.0, low_open=True, help=help)


def _eta_min() -> Any:
    return param(0.0, float, low=0.0, help="lr at the bottom of the cosine (absolute)")


def schedule_params(cls: type) -> tuple[ParamSpec, ...]:
    """The ParamSpecs of a schedule class, in field order."""
    return tuple(ParamSpec(f.name, f.default, **f.metadata["spec"]) for f in fields(cls) if "spec" in f.metadata)


# --------------------------------------------------------------------------------------------
# The schedule interface and the shared machinery of the pure schedules.
# --------------------------------------------------------------------------------------------


@runtime_checkable
class Schedule(Protocol):
    """What a lane needs from a schedule."""

    name: str
    stateful: bool

    def lr(self, t: int, base_lr: float) -> float: ...

    def label(self) -> str: ...

    @property
    def params(self) -> dict[str, Any]: ...


def _check_step(t: int) -> None:
    if t < 0:
        raise ScheduleError("t", f"step t must be >= 0 (updates already taken), got {t}")


class _ValidatedParams:
    """Validates and normalises every dataclass field against the registry's ParamSpecs."""

    name: ClassVar[str]

    def _validate_fields(self) -> None:
        for spec in SCHEDULES[self.name].params:
            try:
                value = spec.validate(getattr(self, spec.name))
            except SettingError as exc:
                raise ScheduleError(exc.key, exc.reason) from None
            object.__setattr__(self, spec.name, value)
        self._check_together()

    def _check_together(self) -> None:
        """Constraints between parameters (overridden where there are any)."""

    @property
    def params(self) -> dict[str, Any]:
        """The effective parameters, so ``make_schedule(s.name, **s.params)`` round-trips."""
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            if not f.init:
                continue
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class _PureSchedule(_ValidatedParams):
    stateful: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self._validate_fields()


@dataclass(frozen=True)
class Constant(_PureSchedule):
    """lr(t) = base_lr."""

    name: ClassVar[str] = "constant"

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        return base_lr

    def label(self) -> str:
        return "constant"


@dataclass(frozen=True)
class Step(_PureSchedule):
    """Step decay, torch's StepLR: lr(t) = base_lr * gamma ** (t // step_size).

    The course tutorial's "step LR decay" (001) is step_size=100, gamma=0.5.
    """

    name: ClassVar[str] = "step"
    step_size: int = _steps(100, "updates between decays")
    gamma: float = _gamma(0.1, "decay factor per step")

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        return base_lr * self.gamma ** (t // self.step_size)

    def label(self) -> str:
        return f"step({self.step_size}, {self.gamma:g})"


@dataclass(frozen=True)
class MultiStep(_PureSchedule):
    """torch's MultiStepLR: lr(t) = base_lr * gamma ** (number of milestones <= t)."""

    name: ClassVar[str] = "multistep"
    milestones: tuple[int, ...] = param((100, 200), "list[int]", low=1, help="updates at which lr decays")
    gamma: float = _gamma(0.1, "decay factor per milestone")

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, t)

    def label(self) -> str:
        marks = ", ".join(str(m) for m in self.milestones)
        return f"multistep([{marks}], {self.gamma:g})"


@dataclass(frozen=True)
class Exponential(_PureSchedule):
    """torch's ExponentialLR: lr(t) = base_lr * gamma ** t."""

    name: ClassVar[str] = "exponential"
    gamma: float = _gamma(0.99, "decay factor per update")

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        return base_lr * self.gamma**t

    def label(self) -> str:
        return f"exp({self.gamma:g})"


@dataclass(frozen=True)
class InverseTime(_PureSchedule):
    """Inverse-time decay: lr(t) = base_lr / (1 + t / tau) ** power.

    The course slides (002) ask for eta_t -> 0 "usually with polynomial rate eta_t ~ t^-a";
    this is that rate (a = power) without the blow-up at t = 0. Same as torch's
    LambdaLR(lambda t: (1 + t / tau) ** -power).
    """

    name: ClassVar[str] = "inverse-time"
    tau: float = _positive(100.0, "updates until lr has halved (power 1)")
    power: float = param(1.0, low=0.0, high=10.0, help="decay exponent a in t^-a")

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        return base_lr / (1 + t / self.tau) ** self.power

    def label(self) -> str:
        return f"inverse-time(tau={self.tau:g}, p={self.power:g})"


def _cosine(base_lr: float, eta_min: float, t: float, period: float) -> float:
    # Operation order of torch's CosineAnnealingLR._get_closed_form_lr (bit-equal results).
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / period)) / 2


@dataclass(frozen=True)
class Cosine(_PureSchedule):
    """Cosine annealing, the closed form of torch's CosineAnnealingLR:
    lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2.

    It reaches eta_min at t = T_max; like torch's, it keeps following the cosine after that
    (back up to base_lr at 2*T_max). For restarts from the top use cosine-restarts.
    """

    name: ClassVar[str] = "cosine"
    T_max: int = _steps(300, "updates from top to bottom")
    eta_min: float = _eta_min()

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        return _cosine(base_lr, self.eta_min, t, self.T_max)

    def label(self) -> str:
        tail = f", min={self.eta_min:g}" if self.eta_min else ""
        return f"cosine(T={self.T_max}{tail})"


@dataclass(frozen=True)
class CosineRestarts(_PureSchedule):
    """SGDR (Loshchilov & Hutter 2016, the course tutorial's Fig. 26), torch's
    CosineAnnealingWarmRestarts: cosine from base_lr towards eta_min over T_i steps, then a
    restart at base_lr; T_0 is the first period and each next one is T_mult times longer.
    lr(t) = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2.
    """

    name: ClassVar[str] = "cosine-restarts"
    T_0: int = _steps(100, "updates in the first period")
    T_mult: int = param(1, int, low=1, high=16, help="each period is T_mult times longer")
    eta_min: float = _eta_min()

    def _position(self, t: int) -> tuple[int, int]:
        """(T_cur, T_i): steps since the last restart and the current period, in integers."""
        if self.T_mult == 1:
            return t % self.T_0, self.T_0
        t_cur, t_i = t, self.T_0
        while t_cur >= t_i:  # periods grow geometrically: O(log t) iterations
            t_cur -= t_i
            t_i *= self.T_mult
        return t_cur, t_i

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        t_cur, t_i = self._position(t)
        return _cosine(base_lr, self.eta_min, t_cur, t_i)

    def label(self) -> str:
        grow = f", x{self.T_mult}" if self.T_mult != 1 else ""
        return f"cosine-restarts(T0={self.T_0}{grow})"


@dataclass(frozen=True)
class WarmupCosine(_PureSchedule):
    """Linear warm-up then cosine decay (the modern transformer profile in the course notes
    000: "first quickly and smoothly ramps up ... then slowly and smoothly ramps it down").

    t < warmup_steps:  base_lr * (start_factor + (1 - start_factor) * t / warmup_steps)
    t >= warmup_steps: eta_min + (base_lr - eta_min) * (1 + cos(pi * s / S)) / 2,
                       s = t - warmup_steps, S = T_max - warmup_steps
    which is torch's SequentialLR([LinearLR(start_factor, total_iters=warmup_steps),
    CosineAnnealingLR(T_max=S, eta_min)], milestones=[warmup_steps]).
    """

    name: ClassVar[str] = "warmup-cosine"
    warmup_steps: int = param(30, int, low=0, help="updates of linear warm-up")
    T_max: int = _steps(300, "update at which the cosine reaches eta_min")
    eta_min: float = _eta_min()
    start_factor: float = param(0.01, low=0.0, high=1.0, low_open=True, help="lr at t=0 as a fraction of lr")

    def _check_together(self) -> None:
        if self.T_max <= self.warmup_steps:
            raise ScheduleError(
                "T_max", f"must be > warmup_steps (the cosine needs at "
                f"least one step), got T_max={self.T_max}, warmup_steps={self.warmup_steps}"
            )

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        if t < self.warmup_steps:
            # Operation order of torch's LinearLR closed form (end_factor = 1).
            ramp = (1.0 - self.start_factor) * t / self.warmup_steps
            return base_lr * (self.start_factor + ramp)
        decay_steps = self.T_max - self.warmup_steps
        return _cosine(base_lr, self.eta_min, t - self.warmup_steps, decay_steps)

    def label(self) -> str:
        return f"warmup-cosine({self.warmup_steps}, T={self.T_max})"


@dataclass(frozen=True)
class Cyclic(_PureSchedule):
    """Cyclical learning rates (Smith 2017), torch's CyclicLR with cycle_momentum=False and
    base_lr = the lane's lr: a triangle between base_lr and max_lr, step_size_up steps up and
    step_size_down (default: the same) steps down.

    cycle = floor(1 + t / (up + down)), x = 1 + t / (up + down) - cycle,
    scale = x / r if x <= r else (x - 1) / (r - 1) with r = up / (up + down),
    lr(t) = base_lr + (max_lr - base_lr) * scale * s, where s = 1 (triangular),
    1 / 2 ** (cycle - 1) (triangular2) or gamma ** t (exp_range).
    """

    name: ClassVar[str] = "cyclic"
    max_lr: float | None = _positive(None, "top of the cycle (none: 10 x lr)")
    step_size_up: int = _steps(50, "updates going up")
    step_size_down: int | None = param(None, int, low=1, help="updates going down (none: step_size_up)")
    mode: str = param("triangular", "choice", choices=("triangular", "triangular2", "exp_range"),
                      help="triangular2 halves the height each cycle; exp_range scales it by gamma^t")
    gamma: float = _gamma(1.0, "exp_range height factor per update")

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        max_lr = 10.0 * base_lr if self.max_lr is None else self.max_lr
        # Same arithmetic, in the same order, as torch's CyclicLR.get_lr.
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        total_size = up + down
        step_ratio = up / total_size
        cycle = math.floor(1 + t / total_size)
        x = 1.0 + t / total_size - cycle
        if x <= step_ratio:
            scale_factor = x / step_ratio
        else:
            scale_factor = (x - 1) / (step_ratio - 1)
        base_height = (max_lr - base_lr) * scale_factor
        if self.mode == "triangular":
            return base_lr + base_height * 1.0
        if self.mode == "triangular2":
            return base_lr + base_height * (1 / (2.0 ** (cycle - 1)))
        return base_lr + base_height * self.gamma**t  # exp_range scales by iteration

    def label(self) -> str:
        top = "10x" if self.max_lr is None else f"{self.max_lr:g}"
        return f"cyclic({self.mode}, {top}, up={self.step_size_up})"


@dataclass(frozen=True)
class OneCycle(_PureSchedule):
    """The 1cycle policy (Smith & Topin 2017, super-convergence), torch's OneCycleLR with
    cycle_momentum=False. From initial_lr = max_lr / div_factor up to max_lr over the first
    pct_start of total_steps, then down to min_lr = initial_lr / final_div_factor ("cos" or
    "linear" annealing); three_phase goes back to initial_lr first, then to min_lr.
    max_lr defaults to the lane's lr. torch raises past total_steps; this holds the final lr
    (the value at t = total_steps - 1, which is min_lr).
    """

    name: ClassVar[str] = "one-cycle"
    max_lr: float | None = _positive(None, "peak lr (none: the lane's lr)")
    total_steps: int = param(300, int, low=2, help="updates in the cycle")
    pct_start: float = param(0.3, low=0.0, high=1.0, low_open=True, high_open=True,
                             help="fraction of the cycle going up")
    anneal_strategy: str = param("cos", "choice", choices=("cos", "linear"), help="shape of each phase")
    div_factor: float = param(25.0, low=1.0, help="initial lr = max_lr / div_factor")
    final_div_factor: float = param(1e4, low=1.0, help="final lr = initial lr / final_div_factor")
    three_phase: bool = param(False, bool, help="come back down to the initial lr before the final decay")

    def _check_together(self) -> None:
        # Every phase needs a positive length, or torch's interpolation divides by zero.
        ends = self._phase_ends()
        starts = [0.0, *ends[:-1]]
        if any(end <= start for start, end in zip(starts, ends)):
            phases = "three phases" if self.three_phase else "both phases"
            raise ScheduleError(
                "pct_start", f"{self.pct_start:g} with total_steps="
                f"{self.total_steps} leaves a phase with no steps; {phases} need "
                f"pct_start*total_steps > 1 and more steps after the peak"
            )

    def _phase_ends(self) -> list[float]:
        if self.three_phase:
            return [
                float(self.pct_start * self.total_steps) - 1,
                float(2 * self.pct_start * self.total_steps) - 2,
                self.total_steps - 1,
            ]
        return [float(self.pct_start * self.total_steps) - 1, self.total_steps - 1]

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        max_lr = base_lr if self.max_lr is None else self.max_lr
        initial_lr = max_lr / self.div_factor
        min_lr = initial_lr / self.final_div_factor
        if self.three_phase:
            targets = [(initial_lr, max_lr), (max_lr, initial_lr), (initial_lr, min_lr)]
        else:
            targets = [(initial_lr, max_lr), (max_lr, min_lr)]
        step_num = min(t, self.total_steps - 1)
        ends = self._phase_ends()
        # The phase walk of torch's OneCycleLR.get_lr, kept step for step (bit-equal results).
        start_step = 0.0
        for i, end_step in enumerate(ends):
            if step_num <= end_step or i == len(ends) - 1:
                pct = (step_num - start_step) / (end_step - start_step)
                start, end = targets[i]
                if self.anneal_strategy == "cos":
                    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (end - start) * pct + start
            start_step = end_step
        raise AssertionError("unreachable: the last phase always matches")

    def label(self) -> str:
        top = "" if self.max_lr is None else f", max={self.max_lr:g}"
        return f"one-cycle(T={self.total_steps}{top})"


@dataclass(frozen=True)
class RangeTest(_PureSchedule):
    """The LR range test / LR finder of the course tutorial (001): an exponential ramp
    lr(t) = lr_min * (lr_max / lr_min) ** (t / (total_steps - 1)), held at lr_max after
    total_steps - 1. The defaults are the tutorial's 10 ** linspace(-2, 0.6, 1000).
    It ignores base_lr: the point of the test is to sweep lr regardless of the setting.
    """

    name: ClassVar[str] = "range-test"
    lr_min: float = _positive(0.01, "lr at t=0")
    lr_max: float = _positive(10**0.6, "lr at t=total_steps-1 and after")
    total_steps: int = param(1000, int, low=2, help="updates in the sweep")

    def _check_together(self) -> None:
        if self.lr_max <= self.lr_min:
            raise ScheduleError(
                "lr_max", "must be > lr_min, "
                f"got lr_min={self.lr_min:g}, lr_max={self.lr_max:g}"
            )

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        if t >= self.total_steps - 1:
            return self.lr_max
        return self.lr_min * (self.lr_max / self.lr_min) ** (t / (self.total_steps - 1))

    def label(self) -> str:
        return f"range-test({self.lr_min:g}..{self.lr_max:.3g}, {self.total_steps})"


# --------------------------------------------------------------------------------------------
# The stateful schedule.
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Plateau(_ValidatedParams):
    """Reduce on plateau, torch's ReduceLROnPlateau expressed as a factor on base_lr.

    Fed one loss per update with ``observe(loss)``; ``lr(t, base_lr) = base_lr * factor_now``.
    A loss is an improvement when it beats the best so far by the threshold (rel: below
    best * (1 - threshold) in "min" mode, above best * (1 + threshold) in "max"; abs:
    best -/+ threshold). After more than ``patience`` observations without improvement the
    factor is multiplied by ``factor`` (never below min_lr), then ``cooldown`` observations
    are ignored. A reduction smaller than ``eps`` is skipped.

    ``min_lr`` and ``eps`` are absolute lrs in torch; pass ``observe(loss, base_lr=...)`` to
    get torch's exact behaviour. Without base_lr they are read as fractions of base_lr.
    Each lane needs its own instance (``make_schedule`` returns a fresh one each call).
    """

    name: ClassVar[str] = "plateau"
    stateful: ClassVar[bool] = True
    mode: str = param("min", "choice", choices=("min", "max"), help="min: the loss should go down")
    factor: float = param(0.1, low=0.0, high=1.0, low_open=True, high_open=True, help="lr multiplier per cut")
    patience: int = param(10, int, low=0, help="updates without improvement tolerated")
    threshold: float = param(1e-4, low=0.0, help="how much better counts as an improvement")
    threshold_mode: str = param("rel", "choice", choices=("rel", "abs"), help="threshold relative or absolute")
    cooldown: int = param(0, int, low=0, help="updates ignored after a cut")
    min_lr: float = param(0.0, low=0.0, help="lr floor (absolute)")
    eps: float = param(1e-8, low=0.0, help="cuts smaller than this are skipped")
    _factor_now: float = field(default=1.0, init=False, repr=False)
    _best: float = field(default=math.inf, init=False, repr=False)
    _num_bad: int = field(default=0, init=False, repr=False)
    _cooldown_left: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        self._validate_fields()
        self.reset()

    def reset(self) -> None:
        """Forget the losses seen so far: factor back to 1, no best, no bad steps."""
        self._factor_now = 1.0
        self._best = math.inf if self.mode == "min" else -math.inf
        self._num_bad = 0
        self._cooldown_left = 0

    @property
    def current_factor(self) -> float:
        return self._factor_now

    @property
    def best(self) -> float:
        return self._best

    def _is_better(self, loss: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return loss < self._best * (1.0 - self.threshold)
        if self.mode == "min":
            return loss < self._best - self.threshold
        if self.threshold_mode == "rel":
            return loss > self._best * (self.threshold + 1.0)
        return loss > self._best + self.threshold

    def observe(self, loss: float, base_lr: float | None = None) -> None:
        """Feed the loss of the latest update (the order of torch's ReduceLROnPlateau.step)."""
        current = float(loss)
        if self._is_better(current):
            self._best = current
            self._num_bad = 0
        else:
            self._num_bad += 1  # NaN never improves, as in torch
        if self._cooldown_left > 0:
            self._cooldown_left -= 1
            self._num_bad = 0  # bad steps during cooldown do not count
        if self._num_bad > self.patience:
            self._reduce(1.0 if base_lr is None else float(base_lr))
            self._cooldown_left = self.cooldown
            self._num_bad = 0

    def _reduce(self, base_lr: float) -> None:
        if base_lr <= 0.0:
            return  # nothing to reduce; min_lr / base_lr would be meaningless
        old_lr = base_lr * self._factor_now
        new_lr = max(old_lr * self.factor, self.min_lr)
        if old_lr - new_lr > self.eps:
            self._factor_now = new_lr / base_lr

    def lr(self, t: int, base_lr: float) -> float:
        _check_step(t)
        return base_lr * self._factor_now

    def label(self) -> str:
        return f"plateau(x{self.factor:g}, patience={self.patience})"


# --------------------------------------------------------------------------------------------
# Registry.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleSpec:
    """A registry entry: the name, a one-line description, the class; the parameters (in order)
    come from the class's fields."""

    name: str
    description: str
    cls: type

    @property
    def params(self) -> tuple[ParamSpec, ...]:
        return schedule_params(self.cls)

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)


_SPECS = [
    ScheduleSpec("constant", "lr = base lr", Constant),
    ScheduleSpec("step", "multiply lr by gamma every step_size updates (StepLR)", Step),
    ScheduleSpec("multistep", "multiply lr by gamma at each milestone (MultiStepLR)", MultiStep),
    ScheduleSpec("exponential", "multiply lr by gamma every update (ExponentialLR)", Exponential),
    ScheduleSpec("inverse-time", "lr / (1 + t/tau)^power: the polynomial decay of the course slides", InverseTime),
    ScheduleSpec("cosine", "cosine from lr down to eta_min over T_max updates (CosineAnnealingLR)", Cosine),
    ScheduleSpec("cosine-restarts", "cosine annealing with warm restarts (CosineAnnealingWarmRestarts)", CosineRestarts),
    ScheduleSpec("warmup-cosine", "linear warm-up from start_factor*lr to lr, then cosine to eta_min at T_max",
                 WarmupCosine),
    ScheduleSpec("cyclic", "triangle waves between lr and max_lr (CyclicLR)", Cyclic),
    ScheduleSpec("one-cycle", "up to max_lr then far below it, once (OneCycleLR)", OneCycle),
    ScheduleSpec("range-test", "LR finder: exponential sweep from lr_min to lr_max (ignores the lane's lr)", RangeTest),
    ScheduleSpec("plateau", "cut lr by factor when the loss stops improving (ReduceLROnPlateau)", Plateau),
]

SCHEDULES: dict[str, ScheduleSpec] = {spec.name: spec for spec in _SPECS}

# The order the TUI's `s` key cycles through; range-test and plateau are chosen by name only.
SCHEDULE_CYCLE: tuple[str, ...] = (
    "constant",
    "step",
    "cosine",
    "warmup-cosine",
    "cosine-restarts",
    "cyclic",
    "one-cycle",
    "exponential",
    "inverse-time",
)


def _normalise_name(name: str) -> str:
    return name.strip().lower().replace("_", "-") if isinstance(name, str) else name


def _lookup(name: str) -> ScheduleSpec:
    key = _normalise_name(name)
    if not isinstance(key, str) or key not in SCHEDULES:
        hint = did_you_mean(key, list(SCHEDULES)) if isinstance(key, str) else ""
        raise ScheduleError("name", f"unknown schedule {name!r}{hint} (choose from {', '.join(SCHEDULES)})")
    return SCHEDULES[key]


def make_schedule(name: str, **params: Any) -> Schedule:
    """Build a schedule by registry name; unspecified parameters take their defaults.

    Raises ScheduleError naming the unknown schedule or parameter (with the closest valid
    one), or the parameter whose value has the wrong type or is out of range.
    """
    spec = _lookup(name)
    valid = [p.name for p in spec.params]
    for key in params:
        if key not in valid:
            listing = ", ".join(valid) if valid else "none"
            raise ScheduleError(
                key, f"schedule '{spec.name}' has no parameter {key!r}{did_you_mean(key, valid)} "
                f"(parameters: {listing})"
            )
    return spec.cls(**params)


def next_schedule_name(current: str) -> str:
    """The schedule after ``current`` in SCHEDULE_CYCLE (the first one for names outside it)."""
    key = _normalise_name(current)
    if key not in SCHEDULE_CYCLE:
        return SCHEDULE_CYCLE[0]
    return SCHEDULE_CYCLE[(SCHEDULE_CYCLE.index(key) + 1) % len(SCHEDULE_CYCLE)]


# --------------------------------------------------------------------------------------------
# Coupling the learning rate to the batch size, and the temperature readout.
# --------------------------------------------------------------------------------------------

COUPLINGS: tuple[str, ...] = ("none", "linear", "sqrt", "momentum", "adam")


def _check_batch(batch: int, error: type[SettingError]) -> int:
    if (
        isinstance(batch, bool)
        or not isinstance(batch, numbers.Real)
        or batch < 1
        or not float(batch).is_integer()
    ):
        raise error("batch", f"batch size must be an int >= 1, got {batch!r}")
    return int(batch)


def _check_momentum(momentum: float, what: str, error: type[SettingError]) -> float:
    if (
        isinstance(momentum, bool)
        or not isinstance(momentum, numbers.Real)
        or not 0.0 <= momentum < 1.0
    ):
        raise error(what, f"{what} must be in [0, 1), got {momentum!r}")
    return float(momentum)


def couple(rule: str, lr: float, batch: int, momentum: float = 0.0, eps: float | None = None) -> float:
    """The lr an optimizer should use for batch size ``batch``, given the lane's lr setting.

    From the course notes (000, "Making temperature independent of B" and "Decoupling
    learning rate, batch size, and momentum"), with ``lr`` playing eta_0, the per-example lr:
      none     -> lr                      (eta fixed: a bigger batch lowers the temperature)
      linear   -> batch * lr              (eta = B eta_0; Goyal et al. 2017)
      sqrt     -> sqrt(batch) * lr        (keeps the update's noise variance fixed instead;
                                           Krizhevsky 2014, Hoffer et al. 2017)
      momentum -> (1 - momentum) * batch * lr  (eta = (1 - mu) B eta_0 for heavy-ball /
                                           torch momentum; Smith et al. 2018)
      adam     -> eps0 * sqrt(batch) * batch * lr  (the notes' "Decoupling Hyperparameters" for
                                           Adam: eps = eps0 sqrt(B), eta = eps B eta_0, with
                                           ``eps`` the lane's eps0; ``adam_hyper`` rescales eps
                                           and the EMA windows to match)
    """
    if not isinstance(rule, str) or rule not in COUPLINGS:
        raise CouplingError(
            "coupling", f"unknown coupling {rule!r}{did_you_mean(str(rule), COUPLINGS)} "
            f"(choose from {', '.join(COUPLINGS)})"
        )
    b = _check_batch(batch, CouplingError)
    mu = _check_momentum(momentum, "momentum", CouplingError)
    if rule == "none":
        return lr
    if rule == "linear":
        return b * lr
    if rule == "sqrt":
        return math.sqrt(b) * lr
    if rule == "adam":
        if eps is None:
            raise CouplingError("coupling", "the 'adam' coupling needs an optimizer with eps (adam and its variants)")
        return eps * math.sqrt(b) * b * lr
    return (1.0 - mu) * b * lr


ADAM_WINDOWS = {"betas": "pair", "n_g": "count", "n_s": "count"}  # the EMA windows the adam rule rescales


def adam_hyper(hyper: dict, batch: int) -> dict:
    """The optimizer's hyperparameters under the 'adam' coupling (course notes 000, "Decoupling
    Hyperparameters"): eps = eps0 sqrt(B), and each EMA window N0 (beta = 1 - 1/N0, or n_g, n_s
    themselves) becomes max(1, N0 / B) steps, so a window still spans N0 examples. The notes
    write min(1, N0/B), which would make every window at most one step (no averaging at all):
    max is what keeps the number of examples averaged, and what this implements."""
    b = _check_batch(batch, CouplingError)
    out = dict(hyper)
    out["eps"] = hyper["eps"] * math.sqrt(b)
    if "betas" in hyper:
        out["betas"] = tuple(1.0 - 1.0 / max(1.0, (1.0 / (1.0 - beta)) / b) for beta in hyper["betas"])
    for key in ("n_g", "n_s"):
        if key in hyper:
            out[key] = max(1.0, hyper[key] / b)
    return out


def temperature(effective_lr: float, batch: int, heavy_ball_momentum: float = 0.0) -> float:
    """The lr seen as a temperature (course notes 000, "SGD as a form of MCMC: learning rate
    as a temperature parameter"): effective_lr / batch / (1 - heavy_ball_momentum).

    Averaging the gradient over B examples divides its noise, so the temperature goes as
    eta / B; with heavy-ball (torch / "vanilla") momentum each gradient's total effect is
    eta * sum(mu^i) = eta / (1 - mu). EMA momentum's total effect is eta whatever beta is
    ("EMA momentum: temperature is independent of N"), so EMA-style optimizers pass 0.
    Under the "momentum" coupling this gives back the lane's lr: T = eta_0.
    """
    b = _check_batch(batch, CouplingError)
    mu = _check_momentum(heavy_ball_momentum, "heavy_ball_momentum", CouplingError)
    return effective_lr / b / (1.0 - mu)
