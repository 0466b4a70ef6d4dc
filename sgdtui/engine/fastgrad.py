"""Fast loss-and-gradient programs for expression surfaces at large N, in place.

The expression compiler (``engine/expr.py``) turns the checked AST into forward-mode closures
that give the loss and both partial derivatives; called on N points they allocate a fresh
tensor per op, which at N = 16,384 costs about as much as the arithmetic. Here a surface's
``value_and_grad`` is traced once per lane size with ``make_fx`` on fake tensors (a branch on
the data would refuse to trace rather than be baked in) into a straight-line program of aten
ops, which is then replayed with ``out=`` buffers allocated once and reused by liveness, the
loss written straight into the lane's loss row and the two partials into its gradient rows.
The program runs the same kernels in the same order as the surface itself, so its numbers are
the surface's bit for bit (``tests/test_fastgrad.py`` checks every built-in); whatever the
compiler's derivative rules become, the program follows them.

Any step that cannot be replayed in place (an op without an ``out=`` form) runs as it is and
its result is kept; a surface that cannot be traced at all falls back to calling it.

torch.compile is not used here: its fused kernels round differently from eager torch (fused
multiply-adds, its own transcendental code), which would make a lane's numbers depend on N.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

_VIEW_OPS = {"select", "slice", "t", "transpose", "expand", "view", "unsqueeze", "squeeze", "permute",
             "alias", "detach", "_unsafe_view", "as_strided"}
_GRAPHS: dict[tuple, tuple[Any, Any]] = {}  # (surface id, shape) -> (surface, traced graph or None)
_CACHE_LIMIT = 64


class GradProgram:
    """``run()`` evaluates the loss into ``loss`` (n,) and the gradient into ``grad`` (2, n) for
    the points ``params`` (2, n) the program was built on."""

    def __init__(self, steps: list[Callable[[], Any]], description: str):
        self._steps = steps
        self.description = description
        self.after: Callable[[], None] | None = None  # the surface's own check after forward mode

    def run(self) -> None:
        for step in self._steps:
            step()
        if self.after is not None:
            self.after()

    def __len__(self) -> int:
        return len(self._steps)


def _trace(fn: Callable[[Tensor], tuple[Tensor, Tensor]], example: Tensor):
    from torch.fx.experimental.proxy_tensor import make_fx

    return make_fx(lambda w: fn(w), tracing_mode="fake")(example)


def _out_overload(target) -> Any | None:
    packet = target.overloadpacket
    name = target._overloadname
    for candidate in (f"{name}_out", "out"):
        overload = getattr(packet, candidate, None)
        if overload is not None:
            return overload
    return None


def build_program(surface, params: Tensor, loss: Tensor, grad: Tensor) -> GradProgram | None:
    """A program writing ``surface.value_and_grad(params.T)`` into ``loss`` and ``grad``, or None
    when the surface cannot be traced (the caller then calls the surface). The traced graph, or
    that there is none, is remembered per surface and size: a reset only re-binds buffers."""
    from sgdtui.engine import expr

    compiled = getattr(surface, "_fn", None)
    evaluate = getattr(compiled, "_evaluate", None)
    key = (id(surface), tuple(params.shape))
    cached = _GRAPHS.get(key)
    if cached is not None and cached[0] is surface:
        graph = cached[1]
    else:
        try:
            expr.PATCH.on = evaluate is None  # the data-dependent patch is replayed by ``after``
            graph = _trace(surface.value_and_grad, params.T).graph
        except Exception:  # noqa: BLE001 - any tracing failure means: call the surface instead
            graph = None
        finally:
            expr.PATCH.on = True
        if graph is not None:
            _eliminate_common_subexpressions(graph)
        _remember(key, surface, graph)
    if graph is None:
        return None
    program = _compile(graph, params, loss, grad)
    if program is None:
        _remember(key, surface, None)  # the same graph and shape never compile: do not try again
        return None
    if evaluate is not None:
        x, y, gx, gy = params[0], params[1], grad[0], grad[1]  # views made once, not every run

        def after() -> None:
            patched = expr.patch_non_finite(evaluate, x, y, loss, gx, gy)
            if patched is not None:
                grad[0].copy_(patched[0])
                grad[1].copy_(patched[1])
        program.after = after
    return program


def _remember(key: tuple, surface, graph) -> None:
    if len(_GRAPHS) > _CACHE_LIMIT:
        _GRAPHS.clear()
    _GRAPHS[key] = (surface, graph)  # the surface itself too: its id alone could be reused


def _eliminate_common_subexpressions(graph) -> None:
    """Run each distinct op on the same inputs once (forward mode often squares a value twice,
    once for the loss and once for its derivative). The ops are deterministic elementwise
    kernels, so reusing the first result changes no bit."""
    nodes = [n for n in graph.nodes if n.op == "call_function" and hasattr(n.target, "overloadpacket")]
    if any(n.target._schema.is_mutable or torch.Tag.nondeterministic_seeded in n.target.tags for n in nodes):
        return  # an in-place or random op: equal-looking nodes may not hold equal values
    outputs = set()  # the loss and the gradient rows stay distinct nodes (each has its own buffer)
    for node in graph.nodes:
        if node.op == "output":
            for result in node.args[0] if isinstance(node.args[0], (tuple, list)) else (node.args[0],):
                outputs.add(result)
                if getattr(result, "op", None) == "call_function" and result.args and isinstance(result.args[0], (list, tuple)):
                    outputs.update(result.args[0])
    seen: dict[tuple, Any] = {}
    for node in nodes:
        try:
            key = (node.target, _hashable(node.args), _hashable(tuple(sorted(node.kwargs.items()))))
            hash(key)
        except TypeError:
            continue
        first = seen.setdefault(key, node)
        if first is not node and not (first in outputs and node in outputs):
            node.replace_all_uses_with(first)
            graph.erase_node(node)


def _hashable(value: Any) -> Any:
    if isinstance(value, bool):  # True == 1 and hashes alike, but they type a result differently
        return ("bool", value)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_hashable(v) for v in value))
    if isinstance(value, float):
        return ("float", value, math.copysign(1.0, value))  # -0.0 and 0.0 are different constants
    return value


def _compile(graph, params: Tensor, loss: Tensor, grad: Tensor) -> GradProgram | None:
    nodes = list(graph.nodes)
    output = next(n for n in nodes if n.op == "output")
    results = output.args[0]
    if not (isinstance(results, (tuple, list)) and len(results) == 2):
        return None
    loss_node, grad_node = results
    # The usual shape: the gradient is torch.stack([gx, gy], 1); gx and gy go into the rows.
    targets: dict[Any, Tensor] = {}
    stacked = (hasattr(grad_node, "op") and grad_node.op == "call_function"
               and getattr(grad_node.target, "overloadpacket", None) is torch.ops.aten.stack
               and len(grad_node.args) >= 2 and grad_node.args[1] in (1, -1) and len(grad_node.args[0]) == 2
               and grad_node.args[0][0] is not grad_node.args[0][1])
    if stacked:
        targets[grad_node.args[0][0]] = grad[0]
        targets[grad_node.args[0][1]] = grad[1]
    if hasattr(loss_node, "op") and loss_node not in targets:
        targets[loss_node] = loss
    else:
        return None  # the loss is also a gradient row: unusual enough to leave to the surface

    last_use: dict[Any, int] = {}
    for i, node in enumerate(nodes):
        for arg in node.all_input_nodes:
            last_use[arg] = i
    env: dict[Any, Any] = {}
    kind: dict[Any, str] = {}  # "fixed": data never changes; "live": a tensor whose data each run rewrites
    late: set = set()  # nodes whose tensor is only known at run time (ops without an out= form)
    pinned: set = set()  # buffers that views point into: never reused
    free: dict[tuple, list[Tensor]] = {}
    owned: dict[Any, Tensor] = {}
    steps: list[Callable[[], Any]] = []

    def value(a):
        if hasattr(a, "op"):
            return env[a]
        if isinstance(a, (list, tuple)):
            return type(a)(value(x) for x in a)
        return a

    def release(i: int, node) -> None:
        for arg in node.all_input_nodes:
            if last_use.get(arg) == i and arg in owned and arg not in pinned:
                buf = owned.pop(arg)
                free.setdefault((tuple(buf.shape), buf.dtype, buf.stride()), []).append(buf)

    for i, node in enumerate(nodes):
        if node.op == "placeholder":
            env[node], kind[node] = params.T, "live"
            continue
        if node.op == "output":
            break
        if node.op != "call_function" or not hasattr(node.target, "overloadpacket"):
            return None
        op = node.target
        name = op.overloadpacket.__name__
        inputs = node.all_input_nodes
        if name in _VIEW_OPS and not any(a in late for a in inputs) and node not in targets:
            env[node] = op(*value(node.args), **value(node.kwargs))  # a view of a persistent tensor
            kind[node] = "live" if any(kind[a] == "live" for a in inputs) else "fixed"
            pinned.update(inputs)
            continue
        if all(kind[a] == "fixed" for a in inputs) and node not in targets:
            env[node], kind[node] = op(*value(node.args), **value(node.kwargs)), "fixed"  # fold once
            continue
        if node is grad_node and stacked:
            continue  # written row by row
        meta = node.meta.get("val")
        if not isinstance(meta, Tensor):
            return None
        kind[node] = "live"
        out_op = None if name in _VIEW_OPS else _out_overload(op)
        target = targets.get(node)
        if out_op is None:
            late.add(node)
            steps.append(_eager_step(node, op, env, value))
            if target is not None:
                steps.append(_copy_step(target, node, env))
            release(i, node)
            continue
        if target is not None and tuple(target.shape) == tuple(meta.shape) and target.dtype == meta.dtype:
            buf = target
        else:
            key = (tuple(meta.shape), meta.dtype, meta.stride())
            pool = free.get(key)
            buf = pool.pop() if pool else torch.empty_strided(tuple(meta.shape), meta.stride(), dtype=meta.dtype)
            owned[node] = buf
        env[node] = buf
        steps.append(_out_step(out_op, node, value, buf, resolved=not any(a in late for a in inputs)))
        if target is not None and buf is not target:
            steps.append(_copy_step(target, node, env))
        release(i, node)
    if not stacked:
        steps.append(lambda: grad.copy_(env[grad_node].T))
    return GradProgram(steps, f"{len(steps)} in-place steps")


def _fastest(out_op, name: str, args, kwargs, buf: Tensor):
    """torch's public function of the same name where it computes exactly the aten out= op on
    these arguments (it dispatches with less Python around it), else the out= op itself."""
    call = out_op._op
    public = getattr(torch, name, None)
    if name == "rsub" and len(args) >= 2 and not isinstance(args[1], Tensor):
        # s - a: aten's rsub is sub(s, a) with s as a scalar tensor; torch.sub says that directly
        # and dispatches in a third of the time (the equality check below still decides).
        other = torch.tensor(args[1], dtype=buf.dtype)
        alpha = args[2] if len(args) > 2 else kwargs.get("alpha", 1)

        def public(a, s, *rest, out, **ignored):
            return torch.sub(other, a, alpha=alpha, out=out)
    if public is None or not callable(public):
        return call
    try:
        want, got = torch.empty_like(buf), torch.empty_like(buf)
        call(*args, **kwargs, out=want)
        public(*args, **kwargs, out=got)
    except Exception:  # noqa: BLE001 - another signature: keep the aten op
        return call
    same = (want == got) | (want != want) & (got != got) if want.is_floating_point() else want == got
    return public if bool(same.all()) else call


def _out_step(out_op, node, value, buf, *, resolved: bool):
    # dtype, device and layout of a factory are the buffer's: the out= form takes none of them.
    accepted = {arg.name for arg in out_op._schema.arguments}
    kwargs = {k: v for k, v in node.kwargs.items() if k in accepted}
    if resolved:  # every argument is a tensor made at build time: bind them once
        args, kwargs = value(node.args), value(kwargs)
        call = _fastest(out_op, node.target.overloadpacket.__name__, args, kwargs, buf)

        def step():
            call(*args, **kwargs, out=buf)
        return step
    args = node.args

    def late_step():
        out_op(*value(args), **value(kwargs), out=buf)
    return late_step


def _eager_step(node, op, env, value):
    args, kwargs = node.args, node.kwargs

    def step():
        env[node] = op(*value(args), **value(kwargs))
    return step


def _copy_step(target: Tensor, node, env):
    def step():
        target.copy_(env[node])
    return step
