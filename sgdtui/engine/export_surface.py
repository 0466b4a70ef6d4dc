"""A surface as Python source for the torch export: its loss as a torch function (for autograd),
and its loss and gradient exactly as sgdtui computes them, operation for operation, so that the
exported program steps the lane's trajectory to the bit.

sgdtui differentiates a formula symbolically (``engine/expr.py``): one start point in Python
floats, with a fall-back to tensors where float arithmetic raises; several in tensors, forward
mode. ``exact_expression_source`` writes both evaluations out as straight-line code from the
same checked syntax tree, with the same constant folding and the same operations in the same
order. Data surfaces (``DataSurface``) write their closed-form gradients the same way.
"""

from __future__ import annotations

import ast
import inspect
import math
from typing import Any

from sgdtui.engine.expr import compile_expr
from sgdtui.engine.surfaces import DataSurface, ExpressionSurface, Surface, make_surface_data


class SurfaceExportError(ValueError):
    """A surface that has no torch source (one line)."""


def surface_source(surface: Surface) -> str:
    """Module-level source defining ``surface_loss(w)``, ``value_and_grad(w)``,
    ``stochastic_grad(w, batch, noise, generator)`` and ``DATA_DRIVEN``."""
    if isinstance(surface, ExpressionSurface):
        return _expression_source(surface)
    if isinstance(surface, DataSurface):
        return _data_source(surface)
    raise SurfaceExportError(f"surface {surface.name!r} is neither a formula nor a data surface")


_NOISE = '''

def add_noise(grad, batch, noise, generator, rows=None):
    """Additive Gaussian gradient noise with variance noise² / batch per coordinate; with ``rows``
    only the first rows draw (pad rows repeat the first row's draw, as sgdtui's padded clouds do)."""
    if noise <= 0.0:
        return grad
    xi = torch.randn(grad.shape if rows is None else (rows, grad.shape[1]), generator=generator, dtype=grad.dtype)
    if xi.shape[0] < grad.shape[0]:
        xi = torch.cat([xi, xi[:1].expand(grad.shape[0] - xi.shape[0], grad.shape[1])])
    return grad + (noise / math.sqrt(batch)) * xi
'''


# --- formulas ---------------------------------------------------------------------------------


def _expression_source(surface: ExpressionSurface) -> str:
    tree = ast.parse(compile_expr(surface.expr).source, mode="eval").body
    scalar = _ScalarWriter()
    sv, sx, sy = scalar.emit(tree)
    dual = _DualWriter()
    value = dual.emit(tree)
    lines = [
        "",
        f"EXPR = {surface.expr!r}",
        "",
        "",
        "def surface_loss(w):",
        f'    """{surface.name}: EXPR at each row (x, y) of w (N, 2), as torch operations (autograd can',
        '    differentiate it)."""',
        "    x, y = w[:, 0], w[:, 1]",
        f"    return {_torch_expression(tree)}",
        "",
        "",
        _SCALAR_HELPERS,
        "def scalar_value_and_grad(x, y):",
        '    """EXPR and its gradient at one point in Python floats, as sgdtui computes them (forward mode)."""',
        *["    " + line for line in scalar.lines],
        f"    return {sv}, {sx}, {sy}",
        "",
        "",
        "def tensor_value_and_grad(x, y):",
        '    """EXPR and its gradient at many points, in tensors, as sgdtui computes them (forward mode)."""',
        *["    " + line for line in dual.lines],
        f"    value, gx, gy = {dual.value_text(value)}",
        "    shape = x.shape if x.shape == y.shape else torch.broadcast_shapes(x.shape, y.shape)",
        "    full = [torch.zeros(shape, dtype=x.dtype) if t is None else torch.full(shape, t, dtype=x.dtype)",
        "            if isinstance(t, float) else (t if t.shape == shape else t.expand(shape)) for t in (value, gx, gy)]",
        "    return full[0], full[1], full[2]",
        "",
        "",
        "def value_and_grad(w):",
        '    """The loss (N,) and its exact gradient (N, 2) at each row of w."""',
        "    if w.shape[0] == 1:  # one point: float arithmetic, unless it overflows or leaves the domain",
        "        x, y = w[0].tolist()",
        "        try:",
        "            value, gx, gy = scalar_value_and_grad(x, y)",
        "        except (ArithmeticError, ValueError, TypeError):",
        "            pass",
        "        else:",
        "            return torch.tensor([value], dtype=w.dtype), torch.tensor([[gx, gy]], dtype=w.dtype)",
        "    value, gx, gy = tensor_value_and_grad(w[:, 0], w[:, 1])",
        "    return value, torch.stack((gx, gy), dim=1)",
        _NOISE,
        "",
        "def stochastic_grad(w, batch, noise, generator):",
        '    """The gradient one update sees: a formula has no data, so batch size only scales the noise."""',
        "    return add_noise(value_and_grad(w)[1], batch, noise, generator, rows=len(STARTS))",
        "",
        "",
        "DATA_DRIVEN = False",
        "",
    ]
    return "\n".join(lines)


_SCALAR_HELPERS = '''def fold_sigmoid(value):
    if value >= 0.0:
        return 1.0 / (1.0 + math.exp(-value))
    exp_value = math.exp(value)
    return exp_value / (1.0 + exp_value)


def fold_softplus(value):
    return value if value > 20.0 else math.log1p(math.exp(value))

'''

_SCALAR_UNARY = {  # name: (f(a), f'(a) given v = f(a)), as in sgdtui.engine.expr
    "sin": ("math.sin({a})", "math.cos({a})"),
    "cos": ("math.cos({a})", "-math.sin({a})"),
    "tan": ("math.tan({a})", "1.0 + {v} * {v}"),
    "exp": ("math.exp({a})", "{v}"),
    "log": ("math.log({a})", "1.0 / {a}"),
    "sqrt": ("math.sqrt({a})", "0.5 / {v}"),
    "abs": ("abs({a})", "({a} > 0) - ({a} < 0)"),
    "tanh": ("math.tanh({a})", "1.0 - {v} * {v}"),
    "sigmoid": ("fold_sigmoid({a})", "{v} * (1.0 - {v})"),
    "softplus": ("fold_softplus({a})", "1.0 if {a} > 20.0 else fold_sigmoid({a})"),
    "relu": ("{a} if {a} > 0 else 0.0", "1.0 if {a} > 0 else 0.0"),
}
_CONSTANTS = {"pi": math.pi, "e": math.e}


def _is_literal(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class _ScalarWriter:
    """Straight-line float code mirroring ``expr._compile_scalar`` (no folding, zeros explicit)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def fresh(self) -> str:
        self.count += 1
        return f"s{self.count}"

    def emit(self, node: ast.AST) -> tuple[str, str, str]:
        if isinstance(node, ast.Constant):
            return repr(float(node.value)), "0.0", "0.0"
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:
                return repr(_CONSTANTS[node.id]), "0.0", "0.0"
            return (node.id, "1.0", "0.0") if node.id == "x" else (node.id, "0.0", "1.0")
        if isinstance(node, ast.UnaryOp):
            v, a, b = self.emit(node.operand)
            if isinstance(node.op, ast.UAdd):
                return v, a, b
            t = self.fresh()
            self.lines.append(f"{t}, {t}x, {t}y = -{v}, -{a}, -{b}")
            return t, f"{t}x", f"{t}y"
        if isinstance(node, ast.BinOp):
            a, ax, ay = self.emit(node.left)
            b, bx, by = self.emit(node.right)
            t = self.fresh()
            op = type(node.op)
            if op is ast.Add:
                self.lines.append(f"{t}, {t}x, {t}y = {a} + {b}, {ax} + {bx}, {ay} + {by}")
            elif op is ast.Sub:
                self.lines.append(f"{t}, {t}x, {t}y = {a} - {b}, {ax} - {bx}, {ay} - {by}")
            elif op is ast.Mult:
                self.lines.append(f"{t}, {t}x, {t}y = {a} * {b}, {ax} * {b} + {bx} * {a}, {ay} * {b} + {by} * {a}")
            elif op is ast.Div:
                self.lines.append(f"{t} = {a} / {b}")
                self.lines.append(f"{t}x, {t}y = ({ax} - {t} * {bx}) / {b}, ({ay} - {t} * {by}) / {b}")
            else:  # power
                # The branches sgdtui takes at run time; those decided by literals are settled here.
                self.lines += [f"{t} = {a} ** {b}", f"if isinstance({t}, complex):",
                               "    raise ValueError('complex power')", f"{t}x = {t}y = 0.0"]
                if not (ax == ay == "0.0"):
                    slope = (f"2.0 * {a}" if b == "2.0" else f"{b} * {a} ** ({b} - 1.0)") if _is_literal(b) else (
                        f"{b} * {a} ** ({b} - 1.0) if {b} != 2.0 else 2.0 * {a}")
                    self.lines += [f"if {ax} or {ay}:", f"    slope = {slope}",
                                   f"    {t}x, {t}y = slope * {ax}, slope * {ay}"]
                if not (bx == by == "0.0"):
                    self.lines += [f"if {bx} or {by}:", f"    slope = {t} * math.log({a})",
                                   f"    {t}x, {t}y = {t}x + slope * {bx}, {t}y + slope * {by}"]
            return t, f"{t}x", f"{t}y"
        assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
        name = node.func.id
        args = [self.emit(arg) for arg in node.args]
        t = self.fresh()
        if name in _SCALAR_UNARY:
            (a, ax, ay), (value, slope) = args[0], _SCALAR_UNARY[name]
            self.lines.append(f"{t} = {value.format(a=a)}")
            self.lines.append(f"slope = {slope.format(a=a, v=t)}")
            self.lines.append(f"{t}x, {t}y = slope * {ax}, slope * {ay}")
            return t, f"{t}x", f"{t}y"
        (a, ax, ay), (b, bx, by) = args
        comparison = "<=" if name == "min" else ">="
        self.lines.append(f"{t}, {t}x, {t}y = ({a}, {ax}, {ay}) if {a} {comparison} {b} else ({b}, {bx}, {by})")
        return t, f"{t}x", f"{t}y"


_DUAL_UNARY = {  # name: (torch f(a), d f / d a given v), as in sgdtui.engine.expr._dual_unary
    "sin": ("torch.sin({a})", "torch.cos({a})"),
    "cos": ("torch.cos({a})", "-torch.sin({a})"),
    "tan": ("torch.tan({a})", "1.0 + {v} * {v}"),
    "exp": ("torch.exp({a})", "{v}"),
    "log": ("torch.log({a})", "1.0 / {a}"),
    "sqrt": ("torch.sqrt({a})", "0.5 / {v}"),
    "abs": ("torch.abs({a})", "torch.sign({a})"),
    "tanh": ("torch.tanh({a})", "1.0 - {v} * {v}"),
    "sigmoid": ("torch.sigmoid({a})", "{v} * (1.0 - {v})"),
    "softplus": ("torch.nn.functional.softplus({a})", "torch.where({a} > 20.0, 1.0, torch.sigmoid({a}))"),
    "relu": ("torch.relu({a})", "({a} > 0).to({a}.dtype)"),
}


class _Const:
    """A sub-tree sgdtui folds to one float."""

    def __init__(self, value: float):
        self.value = value


class _DualWriter:
    """Straight-line tensor code mirroring ``expr._compile_dual``: constant sub-trees folded, and
    each tangent None (exactly zero), a known float, or a variable, decided when writing."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.count = 0

    def fresh(self) -> str:
        self.count += 1
        return f"d{self.count}"

    @staticmethod
    def text(part: Any) -> str:
        return _literal(part) if isinstance(part, float) else str(part)

    def value_text(self, result) -> str:
        if isinstance(result, _Const):
            return f"{_literal(result.value)}, None, None"
        v, gx, gy = result
        return f"{v}, {self.text(gx)}, {self.text(gy)}"

    def assign(self, expression: str) -> str:
        name = self.fresh()
        self.lines.append(f"{name} = {expression}")
        return name

    # tangent algebra at writing time (expr._t_add, _t_neg, _t_scale)
    def t_add(self, a, b):
        if a is None:
            return b
        if b is None:
            return a
        return self.assign(f"{self.text(a)} + {self.text(b)}")

    def t_neg(self, a):
        if a is None:
            return None
        return -a if isinstance(a, float) else self.assign(f"-{a}")

    def t_scale(self, a, factor):
        if a is None:
            return None
        if isinstance(factor, float) and factor == 1.0:
            return a
        if isinstance(a, float) and a == 1.0:
            return factor
        return self.assign(f"{self.text(a)} * {self.text(factor)}")

    def emit(self, node: ast.AST):
        if isinstance(node, ast.Constant):
            return _Const(float(node.value))
        if isinstance(node, ast.Name):
            if node.id in _CONSTANTS:
                return _Const(_CONSTANTS[node.id])
            return ("x", 1.0, None) if node.id == "x" else ("y", None, 1.0)
        if isinstance(node, ast.UnaryOp):
            inner = self.emit(node.operand)
            if isinstance(node.op, ast.UAdd):
                return inner
            if isinstance(inner, _Const):
                return _Const(-inner.value)
            v, gx, gy = inner
            return self.assign(f"-{v}"), self.t_neg(gx), self.t_neg(gy)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        return self.call(node)

    def binary(self, node: ast.BinOp):
        left, right = self.emit(node.left), self.emit(node.right)
        op = type(node.op)
        if isinstance(left, _Const) and isinstance(right, _Const):
            return _Const(_fold(node))
        a, ax, ay = (left.value, None, None) if isinstance(left, _Const) else left
        b, bx, by = (right.value, None, None) if isinstance(right, _Const) else right
        ta, tb = self.text(a), self.text(b)
        if op is ast.Add:
            return self.assign(f"{ta} + {tb}"), self.t_add(ax, bx), self.t_add(ay, by)
        if op is ast.Sub:
            return self.assign(f"{ta} - {tb}"), self.t_add(ax, self.t_neg(bx)), self.t_add(ay, self.t_neg(by))
        if op is ast.Mult:
            v = self.assign(f"{ta} * {tb}")
            return (v, self.t_add(self.t_scale(ax, b), self.t_scale(bx, a)),
                    self.t_add(self.t_scale(ay, b), self.t_scale(by, a)))
        if op is ast.Div:
            v = self.assign(f"{ta} / {tb}")
            inv = 1.0 / b if isinstance(b, float) else self.assign(f"1.0 / {tb}")
            q = self.assign(f"-{v} * {self.text(inv)}") if (bx is not None or by is not None) else None
            return (v, self.t_add(self.t_scale(ax, inv), self.t_scale(bx, q)),
                    self.t_add(self.t_scale(ay, inv), self.t_scale(by, q)))
        if isinstance(right, _Const):  # a power with a constant exponent
            exponent = right.value
            if exponent == 2.0:
                v = self.assign(f"{ta} * {ta}")
                two_a = self.assign(f"2.0 * {ta}")
                return v, self.t_scale(ax, two_a), self.t_scale(ay, two_a)
            slope = self.assign(f"{_literal(exponent)} * {ta} ** ({_literal(exponent)} - 1.0)")
            return self.assign(f"{ta} ** {_literal(exponent)}"), self.t_scale(ax, slope), self.t_scale(ay, slope)
        v = self.assign(f"{ta} ** {tb}")
        if ax is None and ay is None:  # a constant base: d = v ln(a) db
            slope_b = self.assign(f"{v} * math.log({ta})" if isinstance(a, float) else f"{v} * torch.log({ta})")
            return v, self.t_scale(bx, slope_b), self.t_scale(by, slope_b)
        slope_a = self.assign(f"{tb} * {ta} ** ({tb} - 1.0)")
        slope_b = self.assign(f"{v} * torch.log({ta})")
        return (v, self.t_add(self.t_scale(ax, slope_a), self.t_scale(bx, slope_b)),
                self.t_add(self.t_scale(ay, slope_a), self.t_scale(by, slope_b)))

    def call(self, node: ast.Call):
        name = node.func.id
        args = [self.emit(arg) for arg in node.args]
        if all(isinstance(arg, _Const) for arg in args):
            return _Const(_fold(node))
        if name in _DUAL_UNARY:
            a, ax, ay = args[0]
            value, slope = _DUAL_UNARY[name]
            v = self.assign(value.format(a=a))
            s = self.assign(slope.format(a=a, v=v))
            return v, self.t_scale(ax, s), self.t_scale(ay, s)
        first, second = args
        pick = "torch.le" if name == "min" else "torch.ge"
        if isinstance(first, _Const) or isinstance(second, _Const):
            (a, ax, ay), const = (second, first.value) if isinstance(first, _Const) else (first, second.value)
            keyword = "max" if name == "min" else "min"
            v = self.assign(f"torch.clamp({a}, {keyword}={_literal(const)})")
            inside = self.assign(f"{pick}({a}, {_literal(const)}).to({a}.dtype)")
            return v, self.t_scale(ax, inside), self.t_scale(ay, inside)
        (a, ax, ay), (b, bx, by) = first, second
        mask = self.assign(f"{pick}({a}, {b})")
        v = self.assign(f"torch.where({mask}, {a}, {b})")

        def pick_tangent(ta, tb):
            if ta is None and tb is None:
                return None
            ta_text = "0.0" if ta is None else self.text(ta)
            tb_text = "0.0" if tb is None else self.text(tb)
            return self.assign(f"torch.where({mask}, {ta_text} * torch.ones_like({a}), {tb_text} * torch.ones_like({b}))")
        return v, pick_tangent(ax, bx), pick_tangent(ay, by)


def _literal(value: float) -> str:
    """A float as source that reads back to the bit and binds tightly (negatives in parentheses)."""
    text = repr(float(value))
    return f"({text})" if text.startswith("-") else text


def _fold(node: ast.AST) -> float:
    """A constant sub-tree's value, folded by sgdtui's own compiler (float arithmetic)."""
    import torch

    zero = torch.zeros(1, dtype=torch.float64)
    return float(compile_expr(ast.unparse(node))(zero, zero).reshape(-1)[0])


_TORCH_UNARY = {name: value.split("(")[0] for name, (value, _) in _DUAL_UNARY.items()}
_SYMBOLS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def _torch_expression(tree: ast.AST) -> str:
    """The formula as plain torch operations (for autograd), constants folded as sgdtui folds them."""

    def uses_variables(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) and n.id in ("x", "y") for n in ast.walk(node))

    def emit(node: ast.AST) -> str:
        if not uses_variables(node):
            return _literal(_fold(node))
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.BinOp):
            return f"({emit(node.left)} {_SYMBOLS[type(node.op)]} {emit(node.right)})"
        if isinstance(node, ast.UnaryOp):
            return f"(-{emit(node.operand)})" if isinstance(node.op, ast.USub) else emit(node.operand)
        name = node.func.id
        if name in _TORCH_UNARY:
            return f"{_TORCH_UNARY[name]}({emit(node.args[0])})"
        first, second = node.args
        if not uses_variables(first):
            first, second = second, first
        if not uses_variables(second):  # a constant side is a clamp bound, as in sgdtui's compiler
            bound = "max" if name == "min" else "min"
            return f"torch.clamp({emit(first)}, {bound}={_literal(_fold(second))})"
        return f"torch.{'minimum' if name == 'min' else 'maximum'}({emit(first)}, {emit(second)})"

    if not uses_variables(tree):
        return f"{_literal(_fold(tree))} + 0.0 * (x + y)  # a constant surface"
    return emit(tree)


# --- data surfaces ----------------------------------------------------------------------------

_DATA_PIECES = {  # kind: (mean loss over the last axis, d loss / d scores)
    "linear-regression": ("(scores - targets).square().mean(-1)", "2.0 * (scores - targets) / m"),
    "logistic-regression": ("torch.nn.functional.softplus(-targets * scores).mean(-1)",
                            "-targets * torch.sigmoid(-targets * scores) / m"),
    "perceptron": ("torch.relu(-targets * scores).mean(-1)",
                   "torch.where(targets * scores < 0, -targets, torch.zeros_like(scores)) / m"),
}


def _data_source(surface: DataSurface) -> str:
    loss, dloss = _DATA_PIECES[surface.kind]
    generator = inspect.getsource(make_surface_data)
    return "\n".join([
        "",
        "SurfaceError = ValueError",
        "",
        "",
        generator.rstrip(),
        "",
        "",
        f"INPUTS, TARGETS = make_surface_data({surface.kind!r}, {surface.n!r}, {surface.data_seed!r},"
        f" {surface.data_noise!r})",
        "",
        "",
        "def loss_from_scores(scores, targets):",
        f"    return {loss}",
        "",
        "",
        "def dloss_dscores(scores, targets):",
        "    m = scores.shape[-1]",
        f"    return {dloss}",
        "",
        "",
        "def surface_loss(w):",
        f'    """{surface.name}: the full-data loss of the parameters in each row of w (N, 2)."""',
        "    return loss_from_scores(w @ INPUTS.T, TARGETS)",
        "",
        "",
        "def value_and_grad(w):",
        '    """The full-data loss (N,) and its gradient (N, 2), in closed form as sgdtui computes them."""',
        "    scores = w @ INPUTS.T",
        "    return loss_from_scores(scores, TARGETS), dloss_dscores(scores, TARGETS) @ INPUTS",
        _NOISE,
        "",
        "def stochastic_grad(w, batch, noise, generator):",
        '    """Each row draws its own `batch` samples, with replacement, from the lane\'s stream."""',
        "    if batch >= len(TARGETS):",
        "        grad = value_and_grad(w)[1]",
        "    else:",
        "        idx = torch.randint(len(TARGETS), (w.shape[0], batch), generator=generator)",
        "        x, t = INPUTS[idx], TARGETS[idx]",
        "        scores = torch.einsum('nbk,nk->nb', x, w)",
        "        grad = torch.einsum('nb,nbk->nk', dloss_dscores(scores, t), x)",
        "    return add_noise(grad, batch, noise, generator)",
        "",
        "",
        "def minibatch_loss(w, batch, generator):",
        '    """The loss the minibatch gradient belongs to (for --autograd), drawing the same samples."""',
        "    if batch >= len(TARGETS):",
        "        return surface_loss(w)",
        "    idx = torch.randint(len(TARGETS), (w.shape[0], batch), generator=generator)",
        "    return loss_from_scores(torch.einsum('nbk,nk->nb', INPUTS[idx], w), TARGETS[idx])",
        "",
        "",
        "DATA_DRIVEN = True",
        "",
    ])
