"""Safe expression compiler: a small formula language for 2D loss surfaces.

A user types ``(1 - x)**2 + 100*(y - x**2)**2`` and gets back a function of two torch
tensors. The text is never handed to ``eval``/``exec``/``compile``: it is tokenized and
parsed with :mod:`ast` (``mode="eval"``), every token and node is checked against a
whitelist, constant sub-expressions are folded in float arithmetic, and the tree is turned
once into a tree of closures, so calling the result costs only the torch operations.

The language:

* numbers: int and float literals (magnitude at most 1e12);
* names: ``x``, ``y`` (the variables), ``pi``, ``e``;
* binary ``+ - * / **``, unary ``-`` and ``+``, parentheses;
* one-argument functions ``sin cos tan exp log sqrt abs tanh sigmoid softplus relu`` and the
  two-argument elementwise ``min max``.

Everything else is refused with :class:`ExprError`, a one-line message naming the offending
token and, where it has one, its 1-based column.
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
MAX_FOLDED = 1e300

ALLOWED_VARIABLES: tuple[str, ...] = ("x", "y")
_NAMED_CONSTANTS: Mapping[str, float] = {"pi": math.pi, "e": math.e}
ALLOWED_NAMES: tuple[str, ...] = ALLOWED_VARIABLES + tuple(_NAMED_CONSTANTS)


def _fold_sigmoid(value: float) -> float:
    # Split by sign so exp never overflows.
    if value >= 0.0:
        return 1.0 / (1.0 + math.exp(-value))
    exp_value = math.exp(value)
    return exp_value / (1.0 + exp_value)


def _fold_softplus(value: float) -> float:
    # Same threshold as torch.nn.functional.softplus (beta=1, threshold=20).
    return value if value > 20.0 else math.log1p(math.exp(value))


# name -> (torch implementation, float implementation used for constant folding)
_UNARY_FUNCTIONS: Mapping[str, tuple[Callable, Callable[[float], float]]] = {
    "sin": (torch.sin, math.sin),
    "cos": (torch.cos, math.cos),
    "tan": (torch.tan, math.tan),
    "exp": (torch.exp, math.exp),
    "log": (torch.log, math.log),
    "sqrt": (torch.sqrt, math.sqrt),
    "abs": (torch.abs, abs),
    "tanh": (torch.tanh, math.tanh),
    "sigmoid": (torch.sigmoid, _fold_sigmoid),
    "softplus": (torch_functional.softplus, _fold_softplus),
    "relu": (torch.relu, lambda value: max(value, 0.0)),
}
_BINARY_FUNCTIONS: Mapping[str, tuple[Callable, Callable[[float, float], float]]] = {
    "min": (torch.minimum, min),
    "max": (torch.maximum, max),
}
ALLOWED_FUNCTIONS: tuple[str, ...] = tuple(_UNARY_FUNCTIONS) + tuple(_BINARY_FUNCTIONS)

_BINARY_OPERATORS: Mapping[type, tuple[str, Callable]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.Pow: ("**", operator.pow),
}
_UNARY_OPERATORS: Mapping[type, tuple[str, Callable]] = {
    ast.USub: ("-", operator.neg),
    ast.UAdd: ("+", operator.pos),
}
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


class _Compiler:
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

    def fold(self, node: ast.AST, compute: Callable[[], float]) -> float:
        """Evaluate a constant sub-expression in float arithmetic, refusing non-finite or huge results."""
        where = f"constant {self.segment(node)!r}{_at(self.column(node))}"
        try:
            value = compute()
        except OverflowError:
            raise ExprError(f"{where} overflows") from None
        except ZeroDivisionError:
            raise ExprError(f"{where} divides by zero") from None
        except ValueError:
            raise ExprError(f"{where} is undefined (math domain error)") from None
        if isinstance(value, complex):
            raise ExprError(f"{where} is complex") from None
        value = float(value)
        if not math.isfinite(value) or abs(value) > MAX_FOLDED:
            raise ExprError(f"{where} is not finite or exceeds {MAX_FOLDED:g}")
        return value

    def compile(self, node: ast.AST) -> Compiled:
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

    def constant(self, node: ast.Constant) -> float:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.refuse(f"literal {self.segment(node)!r}", node)
        # Compare before float(): a huge int would overflow the conversion.
        if not (abs(value) <= MAX_LITERAL):
            raise ExprError(f"number {self.segment(node)!r}{_at(self.column(node))} exceeds {MAX_LITERAL:g}")
        return float(value)

    def name(self, node: ast.Name) -> Compiled:
        if node.id in _NAMED_CONSTANTS:
            return _NAMED_CONSTANTS[node.id]
        if node.id == "x":
            self.uses.add("x")
            return lambda x, y: x
        if node.id == "y":
            self.uses.add("y")
            return lambda x, y: y
        raise ExprError(f"unknown name {node.id!r}{_at(self.column(node))} (allowed: {_ALLOWED_NAMES_TEXT})")

    def binary(self, node: ast.BinOp) -> Compiled:
        entry = _BINARY_OPERATORS.get(type(node.op))
        if entry is None:
            symbol = _OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)
            hint = " (use ** for powers)" if symbol == "^" else ""
            raise ExprError(f"operator {symbol!r}{_at(self.operator_column(node, symbol))} is not allowed{hint}")
        _, apply = entry
        left = self.compile(node.left)
        right = self.compile(node.right)
        if isinstance(left, float) and isinstance(right, float):
            return self.fold(node, lambda: apply(left, right))
        if isinstance(left, float):
            return lambda x, y: apply(left, right(x, y))
        if isinstance(right, float):
            return lambda x, y: apply(left(x, y), right)
        return lambda x, y: apply(left(x, y), right(x, y))

    def operator_column(self, node: ast.BinOp, symbol: str) -> int | None:
        start = getattr(node.left, "end_col_offset", None)
        stop = getattr(node.right, "col_offset", None)
        if start is None or stop is None:
            return self.column(node)
        found = self.text.find(symbol, start, stop)
        return found + 1 + self.shift if found >= 0 else self.column(node)

    def unary(self, node: ast.UnaryOp) -> Compiled:
        entry = _UNARY_OPERATORS.get(type(node.op))
        if entry is None:
            symbol = _OPERATOR_SYMBOLS.get(type(node.op), type(node.op).__name__)
            raise self.refuse(f"operator {symbol!r}", node)
        _, apply = entry
        operand = self.compile(node.operand)
        if isinstance(operand, float):
            return self.fold(node, lambda: apply(operand))
        if isinstance(node.op, ast.UAdd):
            return operand
        return lambda x, y: apply(operand(x, y))

    def call(self, node: ast.Call) -> Compiled:
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
        arguments = [self.compile(argument) for argument in node.args]
        if expected == 1:
            torch_function, float_function = _UNARY_FUNCTIONS[name]
            (operand,) = arguments
            if isinstance(operand, float):
                return self.fold(node, lambda: float_function(operand))
            return lambda x, y: torch_function(operand(x, y))
        torch_function, float_function = _BINARY_FUNCTIONS[name]
        first, second = arguments
        if isinstance(first, float) and isinstance(second, float):
            return self.fold(node, lambda: float_function(first, second))
        # torch.minimum/maximum need two tensors; a constant side becomes a clamp bound.
        bound_keyword = "max" if name == "min" else "min"
        if isinstance(first, float):
            first, second = second, first
        if isinstance(second, float):
            bound = second
            return lambda x, y: torch.clamp(first(x, y), **{bound_keyword: bound})
        return lambda x, y: torch_function(first(x, y), second(x, y))


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
    """

    __slots__ = ("source", "uses", "_evaluate", "value_and_grad", "scalar_value_and_grad")

    def __init__(self, source: str, uses: frozenset[str], evaluate: Evaluator, value_and_grad=None,
                 scalar_value_and_grad=None) -> None:
        self.source = source
        self.uses = uses
        self._evaluate = evaluate
        # value_and_grad(x, y) -> (f, df/dx, df/dy) tensors, by forward-mode differentiation
        # (no autograd graph); scalar_value_and_grad does the same on Python floats and may raise
        # ArithmeticError/ValueError where torch would return inf or nan.
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
    compiler = _Compiler(text, shift)
    compiled = compiler.compile(tree.body)
    uses = frozenset(compiler.uses)
    return CompiledExpr(ast.unparse(tree), uses, _complete(compiled, uses), _value_and_grad_fn(tree),
                        _compile_scalar(tree.body))


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


# --- forward-mode gradient ----------------------------------------------------------------
# A step on a 2-D surface needs the loss and its gradient at a handful of points. Building an
# autograd graph for that costs ~3x the arithmetic itself, so the checked AST is compiled a second
# time into closures returning (value, d/dx, d/dy). A tangent is None (exactly zero), a float, or
# a tensor; zeros are never materialized, so a term that only depends on y costs nothing in x.

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


def _compile_dual(node: ast.AST) -> tuple[float, None, None] | Dual:
    """Compile an already-checked AST node; a constant sub-tree returns a (float, None, None) tuple."""
    if isinstance(node, ast.Constant):
        return (float(node.value), None, None)
    if isinstance(node, ast.Name):
        if node.id in _NAMED_CONSTANTS:
            return (_NAMED_CONSTANTS[node.id], None, None)
        if node.id == "x":
            return lambda x, y: (x, 1.0, None)
        return lambda x, y: (y, None, 1.0)
    if isinstance(node, ast.UnaryOp):
        inner = _compile_dual(node.operand)
        if isinstance(node.op, ast.UAdd):
            return inner
        if isinstance(inner, tuple):
            return (-inner[0], None, None)
        return lambda x, y: tuple(_t_neg(part) if i else -part for i, part in enumerate(inner(x, y)))
    if isinstance(node, ast.BinOp):
        left, right = _compile_dual(node.left), _compile_dual(node.right)
        op = type(node.op)
        if isinstance(left, tuple) and isinstance(right, tuple):
            return (_BINARY_OPERATORS[op][1](left[0], right[0]), None, None)
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
            def div(x, y):
                a, ax, ay = lf(x, y)
                b, bx, by = rf(x, y)
                v = a / b
                inv = 1.0 / b
                q = -v * inv if (bx is not None or by is not None) else None
                return v, _t_add(_t_scale(ax, inv), _t_scale(bx, q)), _t_add(_t_scale(ay, inv), _t_scale(by, q))
            return div
        # power
        if isinstance(right, tuple):
            exponent = right[0]
            if exponent == 2.0:
                def square(x, y):
                    a, ax, ay = lf(x, y)
                    two_a = 2.0 * a
                    return a * a, _t_scale(ax, two_a), _t_scale(ay, two_a)
                return square

            def power_const(x, y):
                a, ax, ay = lf(x, y)
                slope = exponent * a ** (exponent - 1.0)
                return a ** exponent, _t_scale(ax, slope), _t_scale(ay, slope)
            return power_const

        def power(x, y):
            a, ax, ay = lf(x, y)
            b, bx, by = rf(x, y)
            v = a ** b
            if ax is None and ay is None:  # constant base: d = v ln(a) db
                slope_b = v * math.log(a) if isinstance(a, float) else v * torch.log(a)
                return v, _t_scale(bx, slope_b), _t_scale(by, slope_b)
            slope_a = b * a ** (b - 1.0)
            slope_b = v * torch.log(a)
            return v, _t_add(_t_scale(ax, slope_a), _t_scale(bx, slope_b)), _t_add(_t_scale(ay, slope_a), _t_scale(by, slope_b))
        return power
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    name = node.func.id
    args = [_compile_dual(arg) for arg in node.args]
    if all(isinstance(arg, tuple) for arg in args):
        if name in _UNARY_FUNCTIONS:
            return (_UNARY_FUNCTIONS[name][1](args[0][0]), None, None)
        return (_BINARY_FUNCTIONS[name][1](args[0][0], args[1][0]), None, None)
    if name in _UNARY_FUNCTIONS:
        inner = args[0]
        apply = _UNARY_FUNCTIONS[name][0]

        def unary(x, y):
            a, ax, ay = inner(x, y)
            v = apply(a)
            slope = _dual_unary(name, v, a)
            return v, _t_scale(ax, slope), _t_scale(ay, slope)
        return unary
    first, second = args
    pick_first = torch.le if name == "min" else torch.ge
    if isinstance(second, tuple) or isinstance(first, tuple):
        tensor_side, const = (second, first[0]) if isinstance(first, tuple) else (first, second[0])
        keyword = "max" if name == "min" else "min"

        def clamp(x, y):
            a, ax, ay = tensor_side(x, y)
            v = torch.clamp(a, **{keyword: const})
            inside = pick_first(a, const).to(a.dtype)
            return v, _t_scale(ax, inside), _t_scale(ay, inside)
        return clamp

    def minmax(x, y):
        a, ax, ay = first(x, y)
        b, bx, by = second(x, y)
        mask = pick_first(a, b)
        v = torch.where(mask, a, b)
        ax_, bx_ = (0.0 if ax is None else ax), (0.0 if bx is None else bx)
        ay_, by_ = (0.0 if ay is None else ay), (0.0 if by is None else by)
        gx = None if ax is None and bx is None else torch.where(mask, ax_ * torch.ones_like(a), bx_ * torch.ones_like(b))
        gy = None if ay is None and by is None else torch.where(mask, ay_ * torch.ones_like(a), by_ * torch.ones_like(b))
        return v, gx, gy
    return minmax


def _value_and_grad_fn(tree: ast.Expression) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    dual = _compile_dual(tree.body)

    def value_and_grad(x: torch.Tensor, y: torch.Tensor):
        if isinstance(dual, tuple):
            v, gx, gy = dual
        else:
            v, gx, gy = dual(x, y)
        shape = x.shape if x.shape == y.shape else torch.broadcast_shapes(x.shape, y.shape)

        def full(t):
            if t is None:
                return torch.zeros(shape, dtype=x.dtype)
            if isinstance(t, float):
                return torch.full(shape, t, dtype=x.dtype)
            return t if t.shape == shape else t.expand(shape)
        return full(v), full(gx), full(gy)
    return value_and_grad


# --- scalar fast path -----------------------------------------------------------------------
# A lane usually steps a single trajectory. For one point, Python's float arithmetic is ~10x
# cheaper than launching tiny tensor ops, so the checked AST is also compiled into closures over
# floats returning (f, df/dx, df/dy). Where float arithmetic would raise (overflow, log of a
# negative, division by zero, a complex power) the caller falls back to the tensor path, which
# gives torch's inf/nan semantics.

ScalarDual = Callable[[float, float], tuple[float, float, float]]


_SCALAR_UNARY: Mapping[str, tuple[Callable[[float], float], Callable[[float, float], float]]] = {
    # name: (f(a), f'(a) given (v, a))
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
    "relu": (lambda a: a if a > 0 else 0.0, lambda v, a: 1.0 if a > 0 else 0.0),
}


def _compile_scalar(node: ast.AST) -> ScalarDual:
    if isinstance(node, ast.Constant):
        c = float(node.value)
        return lambda x, y: (c, 0.0, 0.0)
    if isinstance(node, ast.Name):
        if node.id in _NAMED_CONSTANTS:
            c = _NAMED_CONSTANTS[node.id]
            return lambda x, y: (c, 0.0, 0.0)
        if node.id == "x":
            return lambda x, y: (x, 1.0, 0.0)
        return lambda x, y: (y, 0.0, 1.0)
    if isinstance(node, ast.UnaryOp):
        inner = _compile_scalar(node.operand)
        if isinstance(node.op, ast.UAdd):
            return inner

        def neg(x, y):
            v, a, b = inner(x, y)
            return -v, -a, -b
        return neg
    if isinstance(node, ast.BinOp):
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
            def div(x, y):
                a, ax, ay = lf(x, y)
                b, bx, by = rf(x, y)
                v = a / b
                return v, (ax - v * bx) / b, (ay - v * by) / b
            return div

        def power(x, y):
            a, ax, ay = lf(x, y)
            b, bx, by = rf(x, y)
            v = a ** b
            if isinstance(v, complex):
                raise ValueError("complex power")
            gx = gy = 0.0
            if ax or ay:
                slope = b * a ** (b - 1.0) if b != 2.0 else 2.0 * a
                gx, gy = slope * ax, slope * ay
            if bx or by:
                slope = v * math.log(a)
                gx, gy = gx + slope * bx, gy + slope * by
            return v, gx, gy
        return power
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    name = node.func.id
    args = [_compile_scalar(arg) for arg in node.args]
    if name in _SCALAR_UNARY:
        fn, slope_of = _SCALAR_UNARY[name]
        (inner,) = args

        def unary(x, y):
            a, ax, ay = inner(x, y)
            v = fn(a)
            slope = slope_of(v, a)
            return v, slope * ax, slope * ay
        return unary
    first, second = args
    take_first = (lambda a, b: a <= b) if name == "min" else (lambda a, b: a >= b)

    def minmax(x, y):
        left = first(x, y)
        right = second(x, y)
        return left if take_first(left[0], right[0]) else right
    return minmax
