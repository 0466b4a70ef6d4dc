"""The optimizer registry: torch-backed names step bitwise like torch.optim; key steps; validation."""

from __future__ import annotations

import math

import pytest
import torch

from sgdtui.engine.optimizers import KEY_FACTOR, OPTIMIZERS, OptimizerConfigError, get_optimizer, set_hyper
from sgdtui.engine.params import ParamSpec, SettingError

# registry name, its hyperparameters (non-defaults, to exercise them), the torch optimizer and its arguments
TORCH_BACKED = [
    ("sgd", {"lr": 0.05}, torch.optim.SGD, {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.8, "dampening": 0.1, "weight_decay": 0.01}, torch.optim.SGD,
     {"lr": 0.05, "momentum": 0.8, "dampening": 0.1, "weight_decay": 0.01}),
    ("momentum", {"lr": 0.05, "momentum": 0.7}, torch.optim.SGD, {"lr": 0.05, "momentum": 0.7}),
    ("nesterov", {"lr": 0.05, "momentum": 0.9}, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("adagrad", {"lr": 0.3, "lr_decay": 0.01, "initial_accumulator_value": 0.1}, torch.optim.Adagrad,
     {"lr": 0.3, "lr_decay": 0.01, "initial_accumulator_value": 0.1}),
    ("rmsprop", {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True}, torch.optim.RMSprop,
     {"lr": 0.01, "alpha": 0.9, "momentum": 0.5, "centered": True}),
    ("adam", {"lr": 0.1, "betas": (0.8, 0.99)}, torch.optim.Adam, {"lr": 0.1, "betas": (0.8, 0.99)}),
    ("adam", {"lr": 0.1, "amsgrad": True, "weight_decay": 0.1}, torch.optim.Adam,
     {"lr": 0.1, "amsgrad": True, "weight_decay": 0.1}),
    ("adamw", {"lr": 0.1}, torch.optim.AdamW, {"lr": 0.1, "weight_decay": 0.01}),
    ("nadam", {"lr": 0.1, "momentum_decay": 0.01}, torch.optim.NAdam, {"lr": 0.1, "momentum_decay": 0.01}),
    ("radam", {"lr": 0.1}, torch.optim.RAdam, {"lr": 0.1}),
]


@pytest.mark.parametrize("name,hyper,torch_cls,torch_kwargs", TORCH_BACKED,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(TORCH_BACKED)])
def test_torch_backed_optimizers_step_bitwise_like_torch(name, hyper, torch_cls, torch_kwargs):
    gen = torch.Generator().manual_seed(42)
    start = torch.randn(16, 2, generator=gen, dtype=torch.float64)
    grads = [torch.randn(16, 2, generator=gen, dtype=torch.float64) for _ in range(40)]
    ours_p = start.clone().requires_grad_(False)
    theirs_p = start.clone()
    ours = get_optimizer(name).make([ours_p], hyper)
    theirs = torch_cls([theirs_p], **torch_kwargs)
    for g in grads:
        ours_p.grad = g.clone()
        theirs_p.grad = g.clone()
        ours.step()
        theirs.step()
        assert torch.equal(ours_p, theirs_p)
    assert not torch.equal(ours_p, start)


def test_every_optimizer_builds_and_states_its_update_rule():
    for spec in OPTIMIZERS.values():
        assert spec.update_rule and spec.description
        assert spec.param_names()[0] == "lr"
        p = torch.zeros(3, 2, dtype=torch.float64)
        opt = spec.make([p], {}, generator=torch.Generator().manual_seed(0), per_row=True)
        p.grad = torch.ones(3, 2, dtype=torch.float64)
        opt.step()
        assert torch.isfinite(p).all()
        assert not torch.equal(p, torch.zeros(3, 2, dtype=torch.float64)), spec.name


def test_set_hyper_is_a_live_change():
    p = torch.zeros(1, 2, dtype=torch.float64)
    opt = get_optimizer("sgd").make([p], {"lr": 1.0})
    set_hyper(opt, "lr", 0.25)
    p.grad = torch.ones(1, 2, dtype=torch.float64)
    opt.step()
    assert p.tolist() == [[-0.25, -0.25]]


def test_lr_nudge_is_a_quarter_decade_and_clamped():
    lr = get_optimizer("adam").param("lr")
    assert lr.nudge(0.1, +1) == pytest.approx(0.1 * 10 ** 0.25, rel=1e-15)
    assert lr.nudge(0.1, -1) == pytest.approx(0.1 / 10 ** 0.25, rel=1e-15)
    v = 0.1
    for _ in range(4):
        v = lr.nudge(v, +1)
    assert v == pytest.approx(1.0, rel=1e-12)
    assert lr.nudge(1e6, +1) == 1e6
    assert KEY_FACTOR == 10 ** 0.25


def test_decay_nudge_moves_additively_in_log_one_minus_beta():
    mu = get_optimizer("momentum").param("momentum")
    up = mu.nudge(0.9, +1)
    assert math.log(1 - up) - math.log(1 - 0.9) == pytest.approx(-math.log(10) / 4)
    v = 0.9
    for _ in range(4):
        v = mu.nudge(v, +1)
    assert v == pytest.approx(0.99, abs=1e-12)
    down = mu.nudge(0.9, -1)
    assert math.log(1 - down) - math.log(1 - 0.9) == pytest.approx(math.log(10) / 4)
    # clamped: never reaches the open end 1 nor goes below 0
    v = 0.999999
    for _ in range(10):
        v = mu.nudge(v, +1)
    assert v < 1.0 and mu.validate(v) == v
    assert mu.nudge(0.0, -1) == 0.0
    # betas: the keys move beta1 only
    betas = get_optimizer("adam").param("betas")
    b1, b2 = betas.nudge((0.9, 0.999), +1)
    assert b2 == 0.999 and b1 == pytest.approx(1 - 0.1 / 10 ** 0.25)


def test_other_nudges():
    assert get_optimizer("sgd").param("nesterov").nudge(False, +1) is True
    n_g = get_optimizer("adam-minbias").param("n_g")
    assert n_g.nudge(10.0, +1) == pytest.approx(10 * 10 ** 0.25)
    assert n_g.nudge(1.0, -1) == 1.0  # clamped at its low end
    wd = get_optimizer("sgd").param("weight_decay")  # log steps, entered from and left to 0
    assert wd.nudge(0.0, +1) == 1e-4
    assert wd.nudge(1e-4, +1) == pytest.approx(1e-4 * 10 ** 0.25)
    assert wd.nudge(1e-3, -1) == pytest.approx(1e-3 / 10 ** 0.25)
    assert wd.nudge(1e-4, -1) == 0.0
    assert wd.nudge(0.0, -1) == 0.0
    counted = ParamSpec("k", 3, int, 1, 10, increment=1)
    assert counted.nudge(3, +1) == 4 and counted.nudge(1, -1) == 1 and counted.nudge(10, +1) == 10


@pytest.mark.parametrize("name,key,value,reason", [
    ("sgd", "lr", -1, "must be a number in (0, 1e+06], got -1"),
    ("sgd", "lr", 0, "must be a number in (0, 1e+06], got 0"),
    ("momentum", "momentum", 1.5, "must be a number in [0, 1), got 1.5"),
    ("momentum", "momentum", 1.0, "must be a number in [0, 1), got 1.0"),
    ("adam", "lr", "fast", "must be a number in (0, 1e+06], got 'fast'"),
    ("adam", "betas", [0.9], "must be a pair of numbers, each in [0, 1), got [0.9]"),
    ("adam", "betas", (0.9, 1.0), "must be a pair of numbers, each in [0, 1), got (0.9, 1.0)"),
    ("adam", "amsgrad", 1, "must be true or false, got 1"),
    ("sgd", "lr", float("nan"), "must be a number in (0, 1e+06], got nan"),
    ("sgd", "lr", True, "must be a number in (0, 1e+06], got True"),
])
def test_validation_errors_name_the_key_and_range(name, key, value, reason):
    with pytest.raises(OptimizerConfigError) as caught:
        get_optimizer(name).validate({key: value})
    assert isinstance(caught.value, SettingError)
    assert (caught.value.key, caught.value.reason) == (key, reason)
    assert str(caught.value) == f"{key}: {reason}"


def test_unknown_names_suggest():
    with pytest.raises(OptimizerConfigError, match="did you mean 'adam'"):
        get_optimizer("adma")
    with pytest.raises(OptimizerConfigError, match="has no hyperparameter 'momentun'; did you mean 'momentum'"):
        get_optimizer("sgd").validate({"momentun": 0.9})
    with pytest.raises(OptimizerConfigError, match="nesterov"):
        get_optimizer("sgd").validate({"nesterov": True})


def test_defaults_and_momentum_of():
    adam = get_optimizer("adam")
    assert adam.defaults()["betas"] == (0.9, 0.999)
    assert adam.momentum_of(adam.defaults()) == 0.0
    mom = get_optimizer("momentum")
    assert mom.momentum_of({"momentum": 0.8}) == 0.8
    assert adam.decay_value(adam.defaults()) == 0.9
    assert get_optimizer("adam-minbias").decay_value({"n_g": 10.0}) == pytest.approx(0.9)
