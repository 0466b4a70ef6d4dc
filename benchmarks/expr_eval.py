"""Expression surfaces' value-and-gradient cost on both engine paths, next to autograd.

    .venv/bin/python benchmarks/expr_eval.py [--points 1024] [--repeats 9]

For each built-in expression surface: microseconds per call of the float path
(``scalar_value_and_grad``, one point: single-trajectory lanes), of forward mode on tensors
(``value_and_grad`` on N points: multi-start lanes), and of the plain baseline a lane would
otherwise use, autograd of the same compiled function on the same N points. Process CPU time,
best of ``--repeats`` (the machine may be shared); one torch thread, as the CLI runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)  # as sgdtui.cli.configure_threads does

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgdtui.engine.surfaces import SurfaceRegistry  # noqa: E402


def best_microseconds(call, calls: int, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.process_time()
        for _ in range(calls):
            call()
        times.append((time.process_time() - started) / calls)
    return min(times) * 1e6


def autograd(fn, x, y):
    xr, yr = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
    out = fn(xr, yr)
    return out.detach(), *torch.autograd.grad(out.sum(), [xr, yr])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    registry = SurfaceRegistry(include_user_dir=False)
    generator = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, 1 thread, float64, N = {args.points}, us per call (best of {args.repeats})")
    print(f"{'surface':16s} {'float, 1 pt':>12s} {'forward, N':>12s} {'autograd, N':>12s} {'autograd/forward':>17s}")
    for surface in registry:
        if surface.data_driven:
            continue
        fn = surface._fn
        x = surface.xlim[0] + (surface.xlim[1] - surface.xlim[0]) * torch.rand(args.points, generator=generator,
                                                                              dtype=torch.float64)
        y = surface.ylim[0] + (surface.ylim[1] - surface.ylim[0]) * torch.rand(args.points, generator=generator,
                                                                              dtype=torch.float64)
        px, py = float(x[0]), float(y[0])
        one = best_microseconds(lambda: fn.scalar_value_and_grad(px, py), 5000, args.repeats)
        forward = best_microseconds(lambda: fn.value_and_grad(x, y), 300, args.repeats)
        reverse = best_microseconds(lambda: autograd(fn, x, y), 300, args.repeats)
        print(f"{surface.name:16s} {one:12.2f} {forward:12.1f} {reverse:12.1f} {reverse / forward:16.2f}x")


if __name__ == "__main__":
    main()
