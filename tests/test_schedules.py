"""Schedules against torch.optim.lr_scheduler, their purity, the registry's validation, and the
coupling / temperature formulas of the course notes."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as torch_sched

from sgdtui.engine.schedules import (
    COUPLINGS,
    SCHEDULE_CYCLE,
    SCHEDULES,
    CouplingError,
    ParamSpec,
    Plateau,
    Schedule,
    ScheduleError,
    couple,
    make_schedule,
    next_schedule_name,
    temperature,
)

REL = 1e-12


def close(a: float, b: float, rel: float = REL, abs_: float = 1e-15) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def torch_lrs(build, base_lr: float, steps: int, closed_form: bool = False) -> list[float]:
    """The lr torch uses for each of `steps` updates: read before optimizer.step(), then
    scheduler.step() after it (torch's documented order). With closed_form, the scheduler's
    _get_closed_form_lr at the same point instead of the recursively updated group lr."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base_lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's get_lr-outside-step notice for closed forms
        sched = build(opt)
        out = []
        for _ in range(steps):
            out.append(float(sched._get_closed_form_lr()[0]) if closed_form else opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return out


def ours(schedule: Schedule, base_lr: float, steps: int) -> list[float]:
    return [schedule.lr(t, base_lr) for t in range(steps)]


def assert_all_close(got: list[float], want: list[float], rel: float = REL, abs_: float = 1e-15) -> None:
    assert len(got) == len(want)
    for t, (g, w) in enumerate(zip(got, want)):
        assert close(g, w, rel, abs_), f"t={t}: ours {g!r} != torch {w!r}"


# ------------------------------------------------------------------------------------------
# Against torch
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("step_size, gamma, base", [(100, 0.1, 0.1), (70, 0.5, 2.5), (1, 0.9, 0.03)])
def test_step_matches_steplr(step_size, gamma, base):
    steps = 4 * step_size + 7
    want = torch_lrs(lambda o: torch_sched.StepLR(o, step_size=step_size, gamma=gamma), base, steps)
    assert_all_close(ours(make_schedule("step", step_size=step_size, gamma=gamma), base, steps), want)


@pytest.mark.parametrize("milestones", [[100, 200], [30, 80, 80, 150], [150, 5, 60]])
def test_multistep_matches_multisteplr_past_every_milestone(milestones):
    base, gamma, steps = 0.2, 0.3, max(milestones) + 50
    want = torch_lrs(lambda o: torch_sched.MultiStepLR(o, milestones=milestones, gamma=gamma), base, steps)
    assert_all_close(ours(make_schedule("multistep", milestones=milestones, gamma=gamma), base, steps), want)


@pytest.mark.parametrize("gamma", [0.99, 0.9, 1.0])
def test_exponential_matches_exponentiallr(gamma):
    want = torch_lrs(lambda o: torch_sched.ExponentialLR(o, gamma=gamma), 0.5, 600)
    # The recursive product drifts by about one ulp per step; 600 steps stay far below 1e-12.
    assert_all_close(ours(make_schedule("exponential", gamma=gamma), 0.5, 600), want)


@pytest.mark.parametrize("tau, power", [(100.0, 1.0), (7.5, 0.5), (50.0, 2.0), (3.0, 0.5)])
def test_inverse_time_matches_lambdalr(tau, power):
    want = torch_lrs(lambda o: torch_sched.LambdaLR(o, lambda t: (1 + t / tau) ** -power), 0.4, 500)
    assert_all_close(ours(make_schedule("inverse-time", tau=tau, power=power), 0.4, 500), want)
    if tau.is_integer():  # at t = tau the lr has been divided by 2**power
        assert make_schedule("inverse-time", tau=tau, power=power).lr(int(tau), 1.0) == pytest.approx(2.0**-power)


@pytest.mark.parametrize("T_max, eta_min", [(40, 0.0), (33, 0.001), (300, 0.0)])
def test_cosine_matches_cosineannealinglr(T_max, eta_min):
    base, steps = 0.1, 6 * T_max + 3  # three full periods of 2*T_max (down and back up)
    schedule = make_schedule("cosine", T_max=T_max, eta_min=eta_min)
    build = lambda o: torch_sched.CosineAnnealingLR(o, T_max=T_max, eta_min=eta_min)  # noqa: E731
    assert_all_close(ours(schedule, base, steps), torch_lrs(build, base, steps, closed_form=True))
    # torch's recursive form drifts from its own closed form; it still agrees to ~1e-12 of base.
    assert_all_close(ours(schedule, base, steps), torch_lrs(build, base, steps), rel=0.0, abs_=1e-12 * base)
    assert schedule.lr(T_max, base) == pytest.approx(eta_min, abs=1e-18)


@pytest.mark.parametrize("T_0, T_mult, eta_min", [(100, 1, 0.0), (10, 2, 0.0), (7, 3, 0.005), (25, 1, 0.01)])
def test_cosine_restarts_matches_warmrestarts(T_0, T_mult, eta_min):
    # Past at least three restarts.
    steps = T_0 * sum(T_mult**k for k in range(3)) + T_0 // 2 + 1
    build = lambda o: torch_sched.CosineAnnealingWarmRestarts(o, T_0=T_0, T_mult=T_mult, eta_min=eta_min)  # noqa: E731
    schedule = make_schedule("cosine-restarts", T_0=T_0, T_mult=T_mult, eta_min=eta_min)
    assert_all_close(ours(schedule, 0.3, steps), torch_lrs(build, 0.3, steps))
    assert schedule.lr(T_0, 0.3) == 0.3  # the first restart is back at the top


@pytest.mark.parametrize(
    "warmup, T_max, eta_min, start_factor",
    [(30, 300, 0.0, 0.01), (5, 40, 0.002, 0.25), (1, 10, 0.0, 1.0)],
)
def test_warmup_cosine_matches_sequentiallr(warmup, T_max, eta_min, start_factor):
    base, steps = 0.05, 3 * T_max

    def build(opt):
        warm = torch_sched.LinearLR(opt, start_factor=start_factor, end_factor=1.0, total_iters=warmup)
        cos = torch_sched.CosineAnnealingLR(opt, T_max=T_max - warmup, eta_min=eta_min)
        return torch_sched.SequentialLR(opt, [warm, cos], milestones=[warmup])

    schedule = make_schedule("warmup-cosine", warmup_steps=warmup, T_max=T_max, eta_min=eta_min, start_factor=start_factor)
    # Both torch parts are recursive products here, hence the 1e-12-of-base absolute tolerance.
    assert_all_close(ours(schedule, base, steps), torch_lrs(build, base, steps), rel=1e-11, abs_=1e-12 * base)
    assert schedule.lr(0, base) == base * start_factor
    assert schedule.lr(warmup, base) == base
    assert schedule.lr(T_max, base) == pytest.approx(eta_min, abs=1e-18)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"max_lr": 0.9, "step_size_up": 20, "step_size_down": 35},
        {"mode": "triangular2", "step_size_up": 15},
        {"mode": "exp_range", "gamma": 0.995, "step_size_up": 12, "step_size_down": 8},
        {"max_lr": 0.01, "step_size_up": 9},  # max_lr below the lane's lr: the wave goes down
    ],
)
def test_cyclic_matches_cycliclr(params):
    base = 0.05
    schedule = make_schedule("cyclic", **params)
    up = schedule.params["step_size_up"]
    down = schedule.params["step_size_down"] or up
    steps = 4 * (up + down) + 3
    max_lr = 10 * base if schedule.params["max_lr"] is None else schedule.params["max_lr"]
    build = lambda o: torch_sched.CyclicLR(  # noqa: E731
        o,
        base_lr=base,
        max_lr=max_lr,
        step_size_up=up,
        step_size_down=schedule.params["step_size_down"],
        mode=schedule.params["mode"],
        gamma=schedule.params["gamma"],
        cycle_momentum=False,
    )
    assert_all_close(ours(schedule, base, steps), torch_lrs(build, base, steps))
    peak_scale = schedule.params["gamma"] ** up if schedule.params["mode"] == "exp_range" else 1.0
    assert schedule.lr(up, base) == pytest.approx(base + (max_lr - base) * peak_scale)  # first peak
    assert schedule.lr(up + down, base) == pytest.approx(base)  # back at the lane's lr


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"max_lr": 0.8, "total_steps": 137, "pct_start": 0.25},
        {"anneal_strategy": "linear", "total_steps": 100},
        {"three_phase": True, "total_steps": 200, "pct_start": 0.4},
        {"three_phase": True, "anneal_strategy": "linear", "div_factor": 10.0, "final_div_factor": 100.0},
    ],
)
def test_one_cycle_matches_onecyclelr_then_holds(params):
    base = 0.2
    schedule = make_schedule("one-cycle", **params)
    p = schedule.params
    total = p["total_steps"]
    max_lr = base if p["max_lr"] is None else p["max_lr"]
    build = lambda o: torch_sched.OneCycleLR(  # noqa: E731
        o,
        max_lr=max_lr,
        total_steps=total,
        pct_start=p["pct_start"],
        anneal_strategy=p["anneal_strategy"],
        div_factor=p["div_factor"],
        final_div_factor=p["final_div_factor"],
        three_phase=p["three_phase"],
        cycle_momentum=False,
    )
    assert_all_close(ours(schedule, base, total), torch_lrs(build, base, total))
    final = max_lr / p["div_factor"] / p["final_div_factor"]
    assert schedule.lr(0, base) == pytest.approx(max_lr / p["div_factor"])
    assert schedule.lr(total - 1, base) == pytest.approx(final)
    # torch raises past total_steps; we hold the final lr.
    assert [schedule.lr(t, base) for t in (total, total + 1, 10 * total)] == [schedule.lr(total - 1, base)] * 3


def test_range_test_is_the_tutorials_lr_finder():
    schedule = make_schedule("range-test")
    tutorial64 = 10 ** np.linspace(-2.0, 0.6, 1000)
    tutorial32 = (10 ** torch.linspace(-2.0, 0.6, 1000)).tolist()  # the tutorial's own float32 tensor
    got = [schedule.lr(t, base_lr=123.0) for t in range(1000)]  # base_lr is ignored
    assert got[0] == 0.01
    assert got[999] == pytest.approx(10**0.6, rel=1e-15) and got[999] == pytest.approx(3.981071705534972)
    assert_all_close(got, tutorial64.tolist(), rel=1e-12)
    assert_all_close(got, tutorial32, rel=2e-6)
    assert schedule.lr(1000, 1.0) == schedule.lr(50_000, 1.0) == got[999]
    assert all(b > a for a, b in zip(got, got[1:]))


# ------------------------------------------------------------------------------------------
# Plateau against ReduceLROnPlateau
# ------------------------------------------------------------------------------------------

# Improvements, a long stall, a tiny (sub-threshold) "improvement", noise, recovery, a NaN.
LOSSES = (
    [10.0, 9.0, 8.0, 7.5, 7.4]
    + [7.4] * 6
    + [7.3999] * 3
    + [7.41, 7.39, 7.40, 7.38] * 4
    + [5.0, 4.0]
    + [4.0 + 0.01 * k for k in range(25)]
    + [float("nan")] * 3
    + [3.0]
    + [3.0] * 40
)


def torch_plateau_lrs(base_lr: float, losses: list[float], **kwargs) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=base_lr)
    sched = torch_sched.ReduceLROnPlateau(opt, **kwargs)
    out = []
    for loss in losses:
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step(loss)
    out.append(opt.param_groups[0]["lr"])
    return out


def our_plateau_lrs(schedule: Plateau, base_lr: float, losses: list[float], pass_base: bool = True) -> list[float]:
    out = []
    for t, loss in enumerate(losses):
        out.append(schedule.lr(t, base_lr))
        schedule.observe(loss, base_lr=base_lr) if pass_base else schedule.observe(loss)
    out.append(schedule.lr(len(losses), base_lr))
    return out


@pytest.mark.parametrize(
    "kwargs",
    [
        {"patience": 3},
        {"patience": 0},
        {"patience": 2, "cooldown": 4},
        {"patience": 1, "cooldown": 2, "factor": 0.5, "threshold": 0.05, "threshold_mode": "abs"},
        {"patience": 2, "factor": 0.5, "min_lr": 0.01},
        {"patience": 1, "factor": 0.5, "eps": 0.02},
        {},
    ],
)
def test_plateau_matches_reducelronplateau(kwargs):
    base = 0.4
    want = torch_plateau_lrs(base, LOSSES, **kwargs)
    assert len(set(want)) > 1 or kwargs == {}, "the sequence should trigger reductions"
    got = our_plateau_lrs(make_schedule("plateau", **kwargs), base, LOSSES)
    assert_all_close(got, want)


def test_plateau_max_mode_matches_on_negated_losses():
    accuracy = [-x if not math.isnan(x) else x for x in LOSSES]
    kwargs = {"mode": "max", "patience": 2, "cooldown": 1, "factor": 0.3}
    want = torch_plateau_lrs(1.0, accuracy, **kwargs)
    assert_all_close(our_plateau_lrs(make_schedule("plateau", **kwargs), 1.0, accuracy), want)


def test_plateau_state_factor_reset_and_fresh_instances():
    schedule = make_schedule("plateau", patience=1, factor=0.5)
    assert schedule.stateful and all(not make_schedule(n).stateful for n in SCHEDULES if n != "plateau")
    for loss in [1.0, 1.0, 1.0]:
        schedule.observe(loss)
    assert schedule.current_factor == 0.5
    assert schedule.lr(0, 0.2) == schedule.lr(999, 0.2) == 0.1  # a factor on base_lr, whatever t
    assert schedule.lr(5, 2.0) == 1.0  # the user turning the lr knob still scales it
    other = make_schedule(schedule.name, **schedule.params)
    assert other.current_factor == 1.0  # each lane gets its own state
    schedule.reset()
    assert schedule.current_factor == 1.0 and schedule.best == math.inf
    # Without base_lr, min_lr and eps are fractions of base_lr; here eps stops the cuts at the same factor.
    assert_all_close(
        our_plateau_lrs(make_schedule("plateau", patience=3), 0.4, LOSSES, pass_base=False),
        torch_plateau_lrs(0.4, LOSSES, patience=3),
    )


# ------------------------------------------------------------------------------------------
# Properties: purity and positivity over random valid parameters
# ------------------------------------------------------------------------------------------

# Bounded so that positivity is a float fact as well as a maths one over t <= 2000
# (gamma**2000 stays normal for gamma >= 0.7), and eta_min / min_lr are positive.
FLOAT_BOUNDS = {"gamma": (0.7, 1.0), "eta_min": (1e-4, 1.0), "min_lr": (1e-6, 1.0)}


def value_strategy(spec: ParamSpec):
    if spec.kind == "choice":
        values = st.sampled_from(spec.choices)
    elif spec.kind is bool:
        values = st.booleans()
    elif spec.kind == "list[int]":
        values = st.lists(st.integers(1, 500), max_size=5)
    elif spec.kind is int:
        lo = int(spec.low if spec.low is not None else 0)
        hi = int(spec.high) if spec.high is not None else lo + 400
        values = st.integers(lo, min(hi, lo + 400))
    else:
        lo, hi = FLOAT_BOUNDS.get(spec.name, (spec.low if spec.low is not None else 0.0, spec.high))
        lo = max(lo, 1e-3) if spec.low_open or lo == 0.0 else lo
        hi = hi if hi is not None else lo + 100.0
        values = st.floats(lo, hi, exclude_max=spec.high_open and hi == spec.high, allow_nan=False)
    return st.one_of(st.none(), values) if spec.default is None else values


@st.composite
def schedules(draw):
    name = draw(st.sampled_from(sorted(SCHEDULES)))
    params = {p.name: draw(value_strategy(p)) for p in SCHEDULES[name].params}
    try:
        return make_schedule(name, **params)
    except ScheduleError:
        assume(False)  # a cross-parameter constraint (e.g. warmup_steps >= T_max)


@settings(max_examples=150, deadline=None)
@given(schedules(), st.lists(st.integers(0, 2000), min_size=1, max_size=40), st.floats(1e-3, 10.0))
def test_schedules_are_pure_and_positive(schedule, ts, base_lr):
    forward = [schedule.lr(t, base_lr) for t in ts]
    backward = [schedule.lr(t, base_lr) for t in reversed(ts)][::-1]
    by_sorted = {t: schedule.lr(t, base_lr) for t in sorted(ts)}
    rebuilt = make_schedule(schedule.name, **schedule.params)  # the params round-trip
    assert forward == backward == [by_sorted[t] for t in ts] == [rebuilt.lr(t, base_lr) for t in ts]
    assert all(math.isfinite(v) and v > 0 for v in forward), forward
    assert isinstance(schedule, Schedule) and schedule.label()


@settings(max_examples=60, deadline=None)
@given(schedules())
def test_params_round_trip_through_make_schedule(schedule):
    rebuilt = make_schedule(schedule.name, **schedule.params)
    assert rebuilt.params == schedule.params and rebuilt.label() == schedule.label()
    if not schedule.stateful:
        assert rebuilt == schedule


# ------------------------------------------------------------------------------------------
# Registry, labels, validation and error messages
# ------------------------------------------------------------------------------------------


def test_registry_defaults_match_the_classes_and_the_brief():
    for name, spec in SCHEDULES.items():
        schedule = make_schedule(name)
        assert schedule.name == name
        assert spec.description and "\n" not in spec.description
        defaults = {p.name: list(p.default) if isinstance(p.default, tuple) else p.default for p in spec.params}
        assert schedule.params == defaults, name
    assert make_schedule("multistep").params == {"milestones": [100, 200], "gamma": 0.1}
    assert make_schedule("range-test").params["lr_max"] == 10**0.6
    assert set(SCHEDULES) - set(SCHEDULE_CYCLE) == {"range-test", "plateau", "multistep"}
    assert SCHEDULE_CYCLE[:3] == ("constant", "step", "cosine")


def test_cycle_order_and_next_name():
    assert next_schedule_name("constant") == "step"
    assert next_schedule_name("inverse-time") == "constant"  # wraps
    assert next_schedule_name("plateau") == "constant"  # by-name-only schedules start the cycle
    seen, name = [], "constant"
    for _ in SCHEDULE_CYCLE:
        seen.append(name)
        name = next_schedule_name(name)
    assert tuple(seen) == SCHEDULE_CYCLE


def test_labels():
    assert make_schedule("step", step_size=70, gamma=0.5).label() == "step(70, 0.5)"
    assert make_schedule("cosine").label() == "cosine(T=300)"
    assert make_schedule("constant").label() == "constant"
    assert make_schedule("multistep").label() == "multistep([100, 200], 0.1)"
    assert make_schedule("warmup-cosine").label() == "warmup-cosine(30, T=300)"
    assert len({make_schedule(n).label() for n in SCHEDULES}) == len(SCHEDULES)


def test_integral_floats_accepted_for_ints_and_normalised():
    schedule = make_schedule("step", step_size=70.0, gamma=1)
    assert schedule.params == {"step_size": 70, "gamma": 1.0}
    assert type(schedule.params["step_size"]) is int and type(schedule.params["gamma"]) is float
    assert make_schedule("multistep", milestones=(200.0, 50)).params["milestones"] == [50, 200]
    assert make_schedule("Warmup_Cosine").name == "warmup-cosine"  # forgiving about case and _


def test_unknown_schedule_suggests_and_lists_choices():
    with pytest.raises(ScheduleError) as info:
        make_schedule("cosin")
    message = str(info.value)
    assert "unknown schedule 'cosin'; did you mean 'cosine'?" in message
    assert all(name in message for name in SCHEDULES)
    assert isinstance(info.value, ValueError) and "\n" not in message


def test_unknown_param_names_it_and_lists_valid_ones():
    with pytest.raises(ScheduleError, match=r"has no parameter 'gama'; did you mean 'gamma'\?.*step_size, gamma"):
        make_schedule("step", gama=0.5)
    with pytest.raises(ScheduleError, match=r"'constant' has no parameter 'gamma'.*parameters: none"):
        make_schedule("constant", gamma=0.5)


@pytest.mark.parametrize(
    "name, params, pattern",
    [
        ("step", {"step_size": 70.5}, r"step_size: must be an int >= 1, got 70.5"),
        ("step", {"step_size": 0}, r"step_size: must be an int >= 1, got 0"),
        ("step", {"step_size": True}, r"step_size: must be an int"),
        ("step", {"step_size": "70"}, r"step_size: must be an int >= 1, got '70'"),
        ("step", {"gamma": 1.5}, r"gamma: must be a number in \(0, 1\], got 1.5"),
        ("step", {"gamma": 0.0}, r"gamma: must be a number in \(0, 1\]"),
        ("step", {"gamma": None}, r"gamma: must be a number in \(0, 1\], got None"),
        ("exponential", {"gamma": float("nan")}, r"gamma: must be a number"),
        ("cosine", {"eta_min": -0.1}, r"eta_min: must be a number >= 0"),
        ("multistep", {"milestones": "100,200"}, r"milestones: must be a list of ints, each >= 1"),
        ("multistep", {"milestones": [100, 0]}, r"milestones: must be a list of ints, each >= 1, got 0"),
        ("cyclic", {"mode": "triangle"}, r"mode: must be one of 'triangular', .*got 'triangle'; did you mean 'triangular'\?"),
        ("cyclic", {"max_lr": -1.0}, r"max_lr: must be a number > 0 \(or none\)"),
        ("one-cycle", {"three_phase": "yes"}, r"three_phase: must be true or false"),
        ("one-cycle", {"pct_start": 1.0}, r"pct_start: must be a number in \(0, 1\)"),
        ("one-cycle", {"pct_start": 0.001}, r"pct_start: 0.001 with total_steps=300 leaves a phase with no steps"),
        ("one-cycle", {"pct_start": 0.6, "three_phase": True}, r"leaves a phase with no steps"),
        ("warmup-cosine", {"warmup_steps": 300}, r"T_max: must be > warmup_steps.*T_max=300, warmup_steps=300"),
        ("range-test", {"lr_min": 1.0, "lr_max": 0.5}, r"lr_max: must be > lr_min"),
        ("plateau", {"factor": 1.0}, r"factor: must be a number in \(0, 1\)"),
        ("plateau", {"threshold_mode": "relative"}, r"threshold_mode: must be one of 'rel', 'abs'"),
        ("cosine-restarts", {"T_mult": 0}, r"T_mult: must be an int in \[1, 16\]"),
    ],
)
def test_bad_values_name_the_param_and_the_allowed_range(name, params, pattern):
    with pytest.raises(ScheduleError, match=pattern) as info:
        make_schedule(name, **params)
    assert info.value.key in {*params, "T_max", "lr_max"} and "\n" not in str(info.value)


def test_direct_construction_validates_too_and_negative_step_is_refused():
    from sgdtui.engine.schedules import Cosine, Step

    assert Step(step_size=70.0).step_size == 70
    with pytest.raises(ScheduleError, match="T_max: must be an int >= 1"):
        Cosine(T_max=-3)
    with pytest.raises(ScheduleError, match="step t must be >= 0"):
        make_schedule("cosine").lr(-1, 0.1)


def test_schedules_scale_with_base_lr():
    for name in ("step", "multistep", "exponential", "inverse-time", "cosine", "cosine-restarts", "warmup-cosine", "cyclic", "one-cycle"):
        schedule = make_schedule(name)
        for t in (0, 17, 150, 299):
            assert schedule.lr(t, 0.2) == pytest.approx(2 * schedule.lr(t, 0.1), rel=1e-12), (name, t)


def test_engine_module_does_not_import_textual_or_torch():
    code = (
        "import sys, sgdtui.engine.schedules; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'torch')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------------------
# Coupling rules and temperature (course notes 000)
# ------------------------------------------------------------------------------------------


def test_coupling_formulas():
    assert COUPLINGS == ("none", "linear", "sqrt", "momentum", "adam")
    assert couple("none", 0.01, 64) == 0.01
    assert couple("adam", 0.01, 64, eps=1e-3) == pytest.approx(1e-3 * 8 * 64 * 0.01)  # eta = eps0 sqrt(B) B eta0
    with pytest.raises(CouplingError, match="needs an optimizer with eps"):
        couple("adam", 0.01, 64)
    assert couple("linear", 0.01, 64) == pytest.approx(0.64)
    assert couple("sqrt", 0.01, 64) == pytest.approx(0.08)
    assert couple("momentum", 0.01, 64, momentum=0.9) == pytest.approx(0.064)
    assert couple("momentum", 0.01, 64) == couple("linear", 0.01, 64)  # mu = 0: eta = B eta0
    assert couple("linear", 0.01, 1) == couple("sqrt", 0.01, 1) == 0.01  # batch 1 is the reference
    assert couple("linear", 0.01, 64.0) == pytest.approx(0.64)  # an integral float batch is fine


def test_temperature_formula_and_its_invariance_under_the_couplings():
    assert temperature(0.64, 64) == pytest.approx(0.01)
    assert temperature(0.1, 10, heavy_ball_momentum=0.9) == pytest.approx(0.1)
    assert temperature(0.1, 1) == 0.1
    for batch in (1, 8, 256):
        for mu in (0.0, 0.5, 0.9, 0.99):
            # eta = (1 - mu) B eta0 keeps the temperature at eta0 (the notes' point).
            assert temperature(couple("momentum", 0.003, batch, mu), batch, mu) == pytest.approx(0.003, rel=1e-12)
        assert temperature(couple("linear", 0.003, batch), batch) == pytest.approx(0.003, rel=1e-12)
        # With eta fixed, a bigger batch is a colder run.
        assert temperature(couple("none", 0.003, batch), batch) == pytest.approx(0.003 / batch)


def test_coupling_and_temperature_errors():
    with pytest.raises(CouplingError, match=r"coupling: unknown coupling 'lineer'; did you mean 'linear'\?.*none, linear, sqrt, momentum"):
        couple("lineer", 0.1, 4)
    with pytest.raises(CouplingError, match=r"batch size must be an int >= 1, got 0"):
        couple("linear", 0.1, 0)
    with pytest.raises(CouplingError, match=r"batch size must be an int >= 1, got 2.5"):
        couple("linear", 0.1, 2.5)
    with pytest.raises(CouplingError, match=r"momentum must be in \[0, 1\), got 1.0"):
        couple("momentum", 0.1, 4, momentum=1.0)
    with pytest.raises(ValueError, match=r"heavy_ball_momentum must be in \[0, 1\), got -0.1"):
        temperature(0.1, 4, heavy_ball_momentum=-0.1)
    with pytest.raises(ValueError, match=r"batch size must be an int >= 1"):
        temperature(0.1, -2)
    assert issubclass(CouplingError, ValueError) and issubclass(ScheduleError, ValueError)


def test_the_adam_coupling_rescales_eps_and_the_windows():
    from sgdtui.engine.schedules import adam_hyper

    out = adam_hyper({"lr": 0.1, "eps": 1e-8, "betas": (0.99, 0.999)}, 16)
    assert out["eps"] == pytest.approx(4e-8)  # eps0 sqrt(B)
    # N0 = 100 and 1000 examples: 100/16 = 6.25 and 62.5 steps (max(1, N0/B), not the notes' min).
    assert out["betas"] == pytest.approx((1 - 1 / 6.25, 1 - 1 / 62.5))
    assert adam_hyper({"eps": 1e-8, "betas": (0.5, 0.9)}, 64)["betas"] == (0.0, 0.0)  # windows of one step
    assert adam_hyper({"eps": 1e-8, "n_g": 10.0, "n_s": 1000.0}, 4) == {"eps": 2e-8, "n_g": 2.5, "n_s": 250.0}
