"""The course material's optimizers (sgdtui.engine.variants) against plain transcriptions of
their formulas, against torch's own SGD where they should agree, and for row isolation."""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sgdtui.engine.variants import (
    LAMB,
    LARS,
    SGLD,
    VARIANTS,
    AdamCentered,
    AdamMinBias,
    AdamNoBias,
    EMAMomentum,
    VanillaMomentum,
)

FEW = settings(max_examples=30, deadline=None)
RTOL, ATOL = 1e-9, 1e-12


# ---------------------------------------------------------------- plain transcriptions (numpy)
def _norm(x: np.ndarray, per_row: bool) -> np.ndarray:
    if per_row and x.ndim == 2:
        return np.sqrt((x * x).sum(axis=1, keepdims=True))
    return np.sqrt((x * x).sum())


def ref_ema(p, grads, lrs, beta=0.9, weight_decay=0.0):
    p, m, out = p.copy(), np.zeros_like(p), []
    for g, lr in zip(grads, lrs):
        g = g + weight_decay * p
        m = beta * m + (1 - beta) * g
        p = p - lr * m
        out.append(p)
    return np.array(out)


def ref_vanilla(p, grads, lrs, momentum=0.9, weight_decay=0.0):
    p, v, out = p.copy(), np.zeros_like(p), []
    for g, lr in zip(grads, lrs):
        g = g + weight_decay * p
        v = momentum * v + lr * g
        p = p - v
        out.append(p)
    return np.array(out)


def ref_adam_nobias(p, grads, lrs, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    (b1, b2), p, m, s, out = betas, p.copy(), np.zeros_like(p), np.zeros_like(p), []
    for g, lr in zip(grads, lrs):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        p = p - lr * m / np.sqrt(s + eps)
        out.append(p)
    return np.array(out)


def ref_adam_centered(p, grads, lrs, betas=(0.99, 0.99), eps=1e-8, weight_decay=0.0):
    (b1, b2), p, m, s, out = betas, p.copy(), np.zeros_like(p), np.zeros_like(p), []
    for g, lr in zip(grads, lrs):
        g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        variance = s - m * m
        p = p - lr * m / np.sqrt(np.where(variance > 0, variance, s) + eps)
        out.append(p)
    return np.array(out)


def ref_adam_minbias(p, grads, lrs, n_g=10, n_s=1000, eps=1e-8, weight_decay=0.0):
    p, m, s, out = p.copy(), np.zeros_like(p), np.zeros_like(p), []
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        g = g + weight_decay * p
        a_g, a_s = 1 / min(t, n_g), 1 / min(t, n_s)
        m = (1 - a_g) * m + a_g * g
        s = (1 - a_s) * s + a_s * g * g
        p = p - lr * m / (np.sqrt(s) + eps)
        out.append(p)
    return np.array(out)


def ref_sgld(p, grads, lrs, temperature=0.01, weight_decay=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    p, out = p.copy(), []
    for g, lr in zip(grads, lrs):
        g = g + weight_decay * p
        xi = torch.randn(p.shape, generator=gen, dtype=torch.float64).numpy()
        p = p - lr * g + math.sqrt(2 * lr * temperature) * xi
        out.append(p)
    return np.array(out)


def ref_lars(p, grads, lrs, momentum=0.9, weight_decay=0.0, trust=1.0, eps=1e-9, per_row=False):
    p, v, out = p.copy(), np.zeros_like(p), []
    for g, lr in zip(grads, lrs):
        wn, gn = _norm(p, per_row), _norm(g, per_row)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            local = trust * wn / (gn + weight_decay * wn + eps)
        local = np.where((wn == 0) | (gn == 0), 1.0, local)
        v = momentum * v + lr * local * (g + weight_decay * p)
        p = p - v
        out.append(p)
    return np.array(out)


def ref_lamb(p, grads, lrs, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, per_row=False):
    (b1, b2), p, m, v, out = betas, p.copy(), np.zeros_like(p), np.zeros_like(p), []
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        r = m_hat / (np.sqrt(v_hat) + eps) + weight_decay * p
        wn, rn = _norm(p, per_row), _norm(r, per_row)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            ratio = np.where((wn == 0) | (rn == 0), 1.0, wn / rn)
        p = p - lr * ratio * r
        out.append(p)
    return np.array(out)


def ref_normalized_gd(p, grads, lrs, weight_decay=0.0, per_row=False):
    p, out = p.copy(), []
    for g, lr in zip(grads, lrs):
        g = g + weight_decay * p
        n = _norm(g, per_row)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = p - lr * np.where(n == 0, 0.0, g / np.where(n == 0, 1.0, n))
        out.append(p)
    return np.array(out)


REFERENCES = {
    "ema-momentum": ref_ema,
    "vanilla-momentum": ref_vanilla,
    "adam-nobias": ref_adam_nobias,
    "adam-centered": ref_adam_centered,
    "adam-minbias": ref_adam_minbias,
    "sgld": ref_sgld,
    "lars": ref_lars,
    "lamb": ref_lamb,
    "normalized-gd": ref_normalized_gd,
}

# ---------------------------------------------------------------- strategies
unit = st.floats(0.0, 0.99)
decay = st.one_of(st.just(0.0), st.floats(0.0, 0.2))
betas = st.tuples(unit, unit)
HYPERPARAMETERS = {
    "ema-momentum": st.fixed_dictionaries({"beta": unit, "weight_decay": decay}),
    "vanilla-momentum": st.fixed_dictionaries({"momentum": unit, "weight_decay": decay}),
    "adam-nobias": st.fixed_dictionaries(
        {"betas": betas, "eps": st.floats(1e-8, 1e-2), "weight_decay": decay}
    ),
    "adam-centered": st.fixed_dictionaries(
        {"betas": betas, "eps": st.floats(1e-8, 1e-2), "weight_decay": decay}
    ),
    "adam-minbias": st.fixed_dictionaries(
        {
            "n_g": st.integers(1, 6),
            "n_s": st.one_of(st.integers(1, 8), st.floats(1.0, 8.0)),
            "eps": st.floats(1e-8, 1e-2),
            "weight_decay": decay,
        }
    ),
    "sgld": st.fixed_dictionaries({"temperature": st.floats(0.0, 1.0), "weight_decay": decay}),
    "lars": st.fixed_dictionaries(
        {
            "momentum": unit,
            "weight_decay": decay,
            "trust": st.floats(1e-3, 2.0),
            "eps": st.floats(0.0, 1e-3),
            "per_row": st.booleans(),
        }
    ),
    "lamb": st.fixed_dictionaries(
        {"betas": betas, "eps": st.floats(1e-8, 1e-2), "weight_decay": decay, "per_row": st.booleans()}
    ),
    "normalized-gd": st.fixed_dictionaries({"weight_decay": decay, "per_row": st.booleans()}),
}


@st.composite
def runs(draw):
    """(p0 of shape (N, 2), gradients of shape (steps, N, 2), a per-step lr schedule)."""
    rows, steps = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    values = st.floats(-5.0, 5.0, allow_subnormal=False)
    p0 = draw(hnp.arrays(np.float64, (rows, 2), elements=values))
    grads = draw(hnp.arrays(np.float64, (steps, rows, 2), elements=values))
    lrs = draw(st.lists(st.floats(0.0, 0.3), min_size=steps, max_size=steps))
    return p0, grads, lrs


def make(name: str, params, lr: float = 0.1, **kwargs) -> torch.optim.Optimizer:
    return VARIANTS[name](params, lr=lr, **kwargs)


def run_optimizer(name, p0, grads, lrs, seed=0, **kwargs) -> np.ndarray:
    """Step a float64 copy of p0 with the given gradients, setting group["lr"] live each step."""
    p = torch.tensor(p0, dtype=torch.float64)
    if name == "sgld":
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    opt = make(name, [p], lr=lrs[0], **kwargs)
    out = []
    for g, lr in zip(grads, lrs):
        opt.param_groups[0]["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.numpy().copy())
    return np.array(out)


# ---------------------------------------------------------------- the registry
def test_registry_maps_every_name_to_an_optimizer_class():
    assert set(VARIANTS) == {
        "ema-momentum",
        "vanilla-momentum",
        "adam-nobias",
        "adam-centered",
        "adam-minbias",
        "sgld",
        "lars",
        "lamb",
        "normalized-gd",
    }
    for cls in VARIANTS.values():
        assert issubclass(cls, torch.optim.Optimizer)
        assert cls.__doc__ and "p" in cls.__doc__
    assert LARS([torch.zeros(2)], lr=0.1, per_row=True).defaults["per_row"] is True
    assert LAMB([torch.zeros(2)]).defaults == {
        "lr": 1e-3,
        "betas": (0.9, 0.999),
        "eps": 1e-6,
        "weight_decay": 0.0,
        "per_row": False,
    }


# ---------------------------------------------------------------- formula transcriptions
@pytest.mark.parametrize("name", sorted(VARIANTS))
@FEW
@given(run=runs(), data=st.data())
def test_variant_equals_transcription_of_its_formula(name, run, data):
    p0, grads, lrs = run
    kwargs = data.draw(HYPERPARAMETERS[name], label="hyperparameters")
    seed = data.draw(st.integers(0, 2**31 - 1), label="seed") if name == "sgld" else 0
    got = run_optimizer(name, p0, grads, lrs, seed=seed, **kwargs)
    ref_kwargs = dict(kwargs, seed=seed) if name == "sgld" else kwargs
    want = REFERENCES[name](p0, grads, lrs, **ref_kwargs)
    # Centered Adam divides by sqrt(s - m^2 + eps): where the variance cancels to ~0 a one-ulp
    # difference in s - m^2 is amplified by up to 1/sqrt(eps), so its tolerance is wider.
    rtol = 1e-6 if name == "adam-centered" else RTOL
    np.testing.assert_allclose(got, want, rtol=rtol, atol=ATOL)


def test_ema_momentum_starts_from_zero_buffer():
    p = torch.tensor([1.0, -2.0], dtype=torch.float64)
    opt = EMAMomentum([p], lr=0.5, beta=0.9)
    p.grad = torch.tensor([2.0, 4.0], dtype=torch.float64)
    opt.step()
    # m1 = (1 - beta) g, not g (torch's SGD(dampening=beta) would start from g).
    torch.testing.assert_close(p, torch.tensor([1.0 - 0.5 * 0.1 * 2.0, -2.0 - 0.5 * 0.1 * 4.0], dtype=torch.float64))


def test_adam_minbias_first_step_is_normalized_gradient():
    g = torch.tensor([[3.0, -0.25], [1e-3, -7.0]], dtype=torch.float64)
    p = torch.zeros(2, 2, dtype=torch.float64)
    opt = AdamMinBias([p], lr=0.01, eps=1e-8)
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p, -0.01 * g / (g.abs() + 1e-8), rtol=1e-14, atol=0.0)


# ---------------------------------------------------------------- agreement with torch's SGD
def _torch_sgd_trajectory(p0, grads, lrs, momentum):
    p = torch.tensor(p0, dtype=torch.float64)
    opt = torch.optim.SGD([p], lr=lrs[0], momentum=momentum, dampening=0.0)
    out = []
    for g, lr in zip(grads, lrs):
        opt.param_groups[0]["lr"] = lr
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.numpy().copy())
    return np.array(out)


@FEW
@given(run=runs(), beta=unit, lr=st.floats(1e-3, 0.3))
def test_ema_momentum_equals_rescaled_torch_sgd_at_constant_lr(run, beta, lr):
    p0, grads, _ = run
    lrs = [lr] * len(grads)
    ours = run_optimizer("ema-momentum", p0, grads, lrs, beta=beta)
    torchs = _torch_sgd_trajectory(p0, grads, [(1 - beta) * lr] * len(grads), momentum=beta)
    np.testing.assert_allclose(ours, torchs, rtol=1e-9, atol=1e-11)


@FEW
@given(run=runs(), momentum=unit, lr=st.floats(1e-3, 0.3))
def test_vanilla_momentum_equals_torch_sgd_at_constant_lr(run, momentum, lr):
    p0, grads, _ = run
    lrs = [lr] * len(grads)
    np.testing.assert_allclose(
        run_optimizer("vanilla-momentum", p0, grads, lrs, momentum=momentum),
        _torch_sgd_trajectory(p0, grads, lrs, momentum=momentum),
        rtol=1e-9,
        atol=1e-11,
    )


def test_vanilla_momentum_differs_from_torch_sgd_after_an_lr_change():
    p0 = np.array([[1.0, 2.0]])
    grads = np.array([[[1.0, -1.0]]] * 6)
    lrs = [0.1, 0.1, 0.1, 0.01, 0.01, 0.01]
    ours = run_optimizer("vanilla-momentum", p0, grads, lrs, momentum=0.9)
    torchs = _torch_sgd_trajectory(p0, grads, lrs, momentum=0.9)
    np.testing.assert_allclose(ours[:3], torchs[:3], rtol=1e-12)
    # After the change torch rescales the whole buffer; the velocity form keeps old momentum.
    step_ours, step_torch = ours[3] - ours[2], torchs[3] - torchs[2]
    assert np.all(np.abs(step_ours) > 5 * np.abs(step_torch))
    np.testing.assert_allclose(step_ours, -(0.9 * 0.271 + 0.01) * grads[3], rtol=1e-12)


# ---------------------------------------------------------------- layer-wise ratios per row
def test_lars_with_no_momentum_is_the_slides_rule_per_row():
    w = torch.tensor([[3.0, 4.0], [0.0, 1.0], [1.0, 1.0]], dtype=torch.float64)
    g = torch.tensor([[1.0, 0.0], [0.0, 10.0], [0.0, 0.0]], dtype=torch.float64)
    p = w.clone()
    opt = LARS([p], lr=0.1, momentum=0.0, trust=1.0, eps=0.0, per_row=True)
    p.grad = g.clone()
    opt.step()
    ratios = torch.tensor([[5.0], [0.1], [1.0]], dtype=torch.float64)  # ||w_i|| / ||g_i||; 1 where g_i = 0
    torch.testing.assert_close(p, w - 0.1 * ratios * g, rtol=1e-15, atol=0.0)

    whole = w.clone()
    opt = LARS([whole], lr=0.1, momentum=0.0, trust=1.0, eps=0.0, per_row=False)
    whole.grad = g.clone()
    opt.step()
    ratio = torch.linalg.vector_norm(w) / torch.linalg.vector_norm(g)
    torch.testing.assert_close(whole, w - 0.1 * ratio * g, rtol=1e-15, atol=0.0)


@pytest.mark.parametrize("name", ["lars", "lamb"])
@FEW
@given(run=runs(), data=st.data())
def test_per_row_equals_one_optimizer_per_row(name, run, data):
    p0, grads, lrs = run
    kwargs = dict(data.draw(HYPERPARAMETERS[name], label="hyperparameters"), per_row=True)
    together = run_optimizer(name, p0, grads, lrs, **kwargs)
    for row in range(p0.shape[0]):
        alone = run_optimizer(name, p0[row : row + 1], grads[:, row : row + 1], lrs, **dict(kwargs, per_row=False))
        np.testing.assert_allclose(together[:, row : row + 1], alone, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["lars", "lamb"])
def test_per_row_ratios_differ_from_one_whole_tensor_ratio(name):
    p0 = np.array([[10.0, 0.0], [0.0, 0.1]])
    grads = np.array([[[1.0, 1.0], [1.0, 3.0]]])
    per_row = run_optimizer(name, p0, grads, [0.1], per_row=True)[0]
    whole = run_optimizer(name, p0, grads, [0.1], per_row=False)[0]
    # The small row moves by ~lr * 0.1 per row, but by ~lr * ||W|| ~ lr * 10 with a shared ratio.
    assert np.linalg.norm(per_row[1] - p0[1]) < 0.05
    assert np.linalg.norm(whole[1] - p0[1]) > 0.5


# ---------------------------------------------------------------- rows never interact
ROW_LOCAL = [(name, {"per_row": True} if name in ("lars", "lamb", "normalized-gd") else {}) for name in sorted(VARIANTS)]


@pytest.mark.parametrize("name,kwargs", ROW_LOCAL, ids=[n for n, _ in ROW_LOCAL])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("where", ["grad", "param"])
def test_a_non_finite_row_never_changes_other_rows(name, kwargs, bad, where):
    rng = np.random.default_rng(7)
    p0 = rng.normal(size=(4, 2))
    grads = rng.normal(size=(6, 4, 2))

    def trajectory(poison: bool) -> torch.Tensor:
        p = torch.tensor(p0)
        gen_kwargs = {"generator": torch.Generator().manual_seed(3)} if name == "sgld" else {}
        opt = make(name, [p], lr=0.05, **kwargs, **gen_kwargs)
        out = []
        for t, g in enumerate(grads):
            grad = torch.tensor(g)
            if poison and t == 2:
                if where == "grad":
                    grad[1, 0] = bad
                else:
                    with torch.no_grad():
                        p[1, 1] = bad
            p.grad = grad
            opt.step()
            out.append(p.clone())
        return torch.stack(out)

    clean, poisoned = trajectory(False), trajectory(True)
    keep = [0, 2, 3]
    assert torch.equal(clean[:, keep], poisoned[:, keep])  # bit for bit
    assert not torch.equal(clean[2:, 1], poisoned[2:, 1])


# ---------------------------------------------------------------- SGLD noise
def _sgld_run(generator, steps=5, **kwargs):
    p = torch.zeros(3, 2, dtype=torch.float64)
    opt = SGLD([p], lr=0.1, temperature=0.5, generator=generator, **kwargs)
    out = []
    for _ in range(steps):
        p.grad = torch.ones_like(p)
        opt.step()
        out.append(p.clone())
    return torch.stack(out)


def test_sgld_is_deterministic_for_a_generator_seed_and_leaves_the_global_rng_alone():
    global_state = torch.get_rng_state()
    a = _sgld_run(torch.Generator().manual_seed(11))
    b = _sgld_run(torch.Generator().manual_seed(11))
    c = _sgld_run(torch.Generator().manual_seed(12))
    default = _sgld_run(None)
    seeded_zero = _sgld_run(torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(default, seeded_zero)
    assert torch.equal(torch.get_rng_state(), global_state)


def test_sgld_noise_variance_is_two_lr_temperature():
    lr, temperature = 0.02, 0.3
    p = torch.zeros(50_000, 2, dtype=torch.float64)
    opt = SGLD([p], lr=lr, temperature=temperature, generator=torch.Generator().manual_seed(2024))
    p.grad = torch.zeros_like(p)
    opt.step()
    # 100k samples: the variance estimate's relative standard error is sqrt(2 / 1e5) ~ 0.45 %.
    assert abs(p.var().item() / (2 * lr * temperature) - 1) < 0.03
    assert abs(p.mean().item()) < 4 * math.sqrt(2 * lr * temperature / p.numel())


# ---------------------------------------------------------------- torch integration
@pytest.mark.parametrize("name,kwargs", ROW_LOCAL, ids=[n for n, _ in ROW_LOCAL])
def test_state_dict_round_trip_resumes_bit_for_bit(name, kwargs):
    rng = np.random.default_rng(5)
    grads = [torch.tensor(g) for g in rng.normal(size=(8, 3, 2))]
    gen = {"generator": torch.Generator().manual_seed(9)} if name == "sgld" else {}

    p = torch.tensor(rng.normal(size=(3, 2)))
    opt = make(name, [p], lr=0.05, **kwargs, **gen)
    for g in grads[:4]:
        p.grad = g.clone()
        opt.step()
    # state_dict() shares the live state tensors; a checkpoint must copy them.
    saved_p, saved = p.clone(), copy.deepcopy(opt.state_dict())
    for g in grads[4:]:
        p.grad = g.clone()
        opt.step()

    q = saved_p.clone()
    fresh_gen = {"generator": torch.Generator().manual_seed(12345)} if name == "sgld" else {}
    resumed = make(name, [q], lr=0.05, **kwargs, **fresh_gen)
    resumed.load_state_dict(saved)
    for g in grads[4:]:
        q.grad = g.clone()
        resumed.step()
    assert torch.equal(p, q)


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_live_lr_change_takes_effect_on_the_next_step(name):
    p = torch.tensor([[1.0, -2.0]], dtype=torch.float64)
    opt = make(name, [p], lr=0.0)
    assert len(opt.state) == 0  # state is created lazily, on the first step
    p.grad = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    opt.step()
    assert torch.equal(p, torch.tensor([[1.0, -2.0]], dtype=torch.float64))
    opt.param_groups[0]["lr"] = 0.1
    opt.step()
    assert not torch.equal(p, torch.tensor([[1.0, -2.0]], dtype=torch.float64))


def test_closure_loss_is_returned_and_params_without_grad_are_skipped():
    used = torch.tensor([1.0, 1.0], requires_grad=True)
    unused = torch.tensor([5.0, 5.0], requires_grad=True)
    opt = AdamNoBias([used, unused], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (used**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(2.0)
    assert used.detach().tolist() != [1.0, 1.0]
    assert unused.detach().tolist() == [5.0, 5.0]
    assert unused not in opt.state


# ---------------------------------------------------------------- validation
INVALID = [
    (EMAMomentum, {"lr": -0.1}, "lr"),
    (EMAMomentum, {"lr": 0.1, "beta": 1.0}, "beta"),
    (EMAMomentum, {"lr": 0.1, "weight_decay": -1e-3}, "weight_decay"),
    (VanillaMomentum, {"lr": float("nan")}, "lr"),
    (VanillaMomentum, {"lr": 0.1, "momentum": -0.5}, "momentum"),
    (AdamNoBias, {"betas": (0.9, 1.0)}, "betas[1]"),
    (AdamNoBias, {"betas": (0.9,)}, "betas"),
    (AdamNoBias, {"eps": -1e-8}, "eps"),
    (AdamCentered, {"eps": 0.0}, "eps"),
    (AdamCentered, {"betas": (-0.1, 0.9)}, "betas[0]"),
    (AdamMinBias, {"n_g": 0.5}, "n_g"),
    (AdamMinBias, {"n_s": float("inf")}, "n_s"),
    (SGLD, {"lr": 0.1, "temperature": -1.0}, "temperature"),
    (SGLD, {"lr": 0.1, "generator": 42}, "generator"),
    (LARS, {"lr": 0.1, "trust": 0.0}, "trust"),
    (LARS, {"lr": 0.1, "per_row": "yes"}, "per_row"),
    (LAMB, {"lr": "fast"}, "lr"),
    (LAMB, {"weight_decay": -0.1}, "weight_decay"),
]


@pytest.mark.parametrize("cls,kwargs,offender", INVALID, ids=[f"{c.__name__}-{o}" for c, _, o in INVALID])
def test_invalid_hyperparameters_raise_value_error_naming_them(cls, kwargs, offender):
    with pytest.raises(ValueError, match=re.escape(f"{cls.__name__}: invalid {offender}=")):
        cls([torch.zeros(2)], **kwargs)


def test_normalized_gd_steps_lr_along_the_gradient_direction():
    from sgdtui.engine.variants import NormalizedGD

    p = torch.tensor([[3.0, 4.0], [1.0, 1.0], [2.0, -2.0]], dtype=torch.float64)
    opt = NormalizedGD([p], lr=0.5, per_row=True)
    p.grad = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1e-12, 0.0]], dtype=torch.float64)
    opt.step()
    np.testing.assert_allclose(p.numpy(), [[2.7, 3.6], [1.0, 1.0], [1.5, -2.0]])  # |step| = lr; no step at g = 0
    whole = torch.tensor([3.0, 4.0], dtype=torch.float64)
    whole.grad = torch.tensor([6.0, 8.0], dtype=torch.float64)
    NormalizedGD([whole], lr=1.0).step()
    np.testing.assert_allclose(whole.numpy(), [2.4, 3.2])


def test_centered_adam_never_steps_by_lr_over_sqrt_eps():
    # (0.9, 0.999) on a constant gradient: s - m^2 < 0 at every step. The unguarded clamp stepped
    # by lr * m / sqrt(eps) (~3000 lr on the first step); the guard takes adam-nobias's step there.
    p, q = torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    centered = VARIANTS["adam-centered"]([p], lr=0.01, betas=(0.9, 0.999))
    nobias = VARIANTS["adam-nobias"]([q], lr=0.01, betas=(0.9, 0.999))
    for _ in range(20):
        p.grad = q.grad = torch.tensor([1.0, -2.0], dtype=torch.float64)
        centered.step()
        nobias.step()
        torch.testing.assert_close(p, q)
    assert p.abs().max() < 2.0  # 20 guarded steps; the unguarded first step alone was 0.01 * 0.1 * 2 / 1e-4 = 20
    assert VARIANTS["adam-centered"]([torch.zeros(1)], lr=0.1).defaults["betas"] == (0.99, 0.99)
