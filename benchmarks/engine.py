"""Engine throughput: sgdtui's Race against a plain autograd + torch.optim loop, in one run.

    python benchmarks/engine.py [--steps N] [--optimizer NAME]

Prints steps/s for a single trajectory against the course tutorial's own loop (scalar parameter,
per-step logging), and trajectory-steps/s for N = 1, 1024 and 16384 start
points on the pathological surface, next to the plain loop (per point: zero_grad, loss,
backward, step) and its vectorized form (the same loop over one (N, 2) parameter).
"""

from __future__ import annotations

import argparse
import time

import torch

from sgdtui.engine.lane import LaneConfig
from sgdtui.engine.surface_problem import SurfaceProblem
from sgdtui.engine.surface_race import SurfaceRace
from sgdtui.engine.surfaces import SurfaceRegistry


def pathological(w0, w1):
    return torch.tanh(w0) ** 2 + 0.01 * torch.abs(w1) + torch.sigmoid(w1)


def tutorial_loop(steps: int) -> float:
    """The course tutorial's train_curve loop verbatim (one trajectory, with its logging)."""
    w = torch.nn.Parameter(torch.tensor([-4.0, 5.0]))
    opt = torch.optim.SGD([w], lr=0.1)
    points = [torch.tensor([w[0].item(), w[1].item(), pathological(w[0], w[1]).item()])]
    started = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = pathological(w[0], w[1])
        loss.backward()
        opt.step()
        with torch.no_grad():
            points.append(torch.cat([w.data, loss.unsqueeze(dim=0)]))
    return time.perf_counter() - started


def plain_loop(n_points: int, steps: int, optimizer: str, record: bool = False) -> float:
    """The course tutorial's loop, vectorized over an (N, 2) parameter; returns seconds.
    ``record`` keeps what a lane keeps every step: positions, losses and gradient norms."""
    w = torch.nn.Parameter(torch.tensor([[-4.0, 5.0]] * n_points, dtype=torch.float64))
    opt = torch.optim.SGD([w], lr=0.1) if optimizer == "sgd" else torch.optim.Adam([w], lr=0.1)
    kept = []
    started = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        losses = pathological(w[:, 0], w[:, 1])
        losses.sum().backward()
        opt.step()
        if record:
            kept.append((w.detach().clone(), losses.detach(), w.grad.norm(dim=1)))
    return time.perf_counter() - started


def race_loop(n_points: int, steps: int, optimizer: str) -> float:
    surface = SurfaceRegistry(include_user_dir=False).get("pathological")
    lane = LaneConfig.create(optimizer, optimizer, lr=0.1, starts=((-4.0, 5.0),) * n_points)
    race = SurfaceRace(SurfaceProblem(surface, {"surface": surface.name}), [lane], history_capacity=4096)
    started = time.perf_counter()
    race.step(steps)
    race.flush()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the CLI does (sgdtui.cli.configure_threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, optimizer {args.optimizer}, float64")
    tutorial_loop(50)
    t_tut = min(tutorial_loop(args.steps) for _ in range(3))
    t_one = min(race_loop(1, args.steps, "sgd") for _ in range(3))
    print(f"single trajectory, sgd: tutorial loop {args.steps / t_tut:,.0f} steps/s, "
          f"sgdtui {args.steps / t_one:,.0f} steps/s ({t_tut / t_one:.2f}x)")
    print(f"{'points N':>9} {'steps':>7} | {'plain loop':>14} {'+ recording':>14} {'sgdtui race':>14} | {'vs plain':>8} {'vs +rec':>8}")
    print(f"{'':>9} {'':>7} | {'traj-steps/s':>14} {'traj-steps/s':>14} {'traj-steps/s':>14} |")
    for n in (1, 1024, 16384):
        steps = args.steps if n < 16384 else max(200, args.steps // 10)
        plain_loop(n, 50, args.optimizer), race_loop(n, 50, args.optimizer)  # warm up
        t_plain = min(plain_loop(n, steps, args.optimizer) for _ in range(3))
        t_rec = min(plain_loop(n, steps, args.optimizer, record=True) for _ in range(3))
        t_race = min(race_loop(n, steps, args.optimizer) for _ in range(3))
        plain, rec, ours = n * steps / t_plain, n * steps / t_rec, n * steps / t_race
        print(f"{n:>9} {steps:>7} | {plain:>14,.0f} {rec:>14,.0f} {ours:>14,.0f} | {ours / plain:>7.2f}x {ours / rec:>7.2f}x")


if __name__ == "__main__":
    main()
