"""The safe expression compiler: correct numbers, working autograd, and refusals for everything else."""

from __future__ import annotations

import ast
import builtins
import math
import time

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdtui.engine.expr import (
    ALLOWED_FUNCTIONS,
    ALLOWED_NAMES,
    CompiledExpr,
    ExprError,
    compile_expr,
)

# (expression, the same formula written directly in torch)
FORMULAS = [
    ("x + y", lambda x, y: x + y),
    ("x - y*2.5", lambda x, y: x - y * 2.5),
    ("x / (1 + y**2)", lambda x, y: x / (1 + y**2)),
    ("-x + +y", lambda x, y: -x + y),
    ("(1 - x)**2 + 100*(y - x**2)**2", lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2),
    ("2**x * e**y", lambda x, y: 2.0**x * math.e**y),
    ("sin(x)*cos(y) + tan(x/10)", lambda x, y: torch.sin(x) * torch.cos(y) + torch.tan(x / 10)),
    ("exp(-x**2) + log(1 + y**2) + sqrt(abs(x))", lambda x, y: torch.exp(-(x**2)) + torch.log(1 + y**2) + torch.sqrt(torch.abs(x))),
    ("tanh(x)**2 + 0.01*abs(y) + sigmoid(y)", lambda x, y: torch.tanh(x) ** 2 + 0.01 * torch.abs(y) + torch.sigmoid(y)),
    ("softplus(x) - relu(y)", lambda x, y: F.softplus(x) - torch.relu(y)),
    ("min(x, y) + max(x, y)", lambda x, y: torch.minimum(x, y) + torch.maximum(x, y)),
    ("min(x, 1) + max(-0.5, y)", lambda x, y: torch.clamp(x, max=1.0) + torch.clamp(y, min=-0.5)),
    ("20 + x**2 - 10*cos(2*pi*x) + y**2 - 10*cos(2*pi*y)",
     lambda x, y: 20 + x**2 - 10 * torch.cos(2 * math.pi * x) + y**2 - 10 * torch.cos(2 * math.pi * y)),
    ("x**3 - 3*x*y**2", lambda x, y: x**3 - 3 * x * y**2),
]

coordinates = st.floats(min_value=-3.0, max_value=3.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(coordinates, coordinates), min_size=1, max_size=8))
def test_matches_direct_torch_formulas(points):
    x = torch.tensor([p[0] for p in points], dtype=torch.float64)
    y = torch.tensor([p[1] for p in points], dtype=torch.float64)
    for source, direct in FORMULAS:
        result = compile_expr(source)(x, y)
        expected = direct(x, y)
        assert result.shape == expected.shape
        torch.testing.assert_close(result, expected, rtol=1e-12, atol=1e-12, equal_nan=True, msg=source)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_follows_the_inputs(dtype):
    x = torch.linspace(-1, 1, 5, dtype=dtype)
    y = torch.linspace(0, 2, 5, dtype=dtype)
    for source, direct in FORMULAS:
        result = compile_expr(source)(x, y)
        assert result.dtype == dtype, source
        torch.testing.assert_close(result, direct(x, y), equal_nan=True, msg=source)
    # Folded constants are Python floats, so they do not promote float32 to float64.
    assert compile_expr("pi * x + 1e-3*e").__call__(x, y).dtype == dtype


def test_broadcasting_and_unused_variables():
    x = torch.linspace(-1, 1, 3, dtype=torch.float64).reshape(3, 1)
    y = torch.linspace(-2, 2, 4, dtype=torch.float64).reshape(1, 4)
    assert compile_expr("x*y").__call__(x, y).shape == (3, 4)
    only_x = compile_expr("x**2")
    assert only_x.uses == {"x"}
    torch.testing.assert_close(only_x(x, y), (x**2).expand(3, 4))
    only_y = compile_expr("3*y")
    assert only_y.uses == {"y"}
    torch.testing.assert_close(only_y(x, y), (3 * y).expand(3, 4))
    constant = compile_expr("2*pi")
    assert constant.uses == set()
    torch.testing.assert_close(constant(x, y), torch.full((3, 4), 2 * math.pi, dtype=torch.float64))


def test_constant_expression_keeps_autograd_connected():
    w = torch.tensor([1.5, -2.0], requires_grad=True)
    loss = compile_expr("7")(w[0], w[1])
    (grad,) = torch.autograd.grad(loss, w)
    assert loss.item() == 7.0
    assert grad.tolist() == [0.0, 0.0]


def test_first_and_second_derivatives():
    fn = compile_expr("x**2*y + sin(x*y) + exp(y)")
    w = torch.tensor([0.7, -1.3], dtype=torch.float64, requires_grad=True)
    x, y = w[0], w[1]
    loss = fn(x, y)
    (grad,) = torch.autograd.grad(loss, w, create_graph=True)
    xv, yv = 0.7, -1.3
    expected_grad = [2 * xv * yv + yv * math.cos(xv * yv), xv**2 + xv * math.cos(xv * yv) + math.exp(yv)]
    assert grad.tolist() == pytest.approx(expected_grad, rel=1e-12)
    hessian = torch.stack([torch.autograd.grad(grad[i], w, retain_graph=True)[0] for i in range(2)])
    c, s = math.cos(xv * yv), math.sin(xv * yv)
    expected_hessian = [
        [2 * yv - yv**2 * s, 2 * xv + c - xv * yv * s],
        [2 * xv + c - xv * yv * s, -(xv**2) * s + math.exp(yv)],
    ]
    assert hessian.tolist()[0] == pytest.approx(expected_hessian[0], rel=1e-12)
    assert hessian.tolist()[1] == pytest.approx(expected_hessian[1], rel=1e-12)


@pytest.mark.parametrize("source", [source for source, _ in FORMULAS])
def test_hessian_matches_the_direct_formula(source):
    direct = dict(FORMULAS)[source]
    fn = compile_expr(source)
    w = torch.tensor([0.4, 0.9], dtype=torch.float64)
    ours = torch.autograd.functional.hessian(lambda v: fn(v[0], v[1]), w, create_graph=True)
    theirs = torch.autograd.functional.hessian(lambda v: direct(v[0], v[1]), w)
    torch.testing.assert_close(ours, theirs)


def test_source_is_normalized_and_uses_lists_variables():
    fn = compile_expr("  (1-x)**2+100*(y-x**2)**2 ")
    assert isinstance(fn, CompiledExpr)
    assert fn.source == "(1 - x) ** 2 + 100 * (y - x ** 2) ** 2"
    assert fn.uses == {"x", "y"}
    assert compile_expr(fn.source).source == fn.source
    assert compile_expr("x +\n y").source == "x + y"


def test_large_variable_exponents_stay_in_float():
    x = torch.tensor([1.01, -1.02], dtype=torch.float64)
    result = compile_expr("x**100 + x**-70")(x, x)
    torch.testing.assert_close(result, x**100.0 + x**-70.0)


def test_constants_are_folded_once():
    fn = compile_expr("x * (2*pi) + sqrt(16) - e**0")
    x = torch.tensor([1.0], dtype=torch.float64)
    assert fn(x, x).item() == pytest.approx(2 * math.pi + 4 - 1)
    # Folding uses the same conventions as torch (softplus threshold, stable sigmoid).
    one = torch.ones(1, dtype=torch.float64)
    for source, expected in [("softplus(30)", 30.0), ("sigmoid(-800)", 0.0), ("relu(-2) + max(1, 3)", 3.0)]:
        assert compile_expr(source)(one, one).item() == pytest.approx(expected, abs=1e-300), source


# Constant sub-expressions fold with torch's semantics (never an error): what torch computes.
INF, NAN = math.inf, math.nan
FOLDED = [
    ("10**10**10", INF), ("9**9**9**9", INF), ("log(0)", -INF), ("1/0", INF), ("-1/0", -INF), ("0/0", NAN),
    ("0**-1", INF), ("(-0.0)**-1", -INF), ("(-8)**(1/3)", NAN), ("sqrt(-1)", NAN), ("log(-1)", NAN),
    ("exp(1000)", INF), ("sin(1/0)", NAN), ("min(1/0, 2)", 2.0), ("max(0/0, 1)", NAN), ("relu(0/0)", NAN),
    ("sigmoid(-1/0)", 0.0), ("1/(1/0)", 0.0), ("2**(-1/0)", 0.0), ("tanh(log(0))", -1.0),
]


@pytest.mark.parametrize("source, expected", FOLDED, ids=[s for s, _ in FOLDED])
def test_constants_fold_to_what_torch_computes(source, expected):
    started = time.perf_counter()
    fn = compile_expr(source)
    assert time.perf_counter() - started < 0.5
    assert isinstance(fn.tree, ast.Constant) and fn.uses == set()
    assert math.isnan(fn.tree.value) if math.isnan(expected) else fn.tree.value == expected
    one = torch.ones(3, dtype=torch.float64)
    value, gx, gy = fn.value_and_grad(one, one)
    torch.testing.assert_close(value, torch.full_like(one, expected), equal_nan=True)
    torch.testing.assert_close(fn(one, one), value, equal_nan=True)
    assert fn.scalar_value_and_grad(1.0, 1.0)[0] == expected or math.isnan(expected)


def test_a_non_finite_constant_is_a_valid_bound():
    x = torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float64)
    torch.testing.assert_close(compile_expr("min(x, 1/0) + max(y, -1/0)")(x, x), 2 * x)


def test_the_string_is_never_compiled_to_bytecode(monkeypatch):
    """ast.parse calls compile() with PyCF_ONLY_AST; anything else (or eval/exec) would be a hole."""
    real_compile = builtins.compile

    def only_ast(source, filename, mode, flags=0, *args, **kwargs):
        assert flags & ast.PyCF_ONLY_AST, "compile() used to make bytecode"
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("eval/exec called")

    monkeypatch.setattr(builtins, "compile", only_ast)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    fn = compile_expr("sin(x) + y**2")
    assert fn(torch.tensor(0.0), torch.tensor(3.0)).item() == pytest.approx(9.0)


def test_allowed_lists_for_help_text():
    assert set(ALLOWED_NAMES) == {"x", "y", "pi", "e"}
    assert set(ALLOWED_FUNCTIONS) == {
        "sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "softplus", "relu", "min", "max",
    }
    for name in ALLOWED_FUNCTIONS:
        source = f"{name}(x, y)" if name in ("min", "max") else f"{name}(x)"
        assert compile_expr(source).uses >= {"x"}


# (hostile input, a substring its error message must contain: the offending token)
HOSTILE = [
    ("__import__('os')", "'__import__'"),
    ("__import__('os').system('ls')", "'__import__'"),
    ("x.__class__", "'.__class__'"),
    ("x.__class__.__bases__[0].__subclasses__()", "'.__class__'"),
    ("open('f')", "'open'"),
    ("lambda: 1", "'lambda'"),
    ("[x for x in y]", "'['"),
    ("(x for x in y)", "'for'"),
    ("{x: 1}", "'{'"),
    ("x if y else 1", "'if'"),
    ("x < y", "'<'"),
    ("x == y", "'=='"),
    ("'s'", "'s'"),
    ('"x" * 3', '"x"'),
    ("f'{x}'", "f'{x}'"),
    ("b'x'", "b'x'"),
    ("x+" * 50000, "100000 characters"),
    ("(" * 1000 + "x" + ")" * 1000, "2001 characters"),
    ("-" * 5000 + "x", "5001 characters"),
    ("(" * 100 + "x" + ")" * 100, "parentheses nested deeper than 40"),
    ("-" * 100 + "x", "signs in a row"),
    ("x" + "+x" * 500, "1001 nodes (the limit is 400)"),
    ("+".join(["x"] * 45), "nested deeper than 40"),
    ("sin(" * 45 + "x" + ")" * 45, "nested deeper than 40"),
    ("x; y", "';'"),
    ("sin(x, y)", "'sin'"),
    ("min(x)", "'min'"),
    ("max(x, y, 1)", "'max'"),
    ("foo(x)", "'foo'"),
    ("x @ y", "'@'"),
    ("x // y", "'//'"),
    ("x % y", "'%'"),
    ("x ^ 2", "use ** for powers"),
    ("x | y", "'|'"),
    ("~x", "'~'"),
    ("not x", "'not'"),
    ("x and y", "'and'"),
    ("e.real", "'.real'"),
    ("1j", "'1j'"),
    ("True", "'True'"),
    ("None", "'None'"),
    ("x = 1", "'='"),
    ("(y := 2)", "':='"),
    ("x[0]", "'['"),
    ("sin(x=1)", "'='"),
    ("sin(*x)", "'*x'"),
    ("x, y", "'x, y'"),
    ("(x)(y)", "'x'"),
    ("sin(x)(y)", "'sin(x)'"),
    ("z", "unknown name 'z'"),
    ("x + y*z", "'z' at column 7"),
    ("sin", "'sin'"),
    ("1e13", "'1e13'"),
    ("1e999", "'1e999'"),
    ("9" * 400, "exceeds"),
    ("", "empty"),
    ("   \t ", "empty"),
    ("x +", "end of expression"),
    ("(x", "'('"),
    ("x )", "')' at column 3"),
    ("x y", "'y' at column 3"),
    ("...", "'...'"),
    ("x\x00", "'\\x00'"),
    ("\u03c0*x", "'\u03c0'"),
    ("x # comment", "'# comment'"),
    ("x $ y", "'$'"),
    ("await x", "'await'"),
    ("yield x", "'yield'"),
    ("import os", "'import'"),
    ("x\ny = 1", "'='"),
]


@pytest.mark.parametrize("source, token", HOSTILE, ids=[repr(s[:30]) for s, _ in HOSTILE])
def test_hostile_input_is_refused_quickly_naming_the_token(source, token):
    started = time.perf_counter()
    with pytest.raises(ExprError) as caught:
        compile_expr(source)
    elapsed = time.perf_counter() - started
    message = str(caught.value)
    assert elapsed < 0.5, f"took {elapsed:.3f} s"
    assert "\n" not in message and message.strip() == message and message
    assert token in message, message


def test_there_are_enough_hostile_cases():
    assert len(HOSTILE) >= 40


def test_expr_error_is_a_value_error_with_columns():
    with pytest.raises(ValueError):
        compile_expr("foo(x)")
    with pytest.raises(ExprError, match=r"^unknown name 'z' at column 5 \(allowed: x, y, pi, e\)$"):
        compile_expr("x + z")
    with pytest.raises(ExprError, match=r"^function 'open' at column 1 is not allowed \(allowed: sin, cos, "):
        compile_expr("open(x)")
    with pytest.raises(ExprError, match=r"^operator '%' at column 3 is not allowed$"):
        compile_expr("x % 2")
    with pytest.raises(ExprError, match=r"^unexpected token '\)' at column 7$"):
        compile_expr("sin(x))")
    with pytest.raises(ExprError, match="must be a string"):
        compile_expr(None)  # type: ignore[arg-type]
