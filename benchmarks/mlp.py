"""MLP-mode throughput while the playground renders, next to a plain PyTorch loop.

One run measures, for 1 and 4 adam lanes (moons, hidden 32,32, batch 64):

* the session worker's lane-steps/s, flat out (speed "max"), while the App runs headless
  (``app.run_test(size=(160, 48))``) and draws every frame it can;
* the frames/s the App actually rendered meanwhile (must be >= 10);
* the bare loop of ``benchmarks/mlp_baseline.py`` on the same model, batch and device.

    .venv/bin/python benchmarks/mlp.py [--device cpu|cuda|auto] [--seconds 6]

torch runs with ONE intra-op thread (set below, as the CLI does): the tensors are tiny and on a
busy machine torch's thread pool spins; the bare loop gets the same single thread.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)  # as sgdtui.cli.configure_threads does

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlp_baseline import bare_loop_steps_per_s  # noqa: E402

from sgdtui.engine.lane import LaneConfig  # noqa: E402
from sgdtui.engine.session import Session  # noqa: E402
from sgdtui.mlp.model import MLPConfig, resolve_device  # noqa: E402
from sgdtui.mlp.problem import MLPProblem  # noqa: E402
from sgdtui.ui.app import PlaygroundApp  # noqa: E402
from sgdtui.ui.worker import SPEED_LEVELS  # noqa: E402

BATCH = 64
MIN_FPS = 10.0


def make_session(n_lanes: int, device: str) -> Session:
    lanes = [LaneConfig.create(f"adam-{i}", "adam", lr=0.01, batch=BATCH) for i in range(n_lanes)]
    return Session(MLPProblem(dataset="moons", hidden=(32, 32), device=device), lanes)


async def measure_app(n_lanes: int, device: str, seconds: float) -> tuple[float, float]:
    """(lane-steps/s of the worker, frames/s rendered) with the App running flat out."""
    app = PlaygroundApp(make_session(n_lanes, device), speed_index=SPEED_LEVELS.index(None), start_running=True)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(1.0)  # warm-up: first frames, allocator, caches
        clock0 = app.worker.latest.snapshot.clock  # the latest published frame's clock
        frames0, t0 = app.frames_rendered, time.perf_counter()
        await pilot.pause(seconds)
        clock1 = app.worker.latest.snapshot.clock
        frames1, t1 = app.frames_rendered, time.perf_counter()
        app.worker.set_running(False)
    elapsed = t1 - t0
    return (clock1 - clock0) * n_lanes / elapsed, (frames1 - frames0) / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--seconds", type=float, default=6.0, help="measuring time per lane count")
    parser.add_argument("--bare-steps", type=int, default=1500)
    args = parser.parse_args(argv)
    device = str(resolve_device(args.device))

    problem = MLPProblem(dataset="moons", hidden=(32, 32), device=device)
    dataset = problem.make_dataset()
    config = MLPConfig.for_dataset(dataset, hidden=(32, 32))
    bare = bare_loop_steps_per_s(dataset, config, BATCH, args.bare_steps, device, "adam")
    rows = []
    for n_lanes in (1, 4):
        lane_steps, fps = asyncio.run(measure_app(n_lanes, device, args.seconds))
        rows.append((n_lanes, lane_steps, fps))
    bare_after = bare_loop_steps_per_s(dataset, config, BATCH, args.bare_steps, device, "adam")
    bare = (bare + bare_after) / 2  # the machine may be shared: average the loop before and after

    print(f"moons, hidden (32, 32), batch {BATCH}, adam, device {device}, torch threads {torch.get_num_threads()}, "
          f"App headless at 160x48, {args.seconds:g} s per row")
    print(f"{'lanes':>5} {'lane-steps/s':>13} {'bare steps/s':>13} {'ratio':>7} {'target':>7} {'frames/s':>9}  verdict")
    ok = True
    for n_lanes, lane_steps, fps in rows:
        ratio = lane_steps / bare
        target = 0.9 if n_lanes == 1 else 1.0
        good = ratio >= target and fps >= MIN_FPS
        ok &= good
        print(f"{n_lanes:>5} {lane_steps:>13.1f} {bare:>13.1f} {ratio:>6.2f}x {target:>6.1f}x {fps:>9.1f}  "
              f"{'ok' if good else 'BELOW TARGET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
