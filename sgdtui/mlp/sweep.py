"""MLP sweeps: the cells of a grid as stacked lanes, in chunks, here or as Ray tasks.

A chunk is a replay of the script's lane with one lane per cell, all stepping in one batched
trainer (on the GPU when the script's device allows). Every cell's lane draws the minibatches
and optimizer noise of the swept lane (its streams are seeded from that lane's name), so a cell
is the single-lane run of its settings up to the rounding of stacked matrix products, and a
chunk is a deterministic function of (script, grid, chunk): ``--backend ray`` runs the same
chunks as Ray tasks and gets the local results bit for bit on CPU.
"""

from __future__ import annotations

import math
import time
import tomllib
from typing import Any, Callable

import numpy as np

from sgdtui.engine.lane import LaneConfig, lane_seed
from sgdtui.engine.script import load_script
from sgdtui.engine.sweep import Sweep, SweepError, SweepResult, build_sweep, cell_config, lane_events, renamed
from sgdtui.mlp.model import LaneSetup
from sgdtui.mlp.race import MLPRace

DEFAULT_CHUNK = 32


class SweepRace(MLPRace):
    """An MLP race whose lanes take their random streams from another lane's name (the swept one)."""

    eval_noise = False  # a sweep's measures never read it

    def __init__(self, problem, lanes, seed: int, seed_name: str):
        self.seed_name = seed_name
        super().__init__(problem, lanes, seed=seed, history_capacity=None)

    def _setup(self, cfg: LaneConfig) -> LaneSetup:
        setup = super()._setup(cfg)
        opt_gen = None
        import torch

        opt_gen = torch.Generator(device=self.device).manual_seed(lane_seed(self.seed, self.seed_name, "optimizer") >> 2)
        spec, hyper = cfg.spec, dict(cfg.hyper)

        def make_optimizer(params):
            return spec.make(params, hyper, generator=opt_gen, per_row=False)

        return LaneSetup(name=setup.name, make_optimizer=make_optimizer, batch=setup.batch,
                         seed=lane_seed(self.seed, self.seed_name, "batches") >> 2)


def run_chunk(script_text: str, script_path: str, lane: str | None, grid: list[str], steps: int,
              burn_in: int | None, cells: list[int]) -> list[dict[str, Any]]:
    """Replay cells ``cells`` of the sweep as one stacked race; their measures, in that order.
    Rebuilds everything from the script text, so a Ray worker computes exactly what this process
    would."""
    import torch

    from sgdtui.engine.session import Session

    torch.set_num_threads(1)
    script = load_script(tomllib.loads(script_text), text=script_text)
    script.path = script_path
    sweep = build_sweep(script, lane, grid, steps=steps, burn_in=burn_in)
    configs = []
    for c in cells:
        cfg = cell_config(sweep.lane, sweep.cells[c])
        configs.append(LaneConfig.from_table({**cfg.to_table(), "name": f"cell-{c}"}))
    session = Session(script.problem, [], seed=script.seed, steps=sweep.steps, registry=script.registry)
    session.race = SweepRace(script.problem, configs, script.seed, sweep.lane.name)
    events = lane_events(script, sweep.lane.name)
    session.pending = sorted([(step, renamed(cmd, f"cell-{c}")) for c in cells for step, cmd in events],
                             key=lambda item: item[0])
    session.run(sweep.steps)
    summary = {entry["lane"]: entry for entry in session.race.summary()["lanes"]}
    histories = session.race.trajectories()
    out = []
    for c in cells:
        entry = summary[f"cell-{c}"]
        row = {k: entry[k] for k in ("final_loss", "best_loss", "steps_to_min", "diverged_at")}
        row["final_val_acc"] = entry["final_val_acc"]
        row["final_train_loss"] = entry["final_train_loss"]
        if burn_in is not None:
            hist = histories[f"cell-{c}"]
            tail = hist["train_loss"][hist["step"] > burn_in]
            mean = float(np.mean(tail)) if len(tail) else math.nan
            row["stationary_loss"] = mean if math.isfinite(mean) else None
        out.append(row)
    return out


def run_mlp_sweep(sweep: Sweep, *, backend: str = "local", address: str | None = None, chunk: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Every cell of an MLP sweep, ``chunk`` cells per stacked race, locally or as Ray tasks."""
    chunk = chunk or DEFAULT_CHUNK
    script = sweep.script
    try:
        text = open(script.path, encoding="utf-8").read()
    except OSError as exc:
        raise SweepError(f"cannot read {script.path} again for the workers ({exc.strerror or exc})") from None
    lane_events(script, sweep.lane.name)  # refuses scripts whose events add or remove the lane
    grid = [axis.text for axis in sweep.axes]
    chunks = [list(range(i, min(i + chunk, len(sweep.cells)))) for i in range(0, len(sweep.cells), chunk)]
    args = [(text, script.path, sweep.lane.name, grid, sweep.steps, sweep.burn_in, cells) for cells in chunks]
    started = time.perf_counter()
    if backend == "ray":
        results = _run_on_ray(args, address, progress, len(sweep.cells))
    else:
        results, done = [], 0
        for a in args:
            results.append(run_chunk(*a))
            done += len(a[-1])
            if progress is not None:
                progress(done, len(sweep.cells))
    wall = time.perf_counter() - started
    rows = []
    import itertools

    measures = [row for part in results for row in part]
    for combo, measured in zip(itertools.product(*(a.values for a in sweep.axes)), measures):
        rows.append({**{a.name: v for a, v in zip(sweep.axes, combo)}, **measured})
    return SweepResult(sweep, rows, wall, backend=backend,
                       extra={"chunk": chunk, "columns": ["final_val_acc", "final_train_loss"]})


def _run_on_ray(args: list[tuple], address: str | None, progress, total: int) -> list[list[dict[str, Any]]]:
    try:
        import ray
    except ImportError:
        raise SweepError("--backend ray needs Ray: pip install 'sgdtui[ray]'") from None
    if not ray.is_initialized():
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False) if address else \
                ray.init(include_dashboard=False, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - a cluster that cannot be reached: one line
            raise SweepError(f"cannot connect to Ray{f' at {address}' if address else ''}: {exc}") from None
    remote = ray.remote(num_cpus=1)(run_chunk)
    pending = {remote.remote(*a): i for i, a in enumerate(args)}
    results: list = [None] * len(args)
    done = 0
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            i = pending.pop(ref)
            results[i] = ray.get(ref)
            done += len(args[i][-1])
            if progress is not None:
                progress(done, total)
    return results
