"""What each steering key does to a lane, as command builders (no Textual here).

A builder is a function of the Session returning the Command to apply; the worker calls it at
the step boundary where the change lands, so it reads the lane's settings as they are then
(two quick presses of ``+`` always give two factors of 10^(1/4)).
"""

from __future__ import annotations

from typing import Callable

from sgdtui.engine.session import CommandError, Session, SetLane
from sgdtui.engine.schedules import COUPLINGS, next_schedule_name

MAX_BATCH = 1_000_000
FIRST_NOISE = 0.1  # the first press of n turns noise on at this level; later presses double it

Builder = Callable[[Session], SetLane]


def _config(session: Session, lane: str):
    try:
        return session.race.lane(lane).config
    except KeyError as exc:
        raise CommandError(exc.args[0]) from None


def nudge_lr(lane: str, direction: int) -> Builder:
    """lr × 10^(±1/4) (HyperParam.nudge on the lane's lr)."""
    def build(session: Session) -> SetLane:
        cfg = _config(session, lane)
        return SetLane(lane, {"lr": cfg.spec.param("lr").nudge(cfg.hyper["lr"], direction)})
    return build


def nudge_decay(lane: str, direction: int) -> Builder:
    """The lane's primary β (its optimizer's ``decay_param``) one key step up or down."""
    def build(session: Session) -> SetLane:
        cfg = _config(session, lane)
        name = cfg.spec.decay_param
        if name is None:
            raise CommandError(f"optimizer {cfg.optimizer!r} of lane {lane!r} has no β to change")
        value = cfg.spec.param(name).nudge(cfg.hyper[name], direction)
        return SetLane(lane, {name: list(value) if isinstance(value, tuple) else value})
    return build


def scale_batch(lane: str, direction: int) -> Builder:
    """Batch size ×2 (up) or ÷2 (down), kept in [1, 1e6]."""
    def build(session: Session) -> SetLane:
        batch = _config(session, lane).batch
        new = min(batch * 2, MAX_BATCH) if direction > 0 else max(batch // 2, 1)
        return SetLane(lane, {"batch": new})
    return build


def cycle_schedule(lane: str) -> Builder:
    """The next schedule in SCHEDULE_CYCLE, with its default parameters."""
    def build(session: Session) -> SetLane:
        return SetLane(lane, {"schedule": next_schedule_name(_config(session, lane).schedule)})
    return build


def cycle_coupling(lane: str) -> Builder:
    """The next lr-batch coupling rule in COUPLINGS."""
    def build(session: Session) -> SetLane:
        current = _config(session, lane).coupling
        index = COUPLINGS.index(current) if current in COUPLINGS else -1
        return SetLane(lane, {"coupling": COUPLINGS[(index + 1) % len(COUPLINGS)]})
    return build


def next_noise(noise: float, direction: int) -> float:
    """0 -> 0.1 -> 0.2 -> 0.4 ... up; halving down, and below 0.1 back to 0."""
    if direction > 0:
        return FIRST_NOISE if noise <= 0 else min(noise * 2.0, 1e6)
    if noise <= FIRST_NOISE:
        return 0.0
    return noise / 2.0


def nudge_noise(lane: str, direction: int) -> Builder:
    def build(session: Session) -> SetLane:
        return SetLane(lane, {"noise": next_noise(_config(session, lane).noise, direction)})
    return build


def nudge_weight_decay(lane: str, direction: int) -> Builder:
    """The lane's weight decay λ one key step up or down (HyperParam.nudge: 0 -> 1e-4 -> ×10^(1/4)
    ... and back down to 0). Every optimizer has one, in both modes."""
    def build(session: Session) -> SetLane:
        cfg = _config(session, lane)
        if "weight_decay" not in cfg.spec.param_names():
            raise CommandError(f"optimizer {cfg.optimizer!r} of lane {lane!r} has no weight decay")
        value = cfg.spec.param("weight_decay").nudge(float(cfg.hyper["weight_decay"]), direction)
        return SetLane(lane, {"weight_decay": value})
    return build
