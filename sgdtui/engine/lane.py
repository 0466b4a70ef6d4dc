"""A lane: one optimizer configuration racing on a problem.

``LaneConfig`` is what defines a lane (optimizer, hyperparameters, batch, schedule, coupling,
gradient noise, start points) and how it reads from and writes to a script's lane table; it is
validated in one place (each setting's ``ParamSpec``), and a bad value raises ``SettingError``
naming the key. ``LaneSteering`` is the running part every problem kind's lanes share: the
optimizer's param groups, the schedule clock and the effective lr that schedule and coupling
give. Each lane owns its random streams, seeded from the race seed and the lane's name
(``lane_seed``), so adding or removing a lane never changes another lane's numbers.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from sgdtui.engine.checks import did_you_mean, is_number
from sgdtui.engine.optimizers import OPTIMIZERS, OptimizerSpec, get_optimizer, set_hyper
from sgdtui.engine.params import ParamSpec, SettingError
from sgdtui.engine.schedules import (
    COUPLINGS,
    Schedule,
    ScheduleError,
    adam_hyper,
    couple,
    make_schedule,
    temperature,
)

NAME_PATTERN = re.compile(r"[A-Za-z0-9_.+\-]{1,40}")
MAX_STARTS = 100_000

# The lane's own settings (the optimizer's hyperparameters come from its registry entry).
BATCH = ParamSpec("batch", 1, int, 1, 1_000_000, help="minibatch size B")
NOISE = ParamSpec("noise", 0.0, float, 0.0, 1e6, help="std of additive Gaussian gradient noise per example")
COUPLING = ParamSpec("coupling", "none", "choice", choices=COUPLINGS, help="how lr follows the batch size")
LANE_SETTINGS = {spec.name: spec for spec in (BATCH, NOISE, COUPLING)}
# The Lab's lane options (each off unless given; `false` turns one off again in a `set` table).
LAB_KEYS = ("burn_in", "swa", "flow")
MAX_STEP_OPTION = 100_000_000
# Keys of a script's lane table besides the optimizer's hyperparameters.
LANE_KEYS = ("name", "optimizer", "start", "starts", "batch", "schedule", "coupling", "noise", *LAB_KEYS)
SETTABLE = ("batch", "schedule", "coupling", "noise", *LAB_KEYS)  # what a `set` table may change besides hyperparameters
MAX_CLOUD_SPEC = 100_000


def lane_seed(seed: int, name: str, stream: str = "") -> int:
    """A stable 63-bit seed from the race seed and the lane's name (independent of other lanes)."""
    digest = hashlib.sha256(f"{seed}:{name}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def unique_name(base: str, taken) -> str:
    """``base``, or ``base-2``, ``base-3``, ... whichever is not taken (a lane's default name).
    An optimizer's import path ("package.module:Class") gives its class name, lowercased."""
    if ":" in base:
        base = base.rsplit(":", 1)[1].rsplit(".", 1)[-1].lower()[:30] or "lane"
    taken = set(taken)
    if base not in taken:
        return base
    k = 2
    while f"{base}-{k}" in taken:
        k += 1
    return f"{base}-{k}"


def split_schedule(schedule: Any) -> tuple[str, dict[str, Any]]:
    """A schedule given as a name or as {name = ..., param = ...} -> (name, params)."""
    if isinstance(schedule, str):
        return schedule, {}
    if isinstance(schedule, dict):
        params = dict(schedule)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise SettingError("schedule", "a schedule table needs a 'name' (a string), e.g. { name = 'step' }")
        return name, params
    raise SettingError("schedule", f"must be a name or a table {{ name = ..., ... }}, got {schedule!r}")


def check_schedule(name: str, params: dict[str, Any]) -> Schedule:
    """The schedule, or a SettingError keyed under ``schedule``."""
    try:
        return make_schedule(name, **params)
    except ScheduleError as exc:
        raise SettingError("schedule" if exc.key == "name" else f"schedule.{exc.key}", exc.reason) from None


def check_points(value: Any, key: str) -> tuple[tuple[float, float], ...]:
    """A non-empty list of finite [x, y] points."""
    if (isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value
            or not all(_is_point(p) for p in value)):
        raise SettingError(key, f"must be a non-empty list of [x, y] points (finite numbers), got {value!r}")
    if len(value) > MAX_STARTS:
        raise SettingError(key, f"at most {MAX_STARTS} start points per lane, got {len(value)}")
    return tuple((float(p[0]), float(p[1])) for p in value)


def check_burn_in(value: Any) -> int | None:
    """``burn_in = K`` (accumulate stationary statistics after step K), or ``false`` (off)."""
    if value is False:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STEP_OPTION:
        raise SettingError("burn_in", f"must be a step count in [0, {MAX_STEP_OPTION}] or false, got {value!r}")
    return int(value)


def check_swa(value: Any) -> int | None:
    """``swa = { start = K }`` (average the iterate from step K on), or ``false`` (off)."""
    if value is False:
        return None
    if not isinstance(value, dict) or set(value) != {"start"}:
        raise SettingError("swa", f"must be {{ start = K }} (the step averaging starts at) or false, got {value!r}")
    start = value["start"]
    if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= MAX_STEP_OPTION:
        raise SettingError("swa.start", f"must be a step count in [0, {MAX_STEP_OPTION}], got {start!r}")
    return int(start)


def check_flow(value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingError("flow", f"must be true (draw the gradient-flow reference) or false, got {value!r}")
    return value


def expand_starts(value: Any) -> tuple[tuple[float, float], ...]:
    """``starts``: a list of [x, y] points, or a cloud: ``{ copies = N, at = [x, y] }`` (N copies
    of a point) or ``{ sample = N, x = [lo, hi], y = [lo, hi], seed = S }`` (N points uniform in
    the box, from numpy's seeded generator, so the table alone fixes them)."""
    if not isinstance(value, dict):
        return check_points(value, "starts")
    if "copies" in value:
        extra = set(value) - {"copies", "at"}
        if extra or "at" not in value:
            raise SettingError("starts", f"a copies cloud is {{ copies = N, at = [x, y] }}, got {value!r}")
        count = _cloud_count(value["copies"], "starts.copies")
        if not _is_point(value["at"]):
            raise SettingError("starts.at", f"must be [x, y] (two finite numbers), got {value['at']!r}")
        return tuple((float(value["at"][0]), float(value["at"][1])) for _ in range(count))
    if "sample" in value:
        extra = set(value) - {"sample", "x", "y", "seed"}
        if extra or not {"x", "y"} <= set(value):
            raise SettingError("starts", "a sampled cloud is { sample = N, x = [lo, hi], y = [lo, hi], seed = S },"
                                         f" got {value!r}")
        count = _cloud_count(value["sample"], "starts.sample")
        bounds = []
        for axis in ("x", "y"):
            lo_hi = value[axis]
            if not _is_point(lo_hi) or not lo_hi[0] < lo_hi[1]:
                raise SettingError(f"starts.{axis}", f"must be [low, high] with low < high, got {lo_hi!r}")
            bounds.append((float(lo_hi[0]), float(lo_hi[1])))
        seed = value.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise SettingError("starts.seed", f"must be an integer >= 0, got {seed!r}")
        import numpy as np

        rng = np.random.default_rng(seed)
        xs = rng.uniform(*bounds[0], size=count)
        ys = rng.uniform(*bounds[1], size=count)
        return tuple((float(x), float(y)) for x, y in zip(xs, ys))
    raise SettingError("starts", f"must be a list of [x, y] points, {{ copies = N, at = [x, y] }} or"
                                 f" {{ sample = N, x = [lo, hi], y = [lo, hi] }}, got {value!r}")


def _cloud_count(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STARTS:
        raise SettingError(key, f"must be a count in [1, {MAX_STARTS}], got {value!r}")
    return int(value)


def _is_point(p: Any) -> bool:
    return (isinstance(p, (list, tuple)) and len(p) == 2
            and all(is_number(v) and math.isfinite(v) for v in p))


@dataclass(frozen=True)
class LaneConfig:
    """Everything that defines a lane; ``hyper`` holds the optimizer's full hyperparameters."""

    name: str
    optimizer: str
    hyper: dict[str, Any]
    batch: int = 1
    schedule: str = "constant"
    schedule_params: dict[str, Any] = field(default_factory=dict)
    coupling: str = "none"
    noise: float = 0.0
    starts: tuple[tuple[float, float], ...] | None = None  # None: the problem's default starts
    starts_spec: dict[str, Any] | None = None  # a cloud's {copies = ...} / {sample = ...} table
    burn_in: int | None = None  # stationary statistics after this step (None: off)
    swa_start: int | None = None  # the iterate averaged from this step on (None: off)
    flow: bool = False  # draw the gradient-flow reference

    @staticmethod
    def create(name: str, optimizer: str, **settings: Any) -> "LaneConfig":
        """Validate and fill in defaults. ``settings``: hyperparameters by name, ``batch``,
        ``schedule`` (a name or a table) with optional ``schedule_params``, ``coupling``,
        ``noise`` and ``starts``. Raises SettingError naming the key."""
        settings = dict(settings)
        schedule = settings.pop("schedule", None)
        schedule_params = settings.pop("schedule_params", None)
        if schedule is not None:
            sched_name, params = split_schedule(schedule)
            settings["schedule"] = {"name": sched_name, **params, **(schedule_params or {})}
        starts = settings.pop("starts", None)
        table = {"name": name, "optimizer": optimizer, **settings}
        if starts is not None:
            table["starts"] = [list(p) for p in starts]
        return LaneConfig.from_table(table)

    @staticmethod
    def from_table(table: dict[str, Any], name: str | None = None) -> "LaneConfig":
        """A LaneConfig from a script lane table ({optimizer = ..., lr = ..., batch = ...}).
        ``name`` is used when the table has none. Raises SettingError naming the key."""
        if not isinstance(table, dict):
            raise SettingError("", f"a lane must be a table, e.g. {{ optimizer = 'adam', lr = 0.1 }}, got {table!r}")
        if "optimizer" not in table:
            raise SettingError("optimizer", f"missing key 'optimizer' (choose from {', '.join(OPTIMIZERS)})")
        spec = get_optimizer(table["optimizer"])
        valid = [*LANE_KEYS, *spec.param_names()]
        for key in table:
            if key not in valid:
                raise SettingError(key, f"unknown key{did_you_mean(key, valid)} (valid keys: {', '.join(valid)})")
        lane_name = table.get("name", name)
        if not isinstance(lane_name, str) or not NAME_PATTERN.fullmatch(lane_name):
            raise SettingError("name", f"must be 1-40 letters, digits or _.+- characters, got {lane_name!r}")
        if "start" in table and "starts" in table:
            raise SettingError("starts", "give either 'start' or 'starts', not both")
        starts = None
        if "start" in table:
            starts = check_points([table["start"]], "start") if _is_point(table["start"]) else None
            if starts is None:
                raise SettingError("start", f"must be [x, y] (two finite numbers), got {table['start']!r}")
        elif "starts" in table:
            starts = expand_starts(table["starts"])
        hyper = spec.validate({k: v for k, v in table.items() if k in spec.param_names()})
        lane = {k: LANE_SETTINGS[k].validate(table[k]) for k in LANE_SETTINGS if k in table}
        lane.update(_lab_options(table))
        schedule, params = split_schedule(table.get("schedule", "constant"))
        check_schedule(schedule, params)
        spec_table = dict(table["starts"]) if isinstance(table.get("starts"), dict) else None
        _check_coupling(lane.get("coupling", "none"), hyper)
        return LaneConfig(name=lane_name, optimizer=spec.name, hyper=hyper, schedule=schedule,
                          schedule_params=params, starts=starts, starts_spec=spec_table, **lane)

    def to_table(self) -> dict[str, Any]:
        """The script lane table that recreates this config."""
        table: dict[str, Any] = {"name": self.name, "optimizer": self.optimizer}
        if self.starts_spec is not None:
            table["starts"] = {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in self.starts_spec.items()}
        elif self.starts is not None:
            if len(self.starts) == 1:
                table["start"] = list(self.starts[0])
            else:
                table["starts"] = [list(p) for p in self.starts]
        for hp in self.spec.hyper:
            value = self.hyper[hp.name]
            if hp.name == "lr" or value != hp.default:
                table[hp.name] = list(value) if isinstance(value, tuple) else value
        table["batch"] = self.batch
        if self.schedule != "constant":
            table["schedule"] = {"name": self.schedule, **{
                k: list(v) if isinstance(v, tuple) else v for k, v in self.schedule_params.items()}}
        table["coupling"] = self.coupling
        table["noise"] = self.noise
        if self.burn_in is not None:
            table["burn_in"] = self.burn_in
        if self.swa_start is not None:
            table["swa"] = {"start": self.swa_start}
        if self.flow:
            table["flow"] = True
        return table

    def with_settings(self, settings: dict[str, Any]) -> "LaneConfig":
        """This config after a ``set`` table (hyperparameters by name, batch, schedule, coupling,
        noise), fully validated: a bad value raises SettingError and changes nothing."""
        if not isinstance(settings, dict) or not settings:
            raise SettingError("", "a change needs at least one setting, e.g. { lr = 0.5 }")
        spec = self.spec
        valid = [*SETTABLE, *spec.param_names()]
        for key in settings:
            if key not in valid:
                raise SettingError(key, f"'{self.optimizer}' has no setting '{key}'{did_you_mean(key, valid)}"
                                        f" (valid: {', '.join(valid)})")
        hyper = spec.validate({**self.hyper, **{k: v for k, v in settings.items() if k in spec.param_names()}})
        changes: dict[str, Any] = {k: LANE_SETTINGS[k].validate(settings[k]) for k in LANE_SETTINGS if k in settings}
        if "schedule" in settings:
            name, params = split_schedule(settings["schedule"])
            check_schedule(name, params)
            changes["schedule"], changes["schedule_params"] = name, params
        changes.update(_lab_options(settings))
        _check_coupling(changes.get("coupling", self.coupling), hyper)
        return replace(self, hyper=hyper, **changes)

    def with_starts(self, starts: Any) -> "LaneConfig":
        return replace(self, starts=None if starts is None else check_points(starts, "starts"), starts_spec=None)

    @property
    def spec(self) -> OptimizerSpec:
        return get_optimizer(self.optimizer)

    def optimizer_hyper(self) -> dict[str, Any]:
        """The hyperparameters the optimizer runs with: the lane's, except under the 'adam'
        coupling, which rescales eps and the EMA windows with the batch (schedules.adam_hyper)."""
        return adam_hyper(self.hyper, self.batch) if self.coupling == "adam" else dict(self.hyper)


def _check_coupling(rule: str, hyper: dict[str, Any]) -> None:
    if rule == "adam" and not ("eps" in hyper and any(k in hyper for k in ("betas", "n_g", "n_s"))):
        raise SettingError("coupling", "the 'adam' coupling rescales eps and the EMA windows: it needs an optimizer"
                                       " with eps and betas (adam, adamw, nadam, radam, adam-nobias, adam-centered,"
                                       " adam-minbias, lamb)")


def _lab_options(table: dict[str, Any]) -> dict[str, Any]:
    """LaneConfig fields from the Lab keys present in a lane or ``set`` table."""
    out: dict[str, Any] = {}
    if "burn_in" in table:
        out["burn_in"] = check_burn_in(table["burn_in"])
    if "swa" in table:
        out["swa_start"] = check_swa(table["swa"])
    if "flow" in table:
        out["flow"] = check_flow(table["flow"])
    return out


def restore_settings(origin: LaneConfig) -> dict[str, Any]:
    """The ``set`` table that puts a lane back to ``origin``'s settings (every one of them)."""
    table = {key: (list(v) if isinstance(v, tuple) else v) for key, v in origin.hyper.items()}
    schedule: Any = {"name": origin.schedule, **origin.schedule_params} if origin.schedule_params else origin.schedule
    return {**table, "batch": origin.batch, "schedule": schedule, "coupling": origin.coupling, "noise": origin.noise,
            "burn_in": False if origin.burn_in is None else origin.burn_in,
            "swa": False if origin.swa_start is None else {"start": origin.swa_start}, "flow": origin.flow}


class LaneSteering:
    """What a lane's keys and events change, shared by every problem kind's lanes: the
    hyperparameters (written into the optimizer's param groups, torch's way), the schedule, the
    batch size and the coupling rule that together give the effective lr.

    A schedule counts steps from when it was set: from the lane's start, or from the step at
    which an event (or the ``s`` key) switched to it.
    """

    config: LaneConfig
    t: int
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    schedule_origin: int
    effective_lr: float

    @property
    def spec(self) -> OptimizerSpec:
        return self.config.spec

    @property
    def name(self) -> str:
        return self.config.name

    sum_lr: float = 0.0  # the Robbins-Monro partial sums since the lane (re)started
    sum_lr2: float = 0.0

    def start_schedule(self) -> None:
        self.schedule = make_schedule(self.config.schedule, **self.config.schedule_params)
        self.schedule_origin = self.t

    def count_lrs(self, lrs) -> None:
        """Add the lrs of updates just taken to sum(lr_t) and sum(lr_t^2) (NaN entries: per-row lrs)."""
        if len(lrs) == 1 and type(lrs[0]) is float:  # one update (MLP lanes, every step): no array
            lr = lrs[0]
            self.sum_lr += lr
            self.sum_lr2 += lr * lr
            return
        import numpy as np

        lrs = np.asarray(lrs, dtype=np.float64)
        self.sum_lr += float(lrs.sum())
        self.sum_lr2 += float((lrs * lrs).sum())

    _constant_lr: tuple | None = None  # (config, schedule, lr) while the schedule is constant

    def compute_lr(self) -> Any:
        """The effective lr of the next update (``_lr_at`` the schedule's time now)."""
        cfg = self.config
        cached = self._constant_lr
        if cached is not None and cached[0] is cfg and cached[1] is self.schedule:
            return cached[2]
        lr = self._lr_at(self.t - self.schedule_origin)
        if self.schedule.name == "constant":  # the same every step until the config or schedule changes
            self._constant_lr = (cfg, self.schedule, lr)
        return lr

    def _lr_at(self, t: int) -> Any:
        """The scheduled base lr at schedule time ``t``, through the coupling rule."""
        cfg = self.config
        scheduled = self.schedule.lr(t, cfg.hyper["lr"])
        return couple(cfg.coupling, scheduled, cfg.batch, self.spec.momentum_of(cfg.hyper), cfg.hyper.get("eps"))

    def apply_config(self, new: LaneConfig) -> None:
        """Steer to ``new`` (already validated, same optimizer); takes effect at the next step."""
        old, self.config = self.config, new
        old_hyper, new_hyper = old.optimizer_hyper(), new.optimizer_hyper()
        for key, value in new_hyper.items():
            if key != "lr" and value != old_hyper[key]:  # lr is written every step from the schedule
                set_hyper(self.optimizer, key, value)
        if (new.schedule, new.schedule_params) != (old.schedule, old.schedule_params):
            self.start_schedule()
        self.effective_lr = self.compute_lr()

    def readout(self) -> dict[str, Any]:
        """The steering fields every LaneSnapshot carries."""
        cfg = self.config
        return dict(
            name=cfg.name, optimizer=cfg.optimizer, hyper=dict(cfg.hyper), base_lr=float(cfg.hyper["lr"]),
            effective_lr=float(self.effective_lr), decay_name=self.spec.decay_param,
            decay=self.spec.decay_value(cfg.hyper), batch=cfg.batch, schedule=self.schedule.label(),
            schedule_name=cfg.schedule,
            coupling=cfg.coupling, noise=float(cfg.noise), temperature=self.temperature, t=self.t,
            sum_lr=self.sum_lr, sum_lr2=self.sum_lr2, lr_future=self.future_lrs(),
            lab_options={"burn_in": cfg.burn_in, "swa_start": cfg.swa_start, "flow": cfg.flow},
        )

    def future_lrs(self, count: int = 10) -> tuple[float, ...]:
        """The lr the schedule gives over the next max(100, t) steps, at ``count`` points (empty
        for a schedule that reacts to the loss: its future is not known in advance)."""
        if self.schedule.stateful:
            return ()
        cfg = self.config
        base = cfg.hyper["lr"]
        if not isinstance(base, (int, float)):
            return ()
        horizon = max(100, self.t)
        mu = self.spec.momentum_of(cfg.hyper)
        origin = self.t - self.schedule_origin
        steps = sorted({max(1, round(horizon * k / count)) for k in range(1, count + 1)})
        try:
            return tuple(couple(cfg.coupling, self.schedule.lr(origin + k, base), cfg.batch, mu, cfg.hyper.get("eps"))
                         for k in steps)
        except (ValueError, TypeError):
            return ()

    @property
    def temperature(self) -> float:
        # torch SGD's dampening d scales every gradient's total effect by (1 - d).
        hyper = self.config.hyper
        damped_lr = self.effective_lr * (1.0 - float(hyper.get("dampening", 0.0)))
        return temperature(damped_lr, self.config.batch, self.spec.momentum_of(hyper))
