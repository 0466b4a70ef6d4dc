"""Sweep and batched-race throughput next to plain loops, in one run.

    python benchmarks/sweep.py [--compile] [--quick] [--parts]

1. The 64 x 64 x 1,000 Rosenbrock grid of heavy-ball SGD (lr x momentum) through `sgdtui sweep`'s
   engine (the grid's own wall time, after one warm-up run), next to a plain torch loop with
   per-trajectory lr and momentum tensors and the analytic gradient, in place, and to the same
   grid as 4,096 separate lanes (timed on 256 lanes, scaled).
2. The batched race (one lane of N start points, heavy-ball SGD, recording its history as the app
   does) at N = 16,384 and 262,144 on Rosenbrock and pathological, in trajectory-steps per second,
   next to numpy and torch in-place analytic-gradient loops (and torch.compile with --compile).

One torch thread, float64, as the CLI runs.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from sgdtui.engine.lane import MAX_STARTS, LaneConfig
from sgdtui.engine.script import load_script
from sgdtui.engine.surface_problem import SurfaceProblem
from sgdtui.engine.surface_race import SurfaceRace
from sgdtui.engine.surfaces import SurfaceRegistry
from sgdtui.engine.sweep import build_sweep, run_surface_sweep
from sgdtui.engine.vectorized import Rows

from method_timing import wrap_methods  # benchmarks/, the script's folder

REGISTRY = SurfaceRegistry(include_user_dir=False)
GRID_SCRIPT = """
version = 1
steps = 1000
[problem]
surface = "rosenbrock"
[[lanes]]
name = "hb"
optimizer = "momentum"
lr = 0.0005
momentum = 0.9
"""
LR_RANGE = (1e-5, 1e-3)


# --- plain loops: per-trajectory lr and momentum, the analytic gradient, in place -------------------

def rosenbrock_grad_torch(x, y, gx, gy, t):
    torch.mul(x, x, out=t)
    torch.sub(y, t, out=t)  # d = y - x^2
    torch.mul(t, 200.0, out=gy)
    torch.mul(x, t, out=gx)
    gx.mul_(-400.0).add_(x, alpha=2.0).sub_(2.0)  # -400 x d + 2 (x - 1)


def pathological_grad_torch(x, y, gx, gy, t):
    torch.tanh(x, out=t)
    torch.mul(t, t, out=gx)
    gx.neg_().add_(1.0).mul_(t).mul_(2.0)  # 2 tanh (1 - tanh^2)
    torch.sigmoid(y, out=t)
    torch.sign(y, out=gy)
    gy.mul_(0.01)
    gy.addcmul_(t, 1.0 - t)  # + s (1 - s)


def torch_loop(surface: str, n: int, steps: int, lr: torch.Tensor | None = None, mu: torch.Tensor | None = None) -> float:
    grad = rosenbrock_grad_torch if surface == "rosenbrock" else pathological_grad_torch
    x = torch.full((n,), -1.5 if surface == "rosenbrock" else -4.0, dtype=torch.float64)
    y = torch.full((n,), 2.5 if surface == "rosenbrock" else 5.0, dtype=torch.float64)
    lr = lr if lr is not None else torch.full((n,), 1e-4, dtype=torch.float64)
    mu = mu if mu is not None else torch.full((n,), 0.9, dtype=torch.float64)
    bx, by = torch.zeros(n, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)
    gx, gy, t = (torch.empty(n, dtype=torch.float64) for _ in range(3))
    started = time.perf_counter()
    for _ in range(steps):
        grad(x, y, gx, gy, t)
        bx.mul_(mu).add_(gx)
        by.mul_(mu).add_(gy)
        x.addcmul_(bx, lr, value=-1.0)
        y.addcmul_(by, lr, value=-1.0)
    return time.perf_counter() - started


def numpy_loop(surface: str, n: int, steps: int) -> float:
    x = np.full(n, -1.5 if surface == "rosenbrock" else -4.0)
    y = np.full(n, 2.5 if surface == "rosenbrock" else 5.0)
    lr, mu = np.full(n, 1e-4), np.full(n, 0.9)
    bx, by, gx, gy, t, u = (np.zeros(n) for _ in range(6))
    started = time.perf_counter()
    for _ in range(steps):
        if surface == "rosenbrock":
            np.multiply(x, x, out=t)
            np.subtract(y, t, out=t)
            np.multiply(t, 200.0, out=gy)
            np.multiply(x, t, out=gx)
            gx *= -400.0
            np.multiply(x, 2.0, out=u)
            gx += u
            gx -= 2.0
        else:
            np.tanh(x, out=t)
            np.multiply(t, t, out=gx)
            np.subtract(1.0, gx, out=gx)
            gx *= t
            gx *= 2.0
            np.negative(y, out=u)
            np.exp(u, out=u)
            u += 1.0
            np.reciprocal(u, out=t)  # sigmoid
            np.sign(y, out=gy)
            gy *= 0.01
            np.subtract(1.0, t, out=u)
            u *= t
            gy += u
        bx *= mu
        bx += gx
        by *= mu
        by += gy
        np.multiply(bx, lr, out=u)
        x -= u
        np.multiply(by, lr, out=u)
        y -= u
    return time.perf_counter() - started


def compiled_loop(surface: str, n: int, steps: int) -> float | None:
    grad = rosenbrock_grad_torch if surface == "rosenbrock" else pathological_grad_torch

    def step(x, y, bx, by, gx, gy, t, lr, mu):
        grad(x, y, gx, gy, t)
        bx.mul_(mu).add_(gx)
        by.mul_(mu).add_(gy)
        x.addcmul_(bx, lr, value=-1.0)
        y.addcmul_(by, lr, value=-1.0)

    try:
        fn = torch.compile(step, dynamic=False)
        state = [torch.full((n,), v, dtype=torch.float64) for v in (-1.5, 2.5, 0.0, 0.0, 0.0, 0.0, 0.0, 1e-4, 0.9)]
        fn(*state)  # compile (warm cache on a second run)
        started = time.perf_counter()
        for _ in range(steps):
            fn(*state)
        return time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 - no compiler here: say so, keep the other figures
        print(f"  torch.compile unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:100]}")
        return None


# --- sgdtui ---------------------------------------------------------------------------------------

def race_run(surface: str, n: int, steps: int) -> float:
    s = REGISTRY.get(surface)
    start = (-1.5, 2.5) if surface == "rosenbrock" else (-4.0, 5.0)
    # A lane holds at most MAX_STARTS points: beyond that the same lane runs as cells x points.
    cells = max(1, n // 16_384) if n > MAX_STARTS else 1
    lane = LaneConfig.create("hb", "momentum", lr=1e-4, momentum=0.9, starts=(start,) * (n // cells))
    race = SurfaceRace(SurfaceProblem(s, {"surface": surface}), [], history_capacity=4096)
    race.add_lane(lane, cells=cells, rows={"lr": Rows.of([1e-4] * cells)} if cells > 1 else None)
    race.step(3)  # set-up and the first steps (tracing the gradient program) are not the figure
    started = time.perf_counter()
    race.step(steps)
    race.flush()
    return time.perf_counter() - started


def race_parts(surface: str, n: int, steps: int) -> dict[str, float]:
    """Microseconds per step in each part of a race step (wall time, wrapped method by method)."""
    from sgdtui.engine import surface_race, vectorized

    lane_class = surface_race.SurfaceLane
    spent: dict[str, float] = {}
    restore = wrap_methods([(lane_class, "step", "whole step"), (lane_class, "_evaluate", "loss and gradient"),
                            (lane_class, "_record", "recording (staging and flushes)"),
                            (lane_class, "_check_divergence", "divergence check"),
                            (vectorized.SGD, "step", "optimizer update")], spent, time.perf_counter)
    try:
        race_run(surface, n, steps)
    finally:
        restore()
    return {label: seconds / (steps + 3) * 1e6 for label, seconds in spent.items()}


def grid_run(script_path: str, steps: int) -> float:
    sweep = build_sweep(load_script(script_path), "hb",
                        [f"lr={LR_RANGE[0]}:{LR_RANGE[1]}:log:64", "momentum=0:0.99:64"], steps=steps)
    return run_surface_sweep(sweep).wall_time


def lanes_run(lanes: int, steps: int) -> float:
    s = REGISTRY.get("rosenbrock")
    lrs = np.geomspace(*LR_RANGE, 64)
    mus = np.linspace(0, 0.99, 64)
    cfgs = [LaneConfig.create(f"c{i}", "momentum", lr=float(lrs[i % 64]), momentum=float(mus[i // 64 % 64]))
            for i in range(lanes)]
    race = SurfaceRace(SurfaceProblem(s, {"surface": "rosenbrock"}), cfgs, history_capacity=None)
    started = time.perf_counter()
    race.step(steps)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    parser.add_argument("--parts", action="store_true", help="also split a race step's time into its parts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import tempfile
    from pathlib import Path

    script = Path(tempfile.mkdtemp()) / "grid.toml"
    script.write_text(GRID_SCRIPT)
    grid_steps = 100 if args.quick else 1000
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread, float64")
    print(f"\n1. 64 x 64 x {grid_steps} Rosenbrock grid, heavy-ball SGD over lr x momentum (4,096 trajectories)")
    grid_run(str(script), 10)  # warm-up: imports and tracing
    t_grid = min(grid_run(str(script), grid_steps) for _ in range(2))
    lr = torch.tensor(np.tile(np.geomspace(*LR_RANGE, 64), 64))
    mu = torch.tensor(np.repeat(np.linspace(0, 0.99, 64), 64))
    torch_loop("rosenbrock", 4096, 10, lr, mu)
    t_plain = min(torch_loop("rosenbrock", 4096, grid_steps, lr, mu) for _ in range(3))
    lane_steps = 20 if args.quick else 100
    t_lanes = lanes_run(256, lane_steps) * (4096 / 256) * (grid_steps / lane_steps)
    print(f"  {'sgdtui sweep (grid wall time)':<44} {t_grid:9.3f} s")
    print(f"  {'plain torch in-place loop (baseline)':<44} {t_plain:9.3f} s   sweep/baseline = {t_grid / t_plain:.2f}x")
    print(f"  {'as 4,096 lanes (scaled from 256 x ' + str(lane_steps) + ')':<44} {t_lanes:9.1f} s   "
          f"lanes/sweep = {t_lanes / t_grid:.0f}x")

    print("\n2. the batched race: one lane of N start points, heavy-ball SGD (M trajectory-steps/s)")
    header = f"  {'surface':<13} {'N':>8} {'sgdtui race':>12} {'numpy':>9} {'torch':>9}"
    print(header + (f" {'compile':>9}" if args.compile else "") + "   race/torch")
    for surface in ("rosenbrock", "pathological"):
        for n in (16_384, 262_144):
            steps = (60 if n == 16_384 else 12) if args.quick else (300 if n == 16_384 else 40)
            rate = lambda seconds: n * steps / seconds / 1e6  # noqa: E731
            torch_loop(surface, n, 3)
            t_torch = min(torch_loop(surface, n, steps) for _ in range(2))
            t_numpy = min(numpy_loop(surface, n, steps) for _ in range(2))
            t_race = min(race_run(surface, n, steps) for _ in range(2))
            line = f"  {surface:<13} {n:>8} {rate(t_race):>12.1f} {rate(t_numpy):>9.1f} {rate(t_torch):>9.1f}"
            if args.compile:
                t_comp = compiled_loop(surface, n, steps)
                line += f" {rate(t_comp):>9.1f}" if t_comp else f" {'-':>9}"
            print(line + f"   {t_torch / t_race:.2f}")
    print("\n(the race also computes the loss, checks divergence and records its history every step;"
          " the loops only step)")
    if args.parts:
        print("\n3. where a race step's time goes, rosenbrock, N = 16,384 (us per step, wrapped methods)")
        for label, micros in race_parts("rosenbrock", 16_384, 60 if args.quick else 300).items():
            print(f"  {label:<36} {micros:8.0f}")
        t_loop = min(torch_loop("rosenbrock", 16_384, 300) for _ in range(2)) / 300 * 1e6
        print(f"  {'plain torch loop, a whole step':<36} {t_loop:8.0f}")


if __name__ == "__main__":
    main()
