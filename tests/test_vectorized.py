"""The vectorized optimizer core steps bit for bit like torch.optim and the course variants, per
optimizer, and a per-row hyperparameter steps each row exactly like the scalar run of its value."""

from __future__ import annotations

import math

import pytest
import torch

from sgdtui.engine.optimizers import OPTIMIZERS, set_hyper
from sgdtui.engine.vectorized import VECTOR_OPTIMIZERS, Rows, make_vector_optimizer, rowwise

STEPS = 40
STARTS = torch.tensor([[-1.5, 2.0], [0.3, -0.7], [2.5, 1.0], [-0.2, 0.05], [1.0, 1.0], [4.0, -3.0]],
                      dtype=torch.float64)

# Each optimizer with its defaults and with the options that change its code path.
CONFIGS = {
    "sgd": [{}, {"momentum": 0.9, "weight_decay": 0.01}, {"momentum": 0.8, "nesterov": True},
            {"momentum": 0.5, "dampening": 0.3}],
    "momentum": [{}, {"weight_decay": 0.1}],
    "nesterov": [{}],
    "adagrad": [{}, {"lr_decay": 0.01, "initial_accumulator_value": 0.5, "weight_decay": 0.01}],
    "rmsprop": [{}, {"centered": True, "momentum": 0.5}, {"momentum": 0.9, "weight_decay": 0.1}],
    "adam": [{}, {"amsgrad": True, "weight_decay": 0.01}, {"betas": (0.5, 0.9)}],
    "adamw": [{}, {"amsgrad": True}],
    "nadam": [{}, {"momentum_decay": 0.01, "weight_decay": 0.02}],
    "radam": [{}, {"betas": (0.8, 0.99), "weight_decay": 0.01}],
    "ema-momentum": [{}, {"beta": 0.5, "weight_decay": 0.1}],
    "vanilla-momentum": [{}, {"weight_decay": 0.1}],
    "adam-nobias": [{}, {"weight_decay": 0.05}],
    "adam-centered": [{}, {"betas": (0.9, 0.999)}],  # mismatched windows: the guard acts
    "adam-minbias": [{}, {"n_g": 3.0, "n_s": 5.0, "weight_decay": 0.01}],
    "sgld": [{}, {"temperature": 0.5, "weight_decay": 0.1}],
    "lars": [{}, {"weight_decay": 0.01, "trust": 0.5}],
    "lamb": [{}, {"weight_decay": 0.01}],
    "normalized-gd": [{}, {"weight_decay": 0.1}],
}


def grad_of(w: torch.Tensor) -> torch.Tensor:
    """An elementwise gradient field with feedback from the position (same numbers in any layout)."""
    return torch.sin(3.0 * w) + 0.5 * w


def lr_at(base: float, t: int) -> float:
    return base * (1.0 + 0.25 * math.sin(0.7 * t))  # a changing lr, as a schedule gives


def reference_run(name: str, hyper: dict, starts: torch.Tensor, seed: int = 7, change=None) -> list[torch.Tensor]:
    spec = OPTIMIZERS[name]
    w = starts.clone().requires_grad_(True)
    gen = torch.Generator().manual_seed(seed)
    opt = spec.make([w], hyper, generator=gen, per_row=True)
    out = []
    for t in range(STEPS):
        if change is not None and t == STEPS // 2:
            set_hyper(opt, *change)
        lr = lr_at(spec.validate(hyper)["lr"], t)
        for group in opt.param_groups:
            group["lr"] = lr
        w.grad = grad_of(w.detach())
        opt.step()
        out.append(w.detach().clone())
    return out


def vector_run(name: str, hyper: dict, starts: torch.Tensor, seed: int = 7, change=None, tile: int | None = None,
               lr_rows: Rows | None = None) -> list[torch.Tensor]:
    """The same run in the (2, n) layout; ``tile``: every row draws the noise of a 1-row run."""
    spec = OPTIMIZERS[name]
    p = starts.T.contiguous()
    gen = torch.Generator().manual_seed(seed)
    shape = (1, 2) if tile else tuple(starts.shape)

    def noise():
        xi = torch.randn(shape, generator=gen, dtype=torch.float64).T
        return xi.repeat(1, tile).contiguous() if tile else xi.contiguous()

    validated = {**spec.validate({k: v for k, v in hyper.items() if not _has_rows(v)}),
                 **{k: v for k, v in hyper.items() if _has_rows(v)}}
    opt = make_vector_optimizer(name, validated, spec.fixed, noise=noise)
    base = validated["lr"]
    out = []
    for t in range(STEPS):
        if change is not None and t == STEPS // 2:
            set_hyper(opt, *change)
        lr = rowwise(lambda b: lr_at(b, t), lr_rows if lr_rows is not None else base)
        g = grad_of(p.T.contiguous()).T.contiguous()
        opt.step(p, g, lr)
        out.append(p.T.clone())
    return out


def _has_rows(v) -> bool:
    return isinstance(v, Rows) or (isinstance(v, tuple) and any(isinstance(x, Rows) for x in v))


def test_every_registry_optimizer_has_a_vectorized_twin():
    assert set(VECTOR_OPTIMIZERS) == set(OPTIMIZERS)
    assert set(CONFIGS) == set(OPTIMIZERS)


@pytest.mark.parametrize("name,hyper", [(n, h) for n, hs in CONFIGS.items() for h in hs],
                         ids=[f"{n}-{i}" for n, hs in CONFIGS.items() for i in range(len(hs))])
def test_scalar_hyperparameters_step_bitwise_like_torch(name, hyper):
    want = reference_run(name, hyper, STARTS)
    got = vector_run(name, hyper, STARTS)
    for t, (a, b) in enumerate(zip(want, got)):
        assert torch.equal(a, b), f"{name} {hyper}: step {t + 1} differs by {float((a - b).abs().max())}"
    assert not torch.equal(want[-1], STARTS), "the run moved"


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_live_change_is_picked_up_like_torch(name):
    spec = OPTIMIZERS[name]
    key = next((hp.name for hp in spec.hyper if hp.name != "lr" and hp.kind is float), None)
    if key is None:
        pytest.skip("no float hyperparameter besides lr")
    value = spec.param(key).nudge(spec.param(key).default, +1)
    want = reference_run(name, {}, STARTS, change=(key, value))
    got = vector_run(name, {}, STARTS, change=(key, value))
    assert all(torch.equal(a, b) for a, b in zip(want, got))


# Per-row hyperparameters: each optimizer's lr and its decay or another hyperparameter, with
# values that take different branches (momentum or weight decay 0 in some rows).
def row_cases():
    cases = []
    for name, spec in sorted(OPTIMIZERS.items()):
        names = [hp.name for hp in spec.hyper if hp.name != "lr" and hp.kind in (float, "pair")]
        for key in names[:3]:
            hp = spec.param(key)
            if hp.kind == "pair":
                values = [(0.9, 0.999), (0.5, 0.999), (0.9, 0.99), (0.5, 0.99), (0.0, 0.9), (0.9, 0.999)]
            elif key == "momentum" and name == "nesterov":  # Nesterov needs momentum > 0
                values = [0.5, 0.9, 0.99, 0.5, 0.1, 0.9]
            elif key in ("weight_decay", "momentum", "dampening", "lr_decay", "initial_accumulator_value"):
                values = [0.0, 0.5, 0.0, 0.1, 0.9, 0.5]
            elif key in ("n_g", "n_s"):
                values = [1.0, 3.0, 10.0, 3.0, 1000.0, 2.0]
            elif hp.step == "decay":
                values = [0.5, 0.9, 0.99, 0.5, 0.0, 0.9]
            else:
                values = [hp.default, hp.default * 2, hp.default / 3, hp.default * 2, hp.default, hp.default * 5]
            cases.append((name, key, values))
    return cases


@pytest.mark.parametrize("name,key,values", row_cases(), ids=[f"{n}-{k}" for n, k, _ in row_cases()])
def test_each_row_of_a_per_row_run_equals_the_scalar_run_of_its_values(name, key, values):
    spec = OPTIMIZERS[name]
    lrs = [spec.param("lr").default * f for f in (1.0, 0.5, 2.0, 1.0, 0.3, 0.5)]
    if name == "sgd" and key == "dampening":
        extra = {"momentum": 0.9}
    else:
        extra = {}
    if isinstance(values[0], tuple):
        rows_value = (Rows.of([v[0] for v in values]), Rows.of([v[1] for v in values]))
    else:
        rows_value = Rows.of(values)
    got = vector_run(name, {**extra, key: rows_value}, STARTS, tile=len(STARTS), lr_rows=Rows.of(lrs))
    for r in range(len(STARTS)):
        want = reference_run(name, {**extra, key: values[r], "lr": lrs[r]}, STARTS[r:r + 1])
        for t in (0, STEPS // 2, STEPS - 1):
            assert torch.equal(got[t][r:r + 1], want[t]), f"{name} {key}={values[r]} row {r} step {t + 1}"


def test_rows_keep_distinct_values_and_rowwise_evaluates_per_combination():
    rows = Rows.of([0.5, -0.0, 0.0, 0.5, 2.0])
    assert rows.uniques == (0.5, -0.0, 0.0, 2.0)
    assert rows.tolist() == [0.5, -0.0, 0.0, 0.5, 2.0]
    other = Rows.of([1.0, 1.0, 2.0, 3.0, 1.0])
    joint = rowwise(lambda a, b: a ** b, rows, other)
    assert joint.tolist() == [a ** b for a, b in zip(rows.tolist(), other.tolist())]
    assert rowwise(lambda a: a + 1, 2.0) == 3.0
