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


NAN = math.nan
# (formula, point, gradient): torch autograd's conventions at kinks and poles, which the
# forward mode and the float path follow exactly (see sgdtui/engine/expr.py's docstring).
KINKS = [
    ("abs(x) + y", (0.0, 1.0), (0.0, 1.0)),
    ("relu(x) + relu(-y)", (0.0, 0.0), (0.0, 0.0)),
    ("min(x, y)", (1.0, 1.0), (0.5, 0.5)),         # torch.minimum splits a tie
    ("max(2*x, y)", (1.0, 2.0), (1.0, 0.5)),
    ("min(x, 1) + max(-1, y)", (1.0, -1.0), (1.0, 1.0)),  # a constant bound is a clamp: inclusive
    ("x**y + y**2", (0.0, 2.0), (0.0, 4.0)),       # d(u**v)/dv = 0 where u = 0, v >= 0 (issue 13)
    ("0**x + y", (0.0, 0.0), (0.0, 1.0)),
    ("x**0 + (x*y)**0", (0.0, 0.0), (0.0, 0.0)),   # d(u**0)/du = 0, even at u = 0
    ("(-2)**y + x", (0.0, 2.0), (1.0, NAN)),       # log(-2) spoils d/dy only
    ("sqrt(relu(x)) + y", (-1.0, 0.0), (0.0, 1.0)),  # reverse mode never forms relu's 0 * sqrt's inf
    ("relu(x)**0.5 + max(x, 0)**0.25", (-1.0, 0.0), (0.0, 0.0)),
    ("tanh(x + log(relu(x))) + y", (-2.0, 1.0), (0.0, 1.0)),  # 0 * inf under a saturated tanh
    ("sqrt(x)", (0.0, 0.0), (math.inf, 0.0)),
]


@pytest.mark.parametrize("formula, point, expected", KINKS, ids=[k[0] for k in KINKS])
def test_kinks_and_poles_follow_autograd_on_every_path(formula, point, expected):
    fn = compile_expr(formula)
    x = torch.tensor([point[0]] * 3, dtype=torch.float64)
    y = torch.tensor([point[1]] * 3, dtype=torch.float64)
    _, agx, agy = autograd_value_and_grad(fn, x, y)
    _, dgx, dgy = fn.value_and_grad(x, y)
    _, sgx, sgy = fn.scalar_value_and_grad(*point)
    for got in ((agx[0].item(), agy[0].item()), (dgx[0].item(), dgy[0].item()), (sgx, sgy)):
        assert got == pytest.approx(expected, nan_ok=True), got


def test_min_and_max_propagate_nan_on_every_path():
    """issue 13: min/max hid nan on the float path (88 expressions showed a finite loss)."""
    for formula in ("min(log(x), y)", "max(y, log(x))", "min(log(x), 1)", "max(2, sqrt(x))", "min(x, 0/0)"):
        fn = compile_expr(formula)
        one = torch.tensor([-1.0], dtype=torch.float64)
        assert math.isnan(fn(one, one).item()), formula
        assert math.isnan(fn.value_and_grad(one, one)[0].item()), formula
        assert math.isnan(fn.scalar_value_and_grad(-1.0, -1.0)[0]), formula


@pytest.mark.parametrize("formula, point", [
    ("(-1)**(x + y)", (0.5, 0.0)), ("e**x + (-e)**y", (0.0, 0.5)), ("x**2 + y**2 + 0/(1e-3)*x/0", (1.0, 1.0)),
    ("0**x + y", (-1.0, 0.0)), ("exp(1e3*x) - exp(1e3*x)", (1.0, 0.0)), ("log(x)/x", (0.0, 0.0)),
    ("x**(1/3)", (-8.0, 0.0)), ("tan(x/0)", (1.0, 0.0)), ("1/(x - x)", (2.0, 0.0)),
])
def test_no_path_raises_where_floats_would(formula, point):
    """issue 13's crashes ("math domain error", ZeroDivisionError) and friends: inf and nan, as torch."""
    fn = compile_expr(formula)
    x, y = (torch.tensor([v], dtype=torch.float64) for v in point)
    tensor = fn(x, y).item()
    value, gx, gy = fn.value_and_grad(x, y)
    float_value, float_gx, float_gy = fn.scalar_value_and_grad(*point)
    assert not math.isfinite(tensor) or not all(math.isfinite(g) for g in (gx.item(), gy.item()))
    assert (math.isnan(float_value) and math.isnan(tensor)) or float_value == tensor
