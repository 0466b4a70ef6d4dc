"""Why the engine runs eager kernels: torch.compile's numbers next to eager torch's, and its speed.

    python benchmarks/compile_rounding.py [--chunk]

1. Single ops on 65,539 random float64 values: how many elements a compiled op (inductor, its
   default fp-contract off) gives with other bits than the eager op. Eager torch fuses
   ``add(alpha=)`` and ``addcmul`` into multiply-adds and has its own (Sleef) transcendental
   functions; inductor does neither the same way.
2. Each built-in surface's traced value-and-gradient graph (what engine/fastgrad.py replays), compiled:
   does it give eager's bits on random points, and how long does a call take at N = 16,384?
3. With --chunk: 16 race steps per compiled call (gradient, heavy-ball update, divergence masks, loss
   staging) at N = 16,384 and 262,144, in M trajectory-steps/s, and the compile time.

A compiled path would make a swept cell differ from its single-lane replay, and a trajectory's
numbers depend on how many others step with it; the engine promises neither happens.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sgdtui.engine import expr  # noqa: E402
from sgdtui.engine.fastgrad import _trace  # noqa: E402
from sgdtui.engine.surfaces import SurfaceRegistry  # noqa: E402
from sgdtui.engine.vectorized import make_vector_optimizer  # noqa: E402

OPS = {
    "add(alpha=)": lambda v: torch.add(v, v * v, alpha=-0.7),
    "addcmul": lambda v: torch.addcmul(v, v, v + 1, value=0.3),
    "mul, div, pow 3": lambda v: v * v / (v * v + 1) + v ** 3,
    "sigmoid": torch.sigmoid,
    "exp": torch.exp,
    "tanh": torch.tanh,
    "log": lambda v: torch.log(v.abs() + 0.1),
    "sqrt": lambda v: torch.sqrt(v.abs()),
    "sin": torch.sin,
    "atan": torch.atan,
}


def same(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a == b) | (a.isnan() & b.isnan())


def single_ops() -> None:
    x = torch.randn(65_539, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 3
    print(f"1. single ops, {x.numel():,} random float64 values: elements whose compiled bits differ from eager")
    for name, fn in OPS.items():
        compiled = torch.compile(fn, dynamic=False)
        print(f"  {name:<18} {int((~same(fn(x), compiled(x))).sum()):>7,}")


def surfaces() -> None:
    registry = SurfaceRegistry(include_user_dir=False)
    n = 16_384
    print(f"\n2. each built-in's value-and-gradient graph compiled, N = {n:,}")
    print(f"  {'surface':<20} {'eager bits':>10} {'compiled us':>12} {'eager us':>9}")
    generator = torch.Generator().manual_seed(1)
    for name in registry.names():
        surface = registry.get(name)
        points = torch.randn(2, n, dtype=torch.float64, generator=generator) * 3
        expr.PATCH.on = False
        try:
            graph = _trace(surface.value_and_grad, points.T)
        except Exception:  # noqa: BLE001 - data surfaces do not trace: nothing to compare
            continue
        finally:
            expr.PATCH.on = True
        compiled = torch.compile(graph, dynamic=False)
        equal = True
        for scale in (0.5, 3.0, 10.0):
            probe = torch.randn(2, n, dtype=torch.float64, generator=generator) * scale
            expr.PATCH.on = False
            try:
                want = surface.value_and_grad(probe.T)
            finally:
                expr.PATCH.on = True
            got = compiled(probe.T)
            equal &= all(bool(same(w, g).all()) for w, g in zip(want, got))
        t_compiled = timeit.timeit(lambda: compiled(points.T), number=100) / 100
        t_eager = timeit.timeit(lambda: surface.value_and_grad(points.T), number=100) / 100
        print(f"  {name:<20} {'same' if equal else 'differ':>10} {t_compiled * 1e6:>12.0f} {t_eager * 1e6:>9.0f}")


def chunks() -> None:
    registry = SurfaceRegistry(include_user_dir=False)
    steps_per_call = 16
    print(f"\n3. {steps_per_call} race steps per compiled call (M trajectory-steps/s)")
    for name, start in (("rosenbrock", (-1.5, 2.5)), ("pathological", (-4.0, 5.0))):
        surface = registry.get(name)
        for n in (16_384, 262_144):
            params = torch.empty(2, n, dtype=torch.float64)
            params[0], params[1] = start
            optimizer = make_vector_optimizer("momentum", {"lr": 1e-4, "momentum": 0.9, "dampening": 0.0,
                                                           "weight_decay": 0.0, "nesterov": False})
            _, grad = surface.value_and_grad(params.T)
            optimizer.step(params, grad.T.contiguous(), 1e-4)  # the momentum buffer exists before tracing
            alive = torch.ones(n, dtype=torch.bool)
            staged = torch.empty(steps_per_call, n, dtype=torch.float64)

            def chunk(params, alive, staged):
                for k in range(steps_per_call):
                    loss, grad = surface.value_and_grad(params.T)
                    before = params.clone()
                    optimizer.step(params, grad.T, 1e-4)
                    alive &= torch.isfinite(loss) & (params.abs().amax(0) < surface.bound)
                    params.copy_(torch.where(alive, params, before))
                    staged[k].copy_(loss)

            expr.PATCH.on = False
            try:
                started = time.perf_counter()
                compiled = torch.compile(chunk, dynamic=False, fullgraph=True)
                compiled(params, alive, staged)
                compile_s = time.perf_counter() - started
                calls = 20
                started = time.perf_counter()
                for _ in range(calls):
                    compiled(params, alive, staged)
                rate = n * steps_per_call * calls / (time.perf_counter() - started) / 1e6
            finally:
                expr.PATCH.on = True
            print(f"  {name:<13} N = {n:>7,}: {rate:6.1f}   (compiled in {compile_s:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk", action="store_true", help="also time compiled 16-step race chunks (minutes)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, one thread, float64")
    single_ops()
    surfaces()
    if args.chunk:
        chunks()


if __name__ == "__main__":
    main()
