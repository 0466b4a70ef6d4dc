"""The forward-mode gradients (tensor and scalar paths) agree with torch autograd."""

import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from sgdtui.engine.expr import compile_expr
from sgdtui.engine.surfaces import ExpressionSurface, Surface, SurfaceRegistry

REGISTRY = SurfaceRegistry(include_user_dir=False)
EXPRESSION_SURFACES = [s for s in REGISTRY if not s.data_driven]

FORMULAS = [
    "x**y", "2**x + y", "min(x, y) + max(x, 0.5)", "x/y + 3/x", "sqrt(x**2 + y**2)", "relu(x)*softplus(y)",
    "-x", "log(abs(x)) + tan(y)", "x**0.5", "exp(-x*y)*cos(pi*x)", "sigmoid(x - y)**3", "max(x*y, y) - min(2, x)",
    "softplus(30*x) + e**y", "(x - 1)**2 + 100*(y - x**2)**2", "tanh(x)**2 + 0.01*abs(y) + sigmoid(y)",
]


def autograd_value_and_grad(fn, x, y):
    xr, yr = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    out = fn(xr, yr)
    gx, gy = torch.autograd.grad(out.sum(), [xr, yr], allow_unused=True)
    zero = torch.zeros_like(x)
    return out.detach(), zero if gx is None else gx, zero if gy is None else gy


@pytest.mark.parametrize("formula", FORMULAS)
def test_tensor_forward_mode_matches_autograd(formula):
    fn = compile_expr(formula)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(64, generator=gen, dtype=torch.float64) * 2 + 0.1
    y = torch.rand(64, generator=gen, dtype=torch.float64) * 2 + 0.1
    v, gx, gy = fn.value_and_grad(x, y)
    rv, rgx, rgy = autograd_value_and_grad(fn, x, y)
    torch.testing.assert_close(v, rv, rtol=1e-13, atol=0)
    torch.testing.assert_close(gx, rgx, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gy, rgy, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("formula", FORMULAS)
def test_scalar_path_matches_tensor_path(formula):
    fn = compile_expr(formula)
    gen = torch.Generator().manual_seed(1)
    for _ in range(40):
        x, y = (torch.rand(2, generator=gen, dtype=torch.float64) * 2 + 0.1).tolist()
        sv = fn.scalar_value_and_grad(x, y)
        tv = [float(t) for t in fn.value_and_grad(torch.tensor([x], dtype=torch.float64),
                                                   torch.tensor([y], dtype=torch.float64))]
        for a, b in zip(sv, tv):
            assert a == pytest.approx(b, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("surface", EXPRESSION_SURFACES, ids=lambda s: s.name)
def test_surface_gradients_match_autograd_on_both_paths(surface):
    gen = torch.Generator().manual_seed(2)
    r = torch.rand(50, 2, generator=gen, dtype=torch.float64)
    w = torch.stack((surface.xlim[0] + (surface.xlim[1] - surface.xlim[0]) * r[:, 0],
                     surface.ylim[0] + (surface.ylim[1] - surface.ylim[0]) * r[:, 1]), dim=1)
    loss, grad = surface.value_and_grad(w)  # tensor path (N = 50)
    ref_loss, ref_grad = Surface.value_and_grad(surface, w)  # autograd
    torch.testing.assert_close(loss, ref_loss, rtol=1e-13, atol=0)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-10, atol=1e-12)
    for row in w[:10]:
        one_loss, one_grad = surface.value_and_grad(row[None])  # scalar path (N = 1)
        ref_l, ref_g = Surface.value_and_grad(surface, row[None])
        torch.testing.assert_close(one_loss, ref_l, rtol=1e-12, atol=1e-15)
        torch.testing.assert_close(one_grad, ref_g, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("formula,point", [
    ("exp(1000*x)", (1.0, 0.0)),     # overflow in floats
    ("log(x)", (-1.0, 0.0)),         # math domain error
    ("1/x + y", (0.0, 1.0)),         # division by zero
    ("x**0.5", (-2.0, 0.0)),         # a complex power in Python
])
def test_scalar_path_gives_torchs_inf_and_nan(formula, point):
    surface = ExpressionSurface(name="t", description="", expr=formula)
    w = torch.tensor([point], dtype=torch.float64)
    loss, grad = surface.value_and_grad(w)
    v, gx, gy = surface._fn.value_and_grad(w[:, 0], w[:, 1])
    assert torch.equal(loss.isnan(), v.isnan()) and torch.equal(loss.isinf(), v.isinf())
    assert not math.isfinite(float(loss)) or not all(math.isfinite(float(g)) for g in grad[0])


@settings(max_examples=40, deadline=None)
@given(st.floats(-3, 3), st.floats(-3, 3))
def test_pathological_scalar_path_is_exact_against_tutorial_formula(x, y):
    surface = REGISTRY.get("pathological")
    loss, grad = surface.value_and_grad(torch.tensor([[x, y]], dtype=torch.float64))
    w = torch.tensor([x, y], dtype=torch.float64, requires_grad=True)
    ref = torch.tanh(w[0]) ** 2 + 0.01 * torch.abs(w[1]) + torch.sigmoid(w[1])
    ref.backward()
    assert float(loss) == pytest.approx(ref.item(), rel=1e-14, abs=1e-15)
    torch.testing.assert_close(grad[0], w.grad, rtol=1e-12, atol=1e-14)
