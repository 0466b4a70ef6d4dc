"""Safe expression compiler: a small formula language for 2D loss surfaces.

A user types ``(1 - x)**2 + 100*(y - x**2)**2`` and gets back a function of two torch
tensors. The text is never handed to ``eval``/``exec``/``compile``: it is tokenized and
parsed with :mod:`ast` (``mode="eval"``), every token and node is checked against a
whitelist and constant sub-expressions are folded, giving a small checked tree
(:attr:`CompiledExpr.tree`). That tree is turned once into three sets of closures, so calling
a result costs only the arithmetic: torch tensors (differentiable by autograd), forward-mode
dual numbers on tensors (value and gradient without an autograd graph), and the same on
Python floats (one point, ~10x cheaper than tiny tensor ops).

The language:

* numbers: int and float literals (magnitude at most 1e12);
* names: ``x``, ``y`` (the variables), ``pi``, ``e``;
* binary ``+ - * / **``, unary ``-`` and ``+``, parentheses;
* one-argument functions ``sin cos tan exp log sqrt abs tanh sigmoid softplus relu`` and the
  two-argument elementwise ``min max``.

Everything else is refused with :class:`ExprError`, a one-line message naming the offending
token and, where it has one, its 1-based column. Nothing else is ever raised.

Numbers follow torch's float64 semantics on every path, constant folding included: nothing
raises, ``1/0`` is inf, ``0/0``, ``log(-1)``, ``sqrt(-1)`` and ``(-8)**(1/3)`` are nan,
``log(0)`` is -inf, overflow is ±inf, and ``min``/``max`` propagate nan (``torch.minimum``).
The paths agree bit for bit where they run the same operations and to ~1e-15 otherwise (torch
vectorizes exp, log, sin, ... differently from the C library; it computes ``c/x`` as
``(1/x)*c`` and ``x**3`` as ``x*x*x``).

Derivatives follow torch autograd's conventions, so the forward-mode gradient equals autograd's
wherever autograd's is finite (up to rounding):

* at kinks: ``abs'(0) = 0`` and ``relu'(0) = 0``; ``min(u, v)``/``max(u, v)`` take the derivative
  of the argument they pick and the mean of both at a tie (``torch.minimum``), but against a
  constant bound the bound is inclusive (``min(u, 1)`` is ``clamp``: derivative of u at u = 1);
* powers: ``d(u**0)/du = 0``; ``d(u**v)/dv = 0`` where u = 0 and v >= 0 (so ``x**y`` at x = 0
  has a finite gradient); elsewhere ``d(u**v) = v*u**(v-1) du + u**v*log(u) dv``;
* where a derivative is infinite or nan though the value is finite (``sqrt(u)`` and ``u**c``
  with 0 < c < 1 at u = 0, the ``log(u)`` in ``d(u**v)/dv`` for u <= 0), a zero derivative of u
  (of v) times it is 0, not nan: autograd gives 0 where that zero comes from relu, min, max or
  a clamp (``sqrt(relu(x))`` at x < 0); where it gives nan (``sqrt(x**2)`` at 0) this gives 0,
  a subgradient;
* anywhere else the forward-mode gradient is inf or nan at a finite value, the gradient at
  those points is autograd's (computed for them alone): forward mode multiplies a mask's zero by
  an infinite derivative above it where reverse mode replaces the gradient by zero
  (``tanh(log(relu(x)))`` at x < 0), and a product of huge factors may overflow in one order
  and not the other (``sigmoid(x**1000)``).
"""

from __future__ import annotations

import ast
import io
import keyword
import math
import operator
import tokenize
from collections.abc import Callable, Mapping
from typing import Any, Union

import torch
import torch.nn.functional as torch_functional

__all__ = [
    "ALLOWED_FUNCTIONS",
    "ALLOWED_NAMES",
    "ALLOWED_VARIABLES",
    "CompiledExpr",
    "ExprError",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_LITERAL",
    "MAX_NODES",
    "compile_expr",
]

# Limits that keep absurd input from costing time or memory; everything is checked before
# any torch work happens.
MAX_LENGTH = 2000
MAX_DEPTH = 40
MAX_NODES = 400
MAX_LITERAL = 1e12

ALLOWED_VARIABLES: tuple[str, ...] = ("x", "y")
_NAMED_CONSTANTS: Mapping[str, float] = {"pi": math.pi, "e": math.e}
ALLOWED_NAMES: tuple[str, ...] = ALLOWED_VARIABLES + tuple(_NAMED_CONSTANTS)


# --------------------------------------------------------------------------------------
# Float arithmetic with torch's semantics. Python's float operations raise where torch returns
# inf or nan (1/0, log(0), exp(1000), (-8)**(1/3) is even complex); these never do. They serve
# constant folding and the float path, whose fast path calls math.* directly and comes here
# only when that raises.
# --------------------------------------------------------------------------------------


def _float_div(a: float, b: float) -> float:
    """a / b as IEEE 754 (and torch) divide: ±inf for a nonzero a over ±0, nan for 0/0."""
    try:
        return a / b
    except ZeroDivisionError:
        if a == 0.0 or a != a:
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _is_odd_integer(value: float) -> bool:
    return math.isfinite(value) and value % 2.0 == 1.0


def _float_pow(a: float, b: float) -> float:
    """C99 pow, as torch.pow of two tensors computes it: never complex, never an exception."""
    try:
        return math.pow(a, b)
    except ValueError:  # 0 to a negative power, or a negative base to a non-integer power
        if a == 0.0:
            return math.copysign(math.inf, a) if _is_odd_integer(b) else math.inf
        return math.nan
    except OverflowError:
        return -math.inf if a < 0.0 and _is_odd_integer(b) else math.inf


def _float_pow_const(a: float, c: float) -> float:
    """torch.pow(tensor, c) for a constant exponent c: torch computes u**0.5 as sqrt(u) and
    u**-0.5 as 1/sqrt(u), which differ from C's pow at -0.0 and -inf."""
    if (c == 0.5 or c == -0.5) and (a == 0.0 or a == -math.inf):
        root = a if a == 0.0 else math.nan
        return root if c == 0.5 else _float_div(1.0, root)
    return _float_pow(a, c)


def _float_log(a: float) -> float:
    if a > 0.0 or a != a:
        return math.log(a)
    return -math.inf if a == 0.0 else math.nan


def _fold_sigmoid(value: float) -> float:
    # Split by sign so exp never overflows.
    if value >= 0.0:
        return 1.0 / (1.0 + math.exp(-value))
    exp_value = math.exp(value)
    return exp_value / (1.0 + exp_value)


def _fold_softplus(value: float) -> float:
    # Same threshold as torch.nn.functional.softplus (beta=1, threshold=20).
    return value if value > 20.0 else math.log1p(math.exp(value))


def _float_relu(value: float) -> float:
    # torch.relu keeps nan and -0.0.
    return 0.0 if value < 0.0 else value


def _float_min(a: float, b: float) -> float:
    """torch.minimum: nan if either is nan; the first at a tie (so min(0.0, -0.0) is 0.0)."""
    if a != a or b != b:
        return math.nan
    return a if a <= b else b


def _float_max(a: float, b: float) -> float:
    if a != a or b != b:
        return math.nan
    return a if a >= b else b


# name: (f(a), f'(a) given (v, a)) in plain float arithmetic; either may raise ValueError,
# OverflowError or ZeroDivisionError, and then _float_unary_edge gives torch's answer.
_FLOAT_UNARY: Mapping[str, tuple[Callable[[float], float], Callable[[float, float], float]]] = {
    "sin": (math.sin, lambda v, a: math.cos(a)),
    "cos": (math.cos, lambda v, a: -math.sin(a)),
    "tan": (math.tan, lambda v, a: 1.0 + v * v),
    "exp": (math.exp, lambda v, a: v),
    "log": (math.log, lambda v, a: 1.0 / a),
    "sqrt": (math.sqrt, lambda v, a: 0.5 / v),
    "abs": (abs, lambda v, a: (a > 0) - (a < 0)),
    "tanh": (math.tanh, lambda v, a: 1.0 - v * v),
    "sigmoid": (_fold_sigmoid, lambda v, a: v * (1.0 - v)),
    "softplus": (_fold_softplus, lambda v, a: 1.0 if a > 20.0 else _fold_sigmoid(a)),
    "relu": (_float_relu, lambda v, a: 1.0 if a > 0 else 0.0),
}
_FLOAT_ERRORS = (ValueError, OverflowError, ZeroDivisionError)


def _float_unary_edge(name: str, a: float) -> tuple[float, float]:
    """(f(a), f'(a)) where plain float arithmetic raises: what torch and its autograd give."""
    if name == "exp":  # overflow
        return math.inf, math.inf
    if name == "log":  # a <= 0: log(±0) = -inf with slope 1/a = ±inf; log(a < 0) = nan, slope 1/a
        return (-math.inf if a == 0.0 else math.nan), _float_div(1.0, a)
    if name == "sqrt":  # sqrt(±0) = ±0 with slope ±inf; sqrt(a < 0) = nan
        return (a, math.copysign(math.inf, a)) if a == 0.0 else (math.nan, math.nan)
    if name in ("sin", "cos", "tan"):  # of ±inf
        return math.nan, math.nan
    raise AssertionError(f"{name}({a!r}) raised in float arithmetic")


def _float_unary(name: str, a: float) -> float:
    try:
        return _FLOAT_UNARY[name][0](a)
    except _FLOAT_ERRORS:
        return _float_unary_edge(name, a)[0]


# name -> (torch implementation, float implementation with torch's semantics, for folding)
_UNARY_FUNCTIONS: Mapping[str, tuple[Callable, Callable[[float], float]]] = {
    "sin": (torch.sin, lambda a: _float_unary("sin", a)),
    "cos": (torch.cos, lambda a: _float_unary("cos", a)),
    "tan": (torch.tan, lambda a: _float_unary("tan", a)),
    "exp": (torch.exp, lambda a: _float_unary("exp", a)),
    "log": (torch.log, lambda a: _float_unary("log", a)),
    "sqrt": (torch.sqrt, lambda a: _float_unary("sqrt", a)),
    "abs": (torch.abs, abs),
    "tanh": (torch.tanh, math.tanh),
    "sigmoid": (torch.sigmoid, _fold_sigmoid),
    "softplus": (torch_functional.softplus, _fold_softplus),
    "relu": (torch.relu, _float_relu),
}
_BINARY_FUNCTIONS: Mapping[str, tuple[Callable, Callable[[float, float], float]]] = {
    "min": (torch.minimum, _float_min),
    "max": (torch.maximum, _float_max),
}
ALLOWED_FUNCTIONS: tuple[str, ...] = tuple(_UNARY_FUNCTIONS) + tuple(_BINARY_FUNCTIONS)

# ast operator -> (symbol, the operation on tensors (and a float on one side), on two floats)
_BINARY_OPERATORS: Mapping[type, tuple[str, Callable, Callable[[float, float], float]]] = {
    ast.Add: ("+", operator.add, operator.add),
    ast.Sub: ("-", operator.sub, operator.sub),
    ast.Mult: ("*", operator.mul, operator.mul),
    ast.Div: ("/", operator.truediv, _float_div),
    ast.Pow: ("**", operator.pow, _float_pow),
}
_UNARY_OPERATORS: Mapping[type, str] = {ast.USub: "-", ast.UAdd: "+"}
_ALLOWED_OPERATOR_TOKENS = frozenset({"+", "-", "*", "/", "**", "(", ")", ","})
_COMPARISON_TOKENS = frozenset({"<", ">", "<=", ">=", "==", "!="})
_ASSIGNMENT_TOKENS = frozenset(
    {"=", ":=", "+=", "-=", "*=", "/=", "//=", "%=", "**=", "@=", "&=", "|=", "^=", ">>=", "<<="}
)
_BRACKET_HINTS = {
    "[": "no lists or subscripts",
    "]": "no lists or subscripts",
    "{": "no sets or dicts",
    "}": "no sets or dicts",
}
_ALLOWED_NAMES_TEXT = ", ".join(ALLOWED_NAMES)
_ALLOWED_FUNCTIONS_TEXT = ", ".join(ALLOWED_FUNCTIONS)
_UNARY_CHAIN_TOKENS = frozenset({"+", "-"})


class ExprError(ValueError):
    """A refused expression; the message is one line naming the offending token."""


def _at(column: int | None) -> str:
    return f" at column {column}" if column is not None else ""


def _shorten(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------
# Pass 1: characters and tokens. Gives precise columns for most refusals and bounds the
# nesting before ast.parse sees the text.
# --------------------------------------------------------------------------------------


def _check_characters(source: str) -> str:
    if len(source) > MAX_LENGTH:
        raise ExprError(f"expression is {len(source)} characters long (the limit is {MAX_LENGTH})")
    if not source.strip():
        raise ExprError("expression is empty: write a formula in x and y, e.g. x**2 + y**2")
    for index, char in enumerate(source):
        if not char.isascii():
            raise ExprError(f"character {char!r} at column {index + 1} is not allowed (expressions are ASCII)")
        if char in "\t\n\r\f\v":
            continue
        if not char.isprintable():
            raise ExprError(f"control character {char!r} at column {index + 1} is not allowed")
    # Same-length replacement keeps every column valid while putting everything on one line.
    return source.translate(str.maketrans("\t\n\r\f\v", "     "))


def _scan_tokens(text: str, shift: int) -> None:
    try:
        tokens = [
            token
            for token in tokenize.generate_tokens(io.StringIO(text).readline)
            if token.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)
        ]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        # Unbalanced brackets and the like: ast.parse below reports them with a position.
        return
    paren_depth = 0
    unary_run = 0
    for index, token in enumerate(tokens):
        column = token.start[1] + 1 + shift
        following = tokens[index + 1].string if index + 1 < len(tokens) else None
        if token.type == tokenize.NAME:
            name = token.string
            if keyword.iskeyword(name):
                raise ExprError(f"keyword {name!r}{_at(column)} is not allowed")
            if following == "(":
                if name not in ALLOWED_FUNCTIONS:
                    raise ExprError(
                        f"function {name!r}{_at(column)} is not allowed (allowed: {_ALLOWED_FUNCTIONS_TEXT})"
                    )
            elif name in ALLOWED_FUNCTIONS:
                raise ExprError(f"function {name!r}{_at(column)} must be called, as in {name}(x)")
            elif name not in ALLOWED_NAMES:
                raise ExprError(f"unknown name {name!r}{_at(column)} (allowed: {_ALLOWED_NAMES_TEXT})")
        elif token.type == tokenize.STRING:
            raise ExprError(f"string {_shorten(token.string)!r}{_at(column)} is not allowed")
        elif token.type == tokenize.NUMBER:
            if token.string[-1] in "jJ":
                raise ExprError(f"complex number {token.string!r}{_at(column)} is not allowed")
        elif token.type == tokenize.OP:
            _check_operator_token(token.string, column, following)
        elif token.type == tokenize.COMMENT:
            raise ExprError(f"comment {_shorten(token.string)!r}{_at(column)} is not allowed")
        else:  # ERRORTOKEN and anything exotic
            if token.string.strip():
                raise ExprError(f"unexpected character {token.string.strip()!r}{_at(column)}")
            continue
        # Bound nesting here so the parser never sees a pathological tree.
        if token.string == "(":
            paren_depth += 1
            if paren_depth > MAX_DEPTH:
                raise ExprError(f"parentheses nested deeper than {MAX_DEPTH}{_at(column)}")
        elif token.string == ")":
            paren_depth -= 1
        if token.string in _UNARY_CHAIN_TOKENS:
            unary_run += 1
            if unary_run > MAX_DEPTH:
                raise ExprError(f"more than {MAX_DEPTH} signs in a row{_at(column)}")
        else:
            unary_run = 0


def _check_operator_token(text: str, column: int, following: str | None) -> None:
    if text in _ALLOWED_OPERATOR_TOKENS:
        return
    if text == "^":
        raise ExprError(f"operator '^'{_at(column)} is not allowed (use ** for powers)")
    if text == ".":
        attribute = "." + following if following and following.isidentifier() else "."
        raise ExprError(f"attribute access {attribute!r}{_at(column)} is not allowed")
    if text in _COMPARISON_TOKENS:
        raise ExprError(f"comparison {text!r}{_at(column)} is not allowed")
    if text in _ASSIGNMENT_TOKENS:
        raise ExprError(f"assignment {text!r}{_at(column)} is not allowed")
    if text in _BRACKET_HINTS:
        raise ExprError(f"{text!r}{_at(column)} is not allowed ({_BRACKET_HINTS[text]})")
    if text in (";", ":", "...", "->"):
        raise ExprError(f"unexpected token {text!r}{_at(column)}")
    raise ExprError(f"operator {text!r}{_at(column)} is not allowed")


def _parse(text: str, shift: int) -> ast.Expression:
    try:
        return ast.parse(text, mode="eval")
    except SyntaxError as error:
        raise ExprError(_describe_syntax_error(text, error, shift)) from None
    except (ValueError, RecursionError, MemoryError) as error:
        raise ExprError(f"expression could not be parsed: {type(error).__name__}") from None


_MULTI_CHAR_OPERATORS = sorted(
    ["**", "//", "==", "!=", "<=", ">=", ":=", "->", "<<", ">>", "**=", "//=", "...", "+=", "-=", "*=", "/="],
    key=len,
    reverse=True,
)


def _token_at(text: str, index: int) -> str:
    char = text[index]
    if char.isalnum() or char in "_.":
        end = index
        while end < len(text) and (text[end].isalnum() or text[end] in "_."):
            end += 1
        return text[index:end]
    for candidate in _MULTI_CHAR_OPERATORS:
        if text.startswith(candidate, index):
            return candidate
    return char


def _describe_syntax_error(text: str, error: SyntaxError, shift: int) -> str:
    offset = error.offset or 0
    index = offset - 1
    if error.msg.endswith("was never closed") and 0 <= index < len(text):
        return f"{text[index]!r} at column {offset + shift} is never closed"
    if index < 0 or index >= len(text) or not text[index:].strip():
        return "unexpected end of expression"
    # Python sometimes points at whitespace before the culprit.
    while text[index] == " ":
        index += 1
    return f"unexpected token {_token_at(text, index)!r} at column {index + 1 + shift}"


# --------------------------------------------------------------------------------------
# Pass 2: the tree. Size limits, then a whitelist walk that folds constants and builds
# closures.
# --------------------------------------------------------------------------------------


def _check_size(tree: ast.Expression, shift: int) -> None:
    # Iterative walk (no recursion on untrusted depth); the text is at most MAX_LENGTH long, so
    # the tree is small enough to visit fully before deciding which limit to report.
    node_count = 0
    deepest: tuple[int, ast.AST] = (1, tree.body)
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        node_count += 1
        if depth > deepest[0]:
            deepest = (depth, node)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node) if isinstance(child, ast.expr))
    if node_count > MAX_NODES:
        raise ExprError(f"expression has {node_count} nodes (the limit is {MAX_NODES})")
    if deepest[0] > MAX_DEPTH:
        raise ExprError(f"expression is nested deeper than {MAX_DEPTH}{_at(_node_column(deepest[1], shift))}")


def _node_column(node: ast.AST, shift: int) -> int | None:
    offset = getattr(node, "col_offset", None)
    # Source is ASCII on one line (pass 1), so byte offsets are character columns.
    return None if offset is None else offset + 1 + shift


Evaluator = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# A compiled node is either a folded Python float or a closure over (x, y).
Compiled = Union[float, Evaluator]


def _constant(value: float) -> ast.Constant:
    return ast.Constant(value=value)


class _Checker:
    """Walks the parsed tree against the whitelist and returns the checked tree: only
    ``Constant`` (a float), ``Name`` (x or y), ``UnaryOp`` (``USub``), ``BinOp`` (+ - * / **)
    and ``Call`` of an allowed function, with every constant sub-expression folded in float
    arithmetic with torch's semantics (it may be inf or nan) and unary plus dropped."""

    def __init__(self, text: str, shift: int) -> None:
        self.text = text
        self.shift = shift
        self.uses: set[str] = set()

    def column(self, node: ast.AST) -> int | None:
        return _node_column(node, self.shift)

    def segment(self, node: ast.AST) -> str:
        return _shorten(ast.get_source_segment(self.text, node) or type(node).__name__)

    def refuse(self, what: str, node: ast.AST, hint: str = "") -> ExprError:
        return ExprError(f"{what}{_at(self.column(node))} is not allowed{hint}")

    def check(self, node: ast.AST) -> ast.expr:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.BinOp):
            return self.binary(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.refuse(f"{_describe_node(node)} {self.segment(node)!r}", node)

    def constant(self, node: ast.Constant) -> ast.Constant:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.refuse(f"literal {self.segment(node)!r}", node)
        # Compare before float(): a huge int would overflow the conversion.
        if not (abs(value) <= MAX_LITERAL):
            raise ExprError(f"number {self.segment(node)!r}{_at(self.column(node))} exceeds {MAX_LITERAL:g}")
        return _constant(float(value))

    def name(self, node: ast.Name) -> ast.expr:
        if node.id in _NAMED_CONSTANTS:
            return _constant(_NAMED_CONSTANTS[node.id])
        if node.id in ALLOWED_VARIABLES:
            self.uses.add(node.id)
            return ast.Name(id=node.id, ctx=ast.Load())
        raise ExprError(f"unknown name {node.id!r}{_at(self.column(node))} (allowed: {_ALLOWED_NAMES_TEXT})")

    def binary(self, node: ast.BinOp) -> ast.expr:
        entry = _BINARY_OPERATORS.get(type(node.op))
        if entry is None:
            symbol = _OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)
            hint = " (use ** for powers)" if symbol == "^" else ""
            raise ExprError(f"operator {symbol!r}{_at(self.operator_column(node, symbol))} is not allowed{hint}")
        left = self.check(node.left)
        right = self.check(node.right)
        if isinstance(left, ast.Constant) and isinstance(right, ast.Constant):
            return _constant(entry[2](left.value, right.value))
        return ast.BinOp(left=left, op=type(node.op)(), right=right)

    def operator_column(self, node: ast.BinOp, symbol: str) -> int | None:
        start = getattr(node.left, "end_col_offset", None)
        stop = getattr(node.right, "col_offset", None)
        if start is None or stop is None:
            return self.column(node)
        found = self.text.find(symbol, start, stop)
        return found + 1 + self.shift if found >= 0 else self.column(node)

    def unary(self, node: ast.UnaryOp) -> ast.expr:
        entry = _UNARY_OPERATORS.get(type(node.op))
        if entry is None:
            symbol = _OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise self.refuse(f"operator {symbol!r}", node)
        operand = self.check(node.operand)
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(operand, ast.Constant):
            return _constant(-operand.value)
        return ast.UnaryOp(op=ast.USub(), operand=operand)

    def call(self, node: ast.Call) -> ast.expr:
        if not isinstance(node.func, ast.Name):
            raise self.refuse(f"call of {self.segment(node.func)!r}", node, " (only named functions can be called)")
        name = node.func.id
        column = self.column(node)
        if name not in ALLOWED_FUNCTIONS:
            raise ExprError(f"function {name!r}{_at(column)} is not allowed (allowed: {_ALLOWED_FUNCTIONS_TEXT})")
        if node.keywords:
            raise self.refuse(f"keyword argument in {name}()", node)
        for argument in node.args:
            if isinstance(argument, ast.Starred):
                raise self.refuse(f"starred argument {self.segment(argument)!r}", argument)
        expected = 1 if name in _UNARY_FUNCTIONS else 2
        if len(node.args) != expected:
            plural = "argument" if expected == 1 else "arguments"
            raise ExprError(
                f"function {name!r}{_at(column)} takes {expected} {plural}, got {len(node.args)}"
            )
        arguments = [self.check(argument) for argument in node.args]
        if all(isinstance(argument, ast.Constant) for argument in arguments):
            values = [argument.value for argument in arguments]
            fold = _UNARY_FUNCTIONS[name][1] if expected == 1 else _BINARY_FUNCTIONS[name][1]
            return _constant(fold(*values))
        return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=arguments, keywords=[])


_OPERATOR_SYMBOLS: Mapping[type, str] = {
    ast.Mod: "%",
    ast.FloorDiv: "//",
    ast.MatMult: "@",
    ast.BitXor: "^",
    ast.BitOr: "|",
    ast.BitAnd: "&",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Not: "not",
    ast.Invert: "~",
}

_NODE_DESCRIPTIONS: Mapping[type, str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscript",
    ast.Lambda: "lambda",
    ast.ListComp: "list comprehension",
    ast.SetComp: "set comprehension",
    ast.DictComp: "dict comprehension",
    ast.GeneratorExp: "generator expression",
    ast.IfExp: "conditional expression",
    ast.Compare: "comparison",
    ast.BoolOp: "boolean operator",
    ast.Tuple: "tuple",
    ast.List: "list",
    ast.Set: "set",
    ast.Dict: "dict",
    ast.JoinedStr: "f-string",
    ast.NamedExpr: "assignment expression",
    ast.Starred: "starred expression",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slice",
}


def _describe_node(node: ast.AST) -> str:
    return _NODE_DESCRIPTIONS.get(type(node), f"construct {type(node).__name__}")


class CompiledExpr:
    """A checked, compiled expression: ``f(x, y) -> Tensor``.

    ``x`` and ``y`` are floating tensors of broadcastable shapes; the result has their
    broadcast shape and dtype (constants are Python floats, so they never change the dtype)
    and is differentiable to any order through ordinary torch autograd.

    Attributes:
        source: the normalized text (``ast.unparse`` of the parsed expression).
        uses: the variables the expression reads, a subset of ``{"x", "y"}``.
        tree: the checked tree every evaluator is compiled from: ``Constant`` (floats, folded,
            possibly inf or nan), ``Name`` (``x``, ``y``), ``UnaryOp`` (``USub`` only),
            ``BinOp`` (``+ - * / **``) and ``Call`` of an allowed function by name.
        value_and_grad(x, y): ``(f, df/dx, df/dy)`` tensors by forward-mode differentiation
            (no autograd graph), full-shaped.
        scalar_value_and_grad(x, y): the same on Python floats, for one point.
    Neither raises: both follow torch's inf/nan semantics (see the module docstring).
    """

    __slots__ = ("source", "uses", "tree", "_evaluate", "value_and_grad", "scalar_value_and_grad")

    def __init__(self, source: str, uses: frozenset[str], evaluate: Evaluator, value_and_grad=None,
                 scalar_value_and_grad=None, tree: ast.expr | None = None) -> None:
        self.source = source
        self.uses = uses
        self.tree = tree
        self._evaluate = evaluate
        self.value_and_grad = value_and_grad
        self.scalar_value_and_grad = scalar_value_and_grad

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self._evaluate(x, y)

    def __repr__(self) -> str:
        return f"CompiledExpr({self.source!r})"


def compile_expr(source: str) -> CompiledExpr:
    """Check ``source`` against the whitelist and compile it; raises :class:`ExprError`."""
    if not isinstance(source, str):
        raise ExprError(f"expression must be a string, got {type(source).__name__}")
    text = _check_characters(source)
    # The parser refuses leading whitespace ("unexpected indent"); drop it and shift reported columns.
    shift = len(text) - len(text.lstrip(" "))
    text = text[shift:]
    _scan_tokens(text, shift)
    tree = _parse(text, shift)
    _check_size(tree, shift)
    checker = _Checker(text, shift)
    checked = checker.check(tree.body)
    uses = frozenset(checker.uses)
    evaluate = _complete(_compile_tensor(checked), uses)
    value_and_grad = _value_and_grad_fn(checked, evaluate)
    return CompiledExpr(ast.unparse(tree), uses, evaluate, value_and_grad,
                        _scalar_value_and_grad_fn(checked, value_and_grad), checked)


def _complete(compiled: Compiled, uses: frozenset[str]) -> Evaluator:
    """Make the result depend on both inputs, so it broadcasts to their shape and autograd stays connected.

    An unused variable joins as ``0.0 * v``: the gradient is exactly zero (the value turns
    NaN only where that unused input is itself inf or NaN).
    """
    if isinstance(compiled, float):
        constant = compiled
        return lambda x, y: x * 0.0 + y * 0.0 + constant
    if uses == {"x", "y"}:
        return compiled
    if uses == {"x"}:
        return lambda x, y: compiled(x, y) + y * 0.0
    return lambda x, y: compiled(x, y) + x * 0.0


# --- tensors ------------------------------------------------------------------------------


def _compile_tensor(node: ast.expr) -> Compiled:
    """The checked tree as closures over tensors (a folded constant stays a float)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return (lambda x, y: x) if node.id == "x" else (lambda x, y: y)
    if isinstance(node, ast.UnaryOp):
        operand = _compile_tensor(node.operand)
        return lambda x, y: -operand(x, y)
    if isinstance(node, ast.BinOp):
        apply = _BINARY_OPERATORS[type(node.op)][1]
        left, right = _compile_tensor(node.left), _compile_tensor(node.right)
        if isinstance(left, float):
            return lambda x, y: apply(left, right(x, y))
        if isinstance(right, float):
            return lambda x, y: apply(left(x, y), right)
        return lambda x, y: apply(left(x, y), right(x, y))
    name = node.func.id
    arguments = [_compile_tensor(argument) for argument in node.args]
    if name in _UNARY_FUNCTIONS:
        torch_function = _UNARY_FUNCTIONS[name][0]
        (operand,) = arguments
        return lambda x, y: torch_function(operand(x, y))
    torch_function = _BINARY_FUNCTIONS[name][0]
    first, second = arguments
    # torch.minimum/maximum need two tensors; a constant side becomes a clamp bound.
    bound_keyword = "max" if name == "min" else "min"
    if isinstance(first, float):
        first, second = second, first
    if isinstance(second, float):
        bound = second
        return lambda x, y: torch.clamp(first(x, y), **{bound_keyword: bound})
    return lambda x, y: torch_function(first(x, y), second(x, y))


# --- forward-mode gradient ----------------------------------------------------------------
# A step on a 2-D surface needs the loss and its gradient at a handful of points. Building an
# autograd graph for that costs ~3x the arithmetic itself, so the checked tree is compiled a
# second time into closures returning (value, d/dx, d/dy). A tangent is None (exactly zero), a
# float, or a tensor; zeros are never materialized, so a term that only depends on y costs
# nothing in x. Values are computed by the same torch operations as the tensor closures above.

Tangent = Union[None, float, torch.Tensor]
Dual = Callable[[torch.Tensor, torch.Tensor], tuple[Any, Tangent, Tangent]]


def _t_add(a: Tangent, b: Tangent) -> Tangent:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _t_neg(a: Tangent) -> Tangent:
    return None if a is None else -a


def _t_scale(a: Tangent, factor: Any) -> Tangent:
    """a * factor, where factor is a float or a tensor."""
    if a is None:
        return None
    if isinstance(factor, float) and factor == 1.0:
        return a
    if isinstance(a, float) and a == 1.0:  # d/dx of x itself: skip a multiply by one
        return factor
    return a * factor


def _t_scale_keep_zero(a: Tangent, factor: Any) -> Tangent:
    """a * factor where factor may be inf or nan at a finite value (sqrt' and (u**c)' for 0 < c < 1
    at u = 0, log(u) in d(u**v)/dv): a zero tangent stays zero (see the module docstring)."""
    if isinstance(a, torch.Tensor):
        return torch.where(a == 0, a, a * factor)
    return a if a is None or a == 0.0 else _t_scale(a, factor)


def _t_pick(tie: torch.Tensor, first: torch.Tensor, a: Tangent, b: Tangent, like: torch.Tensor) -> Tangent:
    """min/max of two tensors: a's tangent where ``first``, the mean at a tie, else b's."""
    if a is None and b is None:
        return None
    a = torch.full_like(like, 0.0 if a is None else a) if not isinstance(a, torch.Tensor) else a
    b = torch.full_like(like, 0.0 if b is None else b) if not isinstance(b, torch.Tensor) else b
    return torch.where(tie, (a + b) * 0.5, torch.where(first, a, b))


def _has_zero(a: torch.Tensor) -> bool:
    """Whether the keep-zero rule is needed (it gives the same bits where a != 0; while fastgrad
    traces, the answer cannot depend on the data, so it is always yes)."""
    return not PATCH.on or torch.count_nonzero(a).item() < a.numel()  # cheaper than (a == 0).any()


def _dual_unary(name: str, v: Any, a: Any) -> Any:
    """d(name)(a)/da, given a and v = name(a)."""
    if name == "sin":
        return torch.cos(a)
    if name == "cos":
        return -torch.sin(a)
    if name == "tan":
        return 1.0 + v * v
    if name == "exp":
        return v
    if name == "log":
        return 1.0 / a
    if name == "sqrt":
        return 0.5 / v
    if name == "abs":
        return torch.sign(a)
    if name == "tanh":
        return 1.0 - v * v
    if name == "sigmoid":
        return v * (1.0 - v)
    if name == "softplus":  # torch's softplus is linear above its threshold of 20
        return torch.where(a > 20.0, 1.0, torch.sigmoid(a))
    if name == "relu":
        return (a > 0).to(a.dtype)
    raise AssertionError(name)


def _compile_dual(node: ast.expr) -> tuple[float, None, None] | Dual:
    """Compile the checked tree; a constant is a (float, None, None) tuple (only the whole
    expression can be one: the checker folds constant sub-trees)."""
    if isinstance(node, ast.Constant):
        return (node.value, None, None)
    if isinstance(node, ast.Name):
        if node.id == "x":
            return lambda x, y: (x, 1.0, None)
        return lambda x, y: (y, None, 1.0)
    if isinstance(node, ast.UnaryOp):
        inner = _compile_dual(node.operand)

        def neg(x, y):
            a, ax, ay = inner(x, y)
            return -a, _t_neg(ax), _t_neg(ay)
        return neg
    if isinstance(node, ast.BinOp):
        return _dual_binary(node)
    return _dual_call(node)


def _dual_binary(node: ast.BinOp) -> Dual:
    left, right = _compile_dual(node.left), _compile_dual(node.right)
    op = type(node.op)
    lf = (lambda x, y, c=left: c) if isinstance(left, tuple) else left
    rf = (lambda x, y, c=right: c) if isinstance(right, tuple) else right
    if op is ast.Add:
        def add(x, y):
            a, ax, ay = lf(x, y)
            b, bx, by = rf(x, y)
            return a + b, _t_add(ax, bx), _t_add(ay, by)
        return add
    if op is ast.Sub:
        def sub(x, y):
            a, ax, ay = lf(x, y)
            b, bx, by = rf(x, y)
            return a - b, _t_add(ax, _t_neg(bx)), _t_add(ay, _t_neg(by))
        return sub
    if op is ast.Mult:
        def mul(x, y):
            a, ax, ay = lf(x, y)
            b, bx, by = rf(x, y)
            return a * b, _t_add(_t_scale(ax, b), _t_scale(bx, a)), _t_add(_t_scale(ay, b), _t_scale(by, a))
        return mul
    if op is ast.Div:
        if isinstance(right, tuple):
            divisor = right[0]
            inverse = _float_div(1.0, divisor)

            def div_const(x, y):
                a, ax, ay = left(x, y)
                return a / divisor, _t_scale(ax, inverse), _t_scale(ay, inverse)
            return div_const

        def div(x, y):
            a, ax, ay = lf(x, y)
            b, bx, by = right(x, y)
            v = a / b
            inv = 1.0 / b
            q = -v * inv if (bx is not None or by is not None) else None
            return v, _t_add(_t_scale(ax, inv), _t_scale(bx, q)), _t_add(_t_scale(ay, inv), _t_scale(by, q))
        return div
    # power: torch.pow's three forms (tensor ** constant, constant ** tensor, tensor ** tensor)
    if isinstance(right, tuple):
        return _dual_power_constant_exponent(left, right[0])
    if isinstance(left, tuple):
        base = left[0]
        log_base = _float_log(base)

        def power_constant_base(x, y):
            b, bx, by = right(x, y)
            v = base ** b
            slope = v * log_base
            if base == 0.0:  # autograd: d(0**b)/db = 0 where b >= 0
                slope = torch.where(b >= 0, 0.0, slope)
            return v, _t_scale_keep_zero(bx, slope), _t_scale_keep_zero(by, slope)
        return power_constant_base

    def power(x, y):
        a, ax, ay = left(x, y)
        b, bx, by = right(x, y)
        v = a ** b
        slope_a = torch.where(b == 0, 0.0, b * a ** (b - 1.0))
        slope_b = torch.where((a == 0) & (b >= 0), 0.0, v * torch.log(a))
        return (v, _t_add(_t_scale_keep_zero(ax, slope_a), _t_scale_keep_zero(bx, slope_b)),
                _t_add(_t_scale_keep_zero(ay, slope_a), _t_scale_keep_zero(by, slope_b)))
    return power


def _dual_power_constant_exponent(left: Dual, exponent: float) -> Dual:
    if exponent == 0.0:  # u**0 = 1 everywhere, nan included; autograd's derivative is 0
        def power_zero(x, y):
            return left(x, y)[0] ** 0.0, None, None
        return power_zero
    if exponent == 2.0:
        def square(x, y):
            a, ax, ay = left(x, y)
            two_a = 2.0 * a
            return a * a, _t_scale(ax, two_a), _t_scale(ay, two_a)
        return square
    # At u = 0, u**c is finite with an infinite slope only for 0 < c < 1.
    pole = 0.0 < exponent < 1.0

    def power_const(x, y):
        a, ax, ay = left(x, y)
        slope = exponent * a ** (exponent - 1.0)
        scale = _t_scale_keep_zero if pole and _has_zero(a) else _t_scale
        return a ** exponent, scale(ax, slope), scale(ay, slope)
    return power_const


def _dual_call(node: ast.Call) -> Dual:
    name = node.func.id
    args = [_compile_dual(arg) for arg in node.args]
    if name in _UNARY_FUNCTIONS:
        (inner,) = args
        apply = _UNARY_FUNCTIONS[name][0]
        pole = name == "sqrt"  # an infinite slope at 0

        def unary(x, y):
            a, ax, ay = inner(x, y)
            v = apply(a)
            slope = _dual_unary(name, v, a)
            scale = _t_scale_keep_zero if pole and _has_zero(a) else _t_scale
            return v, scale(ax, slope), scale(ay, slope)
        return unary
    first, second = args
    if isinstance(second, tuple) or isinstance(first, tuple):
        # Against a constant the tensor closures clamp; so does this, bound inclusive (autograd's).
        tensor_side, const = (second, first[0]) if isinstance(first, tuple) else (first, second[0])
        keyword = "max" if name == "min" else "min"
        inside_bound = torch.le if name == "min" else torch.ge

        def clamp(x, y):
            a, ax, ay = tensor_side(x, y)
            v = torch.clamp(a, **{keyword: const})
            inside = inside_bound(a, const).to(a.dtype)
            return v, _t_scale(ax, inside), _t_scale(ay, inside)
        return clamp
    torch_function = _BINARY_FUNCTIONS[name][0]
    picks_first = torch.lt if name == "min" else torch.gt

    def minmax(x, y):
        a, ax, ay = first(x, y)
        b, bx, by = second(x, y)
        v = torch_function(a, b)
        tie, pick = a == b, picks_first(a, b)
        return v, _t_pick(tie, pick, ax, bx, v), _t_pick(tie, pick, ay, by, v)
    return minmax


class _PatchSwitch:
    """Whether tensor value_and_grad hands non-finite forward-mode rows to autograd (on, except
    while fastgrad traces a surface: the data-dependent branch cannot be traced, so its program
    runs the same check itself after each evaluation, ``patch_non_finite``)."""

    on = True


PATCH = _PatchSwitch()


def patch_non_finite(evaluate: Evaluator, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor,
                     gx: torch.Tensor, gy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The check value_and_grad makes after forward mode: new (gx, gy) where it patched rows,
    None where nothing needed it."""
    if math.isfinite(torch.dot(gx.reshape(-1), gy.reshape(-1)).item()):
        return None
    return _autograd_where_non_finite(evaluate, x, y, v, gx, gy)


def _value_and_grad_fn(tree: ast.expr, evaluate: Evaluator) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    dual = _compile_dual(tree)

    def value_and_grad(x: torch.Tensor, y: torch.Tensor):
        if isinstance(dual, tuple):
            v, gx, gy = dual
        else:
            v, gx, gy = dual(x, y)
        shape = x.shape if x.shape == y.shape else torch.broadcast_shapes(x.shape, y.shape)
        varying = isinstance(gx, torch.Tensor) or isinstance(gy, torch.Tensor)

        def full(t):
            if t is None:
                return torch.zeros(shape, dtype=x.dtype)
            if isinstance(t, float):
                return torch.full(shape, t, dtype=x.dtype)
            return t if t.shape == shape else t.expand(shape)
        v, gx, gy = full(v), full(gx), full(gy)
        # One reduction per call finds the rare points where the chain rule met 0 * inf or
        # overflowed; there the gradient is autograd's (a finite product overflowing in this
        # check only costs the look).
        if varying and PATCH.on and not math.isfinite(
                torch.dot(*((gx, gy) if gx.dim() == 1 else (gx.reshape(-1), gy.reshape(-1)))).item()):
            gx, gy = _autograd_where_non_finite(evaluate, x, y, v, gx, gy)
        return v, gx, gy
    return value_and_grad


def _autograd_where_non_finite(evaluate: Evaluator, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor,
                               gx: torch.Tensor, gy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """gx, gy with autograd's gradient where the value is finite but the forward-mode gradient
    is not: forward mode multiplies a mask's zero by an infinite derivative above it (nan) where
    reverse mode never forms that product (``tanh(log(relu(x)))`` at x < 0), and products of
    huge factors may overflow in one order and not the other."""
    bad = (torch.isfinite(v) & ~(torch.isfinite(gx) & torch.isfinite(gy))).reshape(-1)
    rows = bad.nonzero().squeeze(1)
    if not len(rows):
        return gx, gy
    shape = v.shape
    xs = x.detach().expand(shape).reshape(-1)[rows].clone().requires_grad_(True)
    ys = y.detach().expand(shape).reshape(-1)[rows].clone().requires_grad_(True)
    with torch.enable_grad():
        ax, ay = torch.autograd.grad(evaluate(xs, ys).sum(), [xs, ys])
    gx, gy = gx.reshape(-1).clone(), gy.reshape(-1).clone()
    gx[rows], gy[rows] = ax, ay
    return gx.reshape(shape), gy.reshape(shape)


# --- scalar fast path -----------------------------------------------------------------------
# A lane usually steps a single trajectory. For one point, Python's float arithmetic is ~10x
# cheaper than launching tiny tensor ops, so the checked tree is also compiled into closures over
# floats returning (f, df/dx, df/dy), by the same rules as the forward mode above. The common
# case runs plain float arithmetic; where that raises (overflow, log(0), 1/0, ...) the closure
# computes what torch would instead, so this path never raises either.

ScalarDual = Callable[[float, float], tuple[float, float, float]]


def _scalar_value_and_grad_fn(tree: ast.expr, value_and_grad) -> ScalarDual:
    scalar = _compile_scalar(tree)

    def scalar_value_and_grad(x: float, y: float) -> tuple[float, float, float]:
        v, gx, gy = scalar(x, y)
        # u - u is 0.0 for every finite u, nan for inf and nan: no function call on the fast path.
        if (gx - gx != 0.0 or gy - gy != 0.0) and v - v == 0.0:
            # Where the chain rule meets 0 * inf, take the tensor path's (that is, autograd's) gradient.
            _, tx, ty = value_and_grad(torch.tensor([x], dtype=torch.float64), torch.tensor([y], dtype=torch.float64))
            return v, float(tx[0]), float(ty[0])
        return v, gx, gy
    return scalar_value_and_grad


def _keep_zero(slope: float, tangent: float) -> float:
    # A zero tangent stays zero through an inf or nan slope (see _t_scale_keep_zero).
    return 0.0 if tangent == 0.0 else slope * tangent


def _compile_scalar(node: ast.expr) -> ScalarDual:
    if isinstance(node, ast.Constant):
        c = node.value
        return lambda x, y: (c, 0.0, 0.0)
    if isinstance(node, ast.Name):
        if node.id == "x":
            return lambda x, y: (x, 1.0, 0.0)
        return lambda x, y: (y, 0.0, 1.0)
    if isinstance(node, ast.UnaryOp):
        inner = _compile_scalar(node.operand)

        def neg(x, y):
            v, a, b = inner(x, y)
            return -v, -a, -b
        return neg
    if isinstance(node, ast.BinOp):
        return _scalar_binary(node)
    return _scalar_call(node)


def _scalar_binary(node: ast.BinOp) -> ScalarDual:
    lf, rf = _compile_scalar(node.left), _compile_scalar(node.right)
    op = type(node.op)
    if op is ast.Add:
        def add(x, y):
            a, ax, ay = lf(x, y)
            b, bx, by = rf(x, y)
            return a + b, ax + bx, ay + by
        return add
    if op is ast.Sub:
        def sub(x, y):
            a, ax, ay = lf(x, y)
            b, bx, by = rf(x, y)
            return a - b, ax - bx, ay - by
        return sub
    if op is ast.Mult:
        def mul(x, y):
            a, ax, ay = lf(x, y)
            b, bx, by = rf(x, y)
            return a * b, ax * b + bx * a, ay * b + by * a
        return mul
    if op is ast.Div:
        if isinstance(node.left, ast.Constant):
            # torch computes number / tensor as number * reciprocal(tensor): 0 / 1e-309 is nan there
            numerator = float(node.left.value)

            def constant_over(x, y):
                b, bx, by = rf(x, y)
                v = numerator * _float_div(1.0, b)
                return v, _float_div(-v * bx, b), _float_div(-v * by, b)
            return constant_over

        def div(x, y):
            a, ax, ay = lf(x, y)
            b, bx, by = rf(x, y)
            try:
                v = a / b
                return v, (ax - v * bx) / b, (ay - v * by) / b
            except ZeroDivisionError:
                v = _float_div(a, b)
                return v, _float_div(ax - v * bx, b), _float_div(ay - v * by, b)
        return div
    if isinstance(node.right, ast.Constant):
        return _scalar_power_constant_exponent(lf, node.right.value)

    def power(x, y):
        a, ax, ay = lf(x, y)
        b, bx, by = rf(x, y)
        v = _float_pow(a, b)
        gx = gy = 0.0
        if (ax or ay) and b != 0.0:  # autograd: d(a**0)/da = 0
            slope = b * _float_pow(a, b - 1.0)
            gx, gy = _keep_zero(slope, ax), _keep_zero(slope, ay)
        if (bx or by) and not (a == 0.0 and b >= 0.0):  # autograd: d(0**b)/db = 0 for b >= 0
            slope = v * _float_log(a)
            gx, gy = gx + _keep_zero(slope, bx), gy + _keep_zero(slope, by)
        return v, gx, gy
    return power


def _scalar_power_constant_exponent(inner: ScalarDual, exponent: float) -> ScalarDual:
    if exponent == 0.0:
        return lambda x, y: (_float_pow_const(inner(x, y)[0], 0.0), 0.0, 0.0)
    if exponent == 2.0:
        def square(x, y):
            a, ax, ay = inner(x, y)
            slope = 2.0 * a
            try:
                v = a ** 2.0
            except OverflowError:
                v = math.inf
            return v, slope * ax, slope * ay
        return square
    minus_one = exponent - 1.0
    scale = _keep_zero if 0.0 < exponent < 1.0 else operator.mul

    def power_const(x, y):
        a, ax, ay = inner(x, y)
        v = _float_pow_const(a, exponent)
        slope = exponent * _float_pow_const(a, minus_one)
        return v, scale(slope, ax), scale(slope, ay)
    return power_const


def _scalar_call(node: ast.Call) -> ScalarDual:
    name = node.func.id
    if name in _FLOAT_UNARY:
        fn, slope_of = _FLOAT_UNARY[name]
        inner = _compile_scalar(node.args[0])

        def unary(x, y):
            a, ax, ay = inner(x, y)
            try:
                v = fn(a)
                slope = slope_of(v, a)
            except _FLOAT_ERRORS:
                v, slope = _float_unary_edge(name, a)
                return v, _keep_zero(slope, ax), _keep_zero(slope, ay)
            return v, slope * ax, slope * ay
        return unary
    constants = [arg for arg in node.args if isinstance(arg, ast.Constant)]
    if constants:
        # Against a constant the tensor closures clamp: nan propagates (the bound's too), the
        # bound is inclusive, and the result is the argument itself at a tie.
        (variable,) = [arg for arg in node.args if not isinstance(arg, ast.Constant)]
        inner, bound = _compile_scalar(variable), constants[0].value
        nan_result = (math.nan, 0.0, 0.0)
        if name == "min":
            def clamp_max(x, y):
                a = inner(x, y)
                if a[0] <= bound:
                    return a
                return (bound, 0.0, 0.0) if a[0] > bound else nan_result
            return clamp_max

        def clamp_min(x, y):
            a = inner(x, y)
            if a[0] >= bound:
                return a
            return (bound, 0.0, 0.0) if a[0] < bound else nan_result
        return clamp_min
    first, second = (_compile_scalar(arg) for arg in node.args)
    sign = 1.0 if name == "min" else -1.0  # max(a, b) picks a where -a < -b

    def minmax(x, y):
        left = first(x, y)
        right = second(x, y)
        a, b = sign * left[0], sign * right[0]
        if a < b:
            return left
        if a > b:
            return right
        if a == b:  # torch.minimum keeps the first at a tie; autograd splits the derivative
            return left[0], 0.5 * (left[1] + right[1]), 0.5 * (left[2] + right[2])
        return math.nan, math.nan, math.nan
    return minmax
