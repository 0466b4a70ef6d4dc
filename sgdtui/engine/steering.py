"""What one key press does to a lane: a ``Nudge`` resolved into the settings of a ``SetLane``.

The Session resolves a nudge against the lane's config as it is at the step boundary where the
change lands, so two quick presses of ``+`` always give two factors of 10^(1/4).
"""

from __future__ import annotations

from typing import Any

from sgdtui.engine.commands import NUDGES, CommandError, Nudge
from sgdtui.engine.lane import BATCH, LaneConfig
from sgdtui.engine.schedules import COUPLINGS, next_schedule_name

FIRST_NOISE = 0.1  # the first press of n turns noise on at this level; later presses double it


def next_noise(noise: float, direction: int) -> float:
    """0 -> 0.1 -> 0.2 -> 0.4 ... up; halving down, and below 0.1 back to 0."""
    if direction > 0:
        return FIRST_NOISE if noise <= 0 else min(noise * 2.0, 1e6)
    if noise <= FIRST_NOISE:
        return 0.0
    return noise / 2.0


def nudged_settings(config: LaneConfig, nudge: Nudge) -> dict[str, Any]:
    """The ``set`` table one press of ``nudge.what`` gives the lane ``config``."""
    what, direction, spec = nudge.what, nudge.direction, config.spec
    if what == "lr":
        return {"lr": spec.param("lr").nudge(config.hyper["lr"], direction)}
    if what == "decay":
        name = spec.decay_param
        if name is None:
            raise CommandError(f"optimizer {config.optimizer!r} of lane {config.name!r} has no β to change")
        value = spec.param(name).nudge(config.hyper[name], direction)
        return {name: list(value) if isinstance(value, tuple) else value}
    if what == "weight_decay":
        if "weight_decay" not in spec.param_names():
            raise CommandError(f"optimizer {config.optimizer!r} of lane {config.name!r} has no weight decay")
        return {"weight_decay": spec.param("weight_decay").nudge(float(config.hyper["weight_decay"]), direction)}
    if what == "batch":  # x2 up, /2 down, kept in range
        batch = config.batch * 2 if direction > 0 else config.batch // 2
        return {"batch": min(max(batch, int(BATCH.low)), int(BATCH.high))}
    if what == "schedule":  # the next schedule in the cycle, with its default parameters
        return {"schedule": next_schedule_name(config.schedule)}
    if what == "coupling":
        rules = [r for r in COUPLINGS if r != "adam" or ("eps" in config.hyper and any(
            k in config.hyper for k in ("betas", "n_g", "n_s")))]  # adam's rule needs eps and windows
        index = rules.index(config.coupling) if config.coupling in rules else -1
        return {"coupling": rules[(index + 1) % len(rules)]}
    if what == "noise":
        return {"noise": next_noise(config.noise, direction)}
    raise CommandError(f"unknown nudge {what!r} (one of {', '.join(NUDGES)})")
