"""Expression fuzzing: how many random accepted expressions the engine cannot evaluate, and how
often its evaluation paths disagree with each other and with autograd.

    .venv/bin/python benchmarks/expr_fuzz.py [--n 12000] [--seed 0]

N random expressions come from a grammar of the language (numbers, x, y, pi, e, + - * / **,
unary minus, every function) with a few foreign tokens mixed in, so some are refused. Each
accepted one is evaluated at 64 points (a grid through 0, ±0.5, ±1, ±2 and 15 random points in
[-3, 3]²) along every path the engine has:

* ``tensor``: the compiled function on a batch of tensors (what autograd differentiates);
* ``dual``: ``value_and_grad`` on the batch (forward mode: multi-start lanes);
* ``float``: ``scalar_value_and_grad`` point by point (single-trajectory lanes);
* ``engine``: ``ExpressionSurface.value_and_grad`` at each point (N = 1) and on the batch.

For each path it prints: how many expressions raise anything but ExprError (a crash); the points
(and expressions) where the forward-mode gradient is non-finite though autograd's is finite;
finite gradients that differ from autograd by more than 1e-9 relative (to the largest of the
components, |f| and 1); and the expressions whose float value is finite where the tensor
evaluator gives NaN (NaN hidden, e.g. by min/max).
The figures are counts, not timings; the wall time is printed for reference.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections import Counter
from pathlib import Path

import torch

torch.set_num_threads(1)  # as sgdtui.cli.configure_threads does

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgdtui.engine.expr import ExprError, compile_expr  # noqa: E402
from sgdtui.engine.surfaces import ExpressionSurface  # noqa: E402

UNARY = ("sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sigmoid", "softplus", "relu")
BINARY = ("min", "max")
NUMBERS = ("0", "1", "2", "3", "10", "0.5", "2.5", "1e-3", "100", "1e3", "0.0")
FOREIGN = ("z", "x.real", "__import__('os')", "[x]", "x % 2", "x // y", "'s'", "lambda: 1", "x if y else 1",
           "x < y", "1j", "True", "open(x)", "sin(x, y)", "min(x)", "x ^ 2", "1e13", "x; y")
TOL = 1e-9


def random_expression(rng: random.Random, depth: int = 0) -> str:
    """One expression of the grammar; compound children are parenthesized."""
    if depth >= 5 or rng.random() < 0.25 + 0.1 * depth:
        roll = rng.random()
        if roll < 0.02:
            return rng.choice(FOREIGN)
        if roll < 0.55:
            return rng.choice(("x", "y"))
        if roll < 0.65:
            return rng.choice(("pi", "e"))
        return rng.choice(NUMBERS)
    roll = rng.random()
    if roll < 0.5:
        op = rng.choice(("+", "-", "*", "/", "**", "**"))
        return f"({random_expression(rng, depth + 1)}) {op} ({random_expression(rng, depth + 1)})"
    if roll < 0.6:
        return f"-({random_expression(rng, depth + 1)})"
    if roll < 0.9:
        return f"{rng.choice(UNARY)}({random_expression(rng, depth + 1)})"
    return f"{rng.choice(BINARY)}({random_expression(rng, depth + 1)}, {random_expression(rng, depth + 1)})"


def evaluation_points(rng: random.Random) -> list[tuple[float, float]]:
    grid = (-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)
    points = [(a, b) for a in grid for b in grid]
    points += [(rng.uniform(-3, 3), rng.uniform(-3, 3)) for _ in range(15)]
    return points


def differs(a: float, b: float, scale: float = 0.0) -> bool:
    """Beyond TOL relative to the larger of a, b and ``scale`` (for gradients: the point's largest
    component, |f| and 1, so a derivative that cancels to ~0, d(y/y)/dy, is not a disagreement)."""
    return abs(a - b) > TOL * max(abs(a), abs(b), scale) + 1e-300


def check(source: str, points, stats: Counter, examples: dict) -> None:
    def note(key: str, detail: str) -> None:
        stats[key] += 1
        examples.setdefault(key, f"{source}  {detail}")

    try:
        fn = compile_expr(source)
    except ExprError:
        stats["refused"] += 1
        return
    except Exception as exc:  # noqa: BLE001 - the figure counts exactly these
        note("crash compile", f"{type(exc).__name__}: {exc}")
        stats["crashed"] += 1
        return
    stats["accepted"] += 1
    x = torch.tensor([p[0] for p in points], dtype=torch.float64)
    y = torch.tensor([p[1] for p in points], dtype=torch.float64)
    crashed = set()
    results = {}

    def attempt(path: str, compute):
        try:
            return compute()
        except Exception as exc:  # noqa: BLE001
            crashed.add(path)
            examples.setdefault(f"crash {path}", f"{source}  {type(exc).__name__}: {exc}")
            return None

    def autograd():
        xr, yr = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
        out = fn(xr, yr)
        gx, gy = torch.autograd.grad(out.sum(), [xr, yr], allow_unused=True)
        zero = torch.zeros_like(x)
        return out.detach(), zero if gx is None else gx, zero if gy is None else gy

    results["tensor"] = attempt("tensor", lambda: fn(x, y))
    results["autograd"] = attempt("autograd", autograd)
    results["dual"] = attempt("dual", lambda: fn.value_and_grad(x, y))
    results["float"] = attempt("float", lambda: [fn.scalar_value_and_grad(px, py) for px, py in points])
    surface = ExpressionSurface(name="fuzz", description="", expr=source)
    w = torch.stack((x, y), dim=1)
    results["engine N=1"] = attempt("engine N=1", lambda: [
        (float(loss[0]), *grad[0].tolist()) for loss, grad in (surface.value_and_grad(w[i:i + 1])
                                                                 for i in range(len(points)))])
    results["engine N=64"] = attempt("engine N=64", lambda: surface.value_and_grad(w))
    for path in crashed:
        stats[f"crash {path}"] += 1
    if crashed & {"engine N=1", "engine N=64"}:
        stats["crashed (engine)"] += 1
    if crashed:
        stats["crashed"] += 1
    ref = results["autograd"]
    if ref is None:
        return
    _, ref_gx, ref_gy = (t.tolist() for t in ref)
    tensor_v = results["tensor"].tolist() if results["tensor"] is not None else None
    grads = {}
    if results["dual"] is not None:
        v, gx, gy = (t.tolist() for t in results["dual"])
        grads["dual"] = (v, gx, gy)
    if results["float"] is not None:
        grads["float"] = tuple(list(col) for col in zip(*results["float"]))
    if results["engine N=1"] is not None:
        grads["engine N=1"] = tuple(list(col) for col in zip(*results["engine N=1"]))
    if results["engine N=64"] is not None:
        loss, grad = results["engine N=64"]
        grads["engine N=64"] = (loss.tolist(), grad[:, 0].tolist(), grad[:, 1].tolist())
    for path, (v, gx, gy) in grads.items():
        nan_points = mismatches = 0
        for i in range(len(points)):
            # Gradients matter where the loss is finite (elsewhere the trajectory has diverged).
            ref_finite = (math.isfinite(ref_gx[i]) and math.isfinite(ref_gy[i])
                          and tensor_v is not None and math.isfinite(tensor_v[i]))
            ours_finite = math.isfinite(gx[i]) and math.isfinite(gy[i])
            if ref_finite and not ours_finite:
                nan_points += 1
                examples.setdefault(f"{path} grad non-finite, autograd finite",
                                    f"{source} at {points[i]}: {(gx[i], gy[i])} vs {(ref_gx[i], ref_gy[i])}")
            elif ref_finite and (differs(gx[i], ref_gx[i], scale := max(abs(ref_gx[i]), abs(ref_gy[i]),
                                                                        abs(tensor_v[i]), 1.0))
                                 or differs(gy[i], ref_gy[i], scale)):
                mismatches += 1
                examples.setdefault(f"{path} grad differs from autograd",
                                    f"{source} at {points[i]}: {(gx[i], gy[i])} vs {(ref_gx[i], ref_gy[i])}")
            if tensor_v is not None:
                if math.isnan(tensor_v[i]) and math.isfinite(v[i]):
                    stats[f"{path} value finite, tensor nan (points)"] += 1
                    if f"{path} hides" not in crashed:
                        crashed.add(f"{path} hides")
                        examples.setdefault(f"{path} value finite, tensor nan",
                                            f"{source} at {points[i]}: {v[i]} vs nan")
                elif math.isfinite(tensor_v[i]) != math.isfinite(v[i]) or (
                        math.isfinite(v[i]) and differs(v[i], tensor_v[i])):
                    stats[f"{path} value differs from tensor (points)"] += 1
                    examples.setdefault(f"{path} value differs from tensor",
                                        f"{source} at {points[i]}: {v[i]} vs {tensor_v[i]}")
        if nan_points:
            stats[f"{path} grad non-finite, autograd finite (points)"] += nan_points
            stats[f"{path} grad non-finite, autograd finite (expressions)"] += 1
        if mismatches:
            stats[f"{path} grad differs from autograd (points)"] += mismatches
            stats[f"{path} grad differs from autograd (expressions)"] += 1
        if f"{path} hides" in crashed:
            stats[f"{path} value finite, tensor nan (expressions)"] += 1
            if "min(" in source or "max(" in source:
                stats[f"{path} value finite, tensor nan, with min/max (expressions)"] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--examples", action="store_true", help="print one example of each finding")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    points = evaluation_points(rng)
    stats: Counter = Counter()
    examples: dict = {}
    started = time.perf_counter()
    for _ in range(args.n):
        check(random_expression(rng), points, stats, examples)
    elapsed = time.perf_counter() - started
    print(f"{args.n} random expressions (seed {args.seed}), {len(points)} points each, {elapsed:.1f} s")
    print(f"  accepted {stats['accepted']}, refused (ExprError) {stats['refused']}")
    for key in sorted(stats):
        if key not in ("accepted", "refused"):
            print(f"  {key}: {stats[key]}")
    if args.examples:
        for key in sorted(examples):
            print(f"  e.g. {key}: {examples[key]}")


if __name__ == "__main__":
    main()
