"""Sweeps: one lane of a script replayed over a grid of its settings, every cell at once.

A grid is one or more axes, each a lane setting (a hyperparameter of the lane's optimizer,
``beta1``/``beta2`` for a pair of betas, ``batch``, ``noise``) with evenly or log-spaced values,
or ``optimizer=a,b,c`` as a categorical axis. Each cell is the lane with those settings, replayed
alone with the script's seed and its events for that lane: the surface kind steps all cells as
one batch of trajectories through the vectorized optimizer core (cells with a different
optimizer, or a random stream of another shape, go in a batch of their own), and every cell
draws the random numbers a lane of its own would, so a cell's numbers are the single-lane
replay's (``tests/test_sweep.py``). Measures per cell: final_loss, best_loss, steps_to_min,
diverged_at, and stationary_loss (the mean loss after ``burn_in`` steps) when a burn-in is given.

The grid comes from ``sgdtui sweep SCRIPT --lane NAME --grid ...`` or a ``[sweep]`` table::

    [sweep]
    lane = "gd"
    grid = ["lr=1e-4:1:log:64", "momentum=0:0.99:64"]
    steps = 1000          # optional: the script's steps otherwise
    burn_in = 500         # optional: adds stationary_loss
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from sgdtui.engine.checks import did_you_mean
from sgdtui.engine.commands import AddLane, Command, MoveStarts, RemoveLane, Reset, SetLane, SwitchProblem
from sgdtui.engine.files import open_output, write_output_text
from sgdtui.engine.lane import BATCH, NOISE, LaneConfig
from sgdtui.engine.optimizers import OPTIMIZERS, get_optimizer
from sgdtui.engine.params import ParamSpec, SettingError
from sgdtui.engine.script import MAX_STEPS, Script, ScriptError, key_error

MAX_TRAJECTORIES = 1 << 20  # cells x start points one surface sweep may step
MAX_MLP_CELLS = 4096
MEASURES = ("final_loss", "best_loss", "steps_to_min", "diverged_at")
SWEEP_KEYS = ("lane", "grid", "steps", "burn_in")
GRID_SYNTAX = "PARAM=LOW:HIGH[:log]:COUNT, PARAM=v1,v2,... or optimizer=a,b,c"


class SweepError(ValueError):
    """A grid or [sweep] table that cannot run; the message is one line."""


@dataclass(frozen=True)
class Axis:
    name: str
    values: tuple
    log: bool = False
    text: str = ""

    @property
    def categorical(self) -> bool:
        return self.name == "optimizer"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "values": list(self.values), "log": self.log, "spec": self.text}


@dataclass
class Sweep:
    """A validated sweep: the base lane, its axes, the steps to run."""

    script: Script
    lane: LaneConfig
    axes: list[Axis]
    steps: int
    burn_in: int | None = None
    cells: list[dict[str, Any]] = field(default_factory=list)  # each cell's settings, in grid order

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(a.values) for a in self.axes)

    @property
    def measures(self) -> tuple[str, ...]:
        return MEASURES + (("stationary_loss",) if self.burn_in is not None else ())


# --- grids --------------------------------------------------------------------------------------


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_axis(text: str) -> tuple[str, tuple, bool]:
    """``PARAM=LOW:HIGH[:log]:COUNT`` or ``PARAM=v1,v2,...`` -> (name, raw values, log)."""
    if not isinstance(text, str) or "=" not in text:
        raise SweepError(f"grid {text!r}: expected {GRID_SYNTAX}")
    name, _, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not name or not spec:
        raise SweepError(f"grid {text!r}: expected {GRID_SYNTAX}")
    if ":" in spec:
        parts = spec.split(":")
        log = len(parts) == 4 and parts[2].strip() == "log"
        if len(parts) not in (3, 4) or (len(parts) == 4 and not log):
            raise SweepError(f"grid {text!r}: a range is LOW:HIGH:COUNT or LOW:HIGH:log:COUNT")
        low, high, count = parts[0].strip(), parts[1].strip(), parts[-1].strip()
        if not re.fullmatch(_NUMBER, low) or not re.fullmatch(_NUMBER, high):
            raise SweepError(f"grid {text!r}: LOW and HIGH must be numbers")
        if not count.isdigit() or int(count) < 1:
            raise SweepError(f"grid {text!r}: COUNT must be a whole number >= 1")
        lo, hi, k = float(low), float(high), int(count)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise SweepError(f"grid {text!r}: LOW and HIGH must be finite")
        if log and (lo <= 0 or hi <= 0):
            raise SweepError(f"grid {text!r}: a log range needs LOW and HIGH > 0")
        if k > MAX_TRAJECTORIES:
            raise SweepError(f"grid {text!r}: {k} values on one axis is over the cap of {MAX_TRAJECTORIES}")
        if k == 1:
            values = (lo,)
        elif log:
            values = tuple(float(v) for v in np.geomspace(lo, hi, k))
        else:
            values = tuple(float(v) for v in np.linspace(lo, hi, k))
        return name, values, log
    items = tuple(v.strip() for v in spec.split(","))
    if not all(items):
        raise SweepError(f"grid {text!r}: empty value in the list")
    if name == "optimizer":
        return name, items, False
    if not all(re.fullmatch(_NUMBER, v) for v in items):
        raise SweepError(f"grid {text!r}: values must be numbers (or use {GRID_SYNTAX})")
    return name, tuple(float(v) for v in items), False


def _axis_spec(name: str, optimizers: list[str], base: LaneConfig) -> tuple[ParamSpec, str]:
    """The ParamSpec that validates an axis and the lane setting it changes (``betas`` for beta1)."""
    if name in ("batch", "noise"):
        return (BATCH if name == "batch" else NOISE), name
    valid = ["optimizer", "batch", "noise"]
    found = None
    for opt in optimizers:
        spec = get_optimizer(opt)
        names = spec.param_names()
        pair = "betas" in names
        valid += [n for n in names if n != "betas"] + (["beta1", "beta2"] if pair else [])
        if name in ("beta1", "beta2") and pair:
            found = (spec.param("betas"), "betas")
        elif name in names and name != "betas":
            found = found or (spec.param(name), name)
        else:
            raise SweepError(f"grid: optimizer '{opt}' has no setting '{name}'{did_you_mean(name, sorted(set(valid)))}"
                             f" (axes: {', '.join(sorted(set(valid)))})")
    assert found is not None
    return found


def build_sweep(script: Script, lane_name: str | None, grid: list[str], *, steps: int | None = None,
                burn_in: int | None = None, max_cells: int | None = None) -> Sweep:
    """Validate a grid against the script's lane; SweepError (one line) for anything wrong."""
    names = [cfg.name for cfg in script.lanes]
    if lane_name is None:
        if len(names) != 1:
            raise SweepError(f"which lane? give --lane NAME (lanes: {', '.join(names)})")
        lane_name = names[0]
    base = next((cfg for cfg in script.lanes if cfg.name == lane_name), None)
    if base is None:
        raise SweepError(f"unknown lane {lane_name!r}{did_you_mean(lane_name, names)} (lanes: {', '.join(names)})")
    if not grid:
        raise SweepError(f"no grid: give --grid {GRID_SYNTAX} (or a [sweep] table with grid = [...])")
    parsed = [parse_axis(text) for text in grid]
    seen = [name for name, _, _ in parsed]
    for name in seen:
        if seen.count(name) > 1:
            raise SweepError(f"grid: axis '{name}' is given twice")
    optimizers = [base.optimizer]
    for name, values, _ in parsed:
        if name == "optimizer":
            for v in values:
                if v not in OPTIMIZERS:
                    raise SweepError(f"grid optimizer: unknown optimizer {v!r}{did_you_mean(v, list(OPTIMIZERS))}"
                                     f" (choose from {', '.join(OPTIMIZERS)})")
            optimizers = list(dict.fromkeys(values))
    axes: list[Axis] = []
    for (name, values, log), text in zip(parsed, grid):
        if name != "optimizer":
            hp, key = _axis_spec(name, optimizers, base)
            checked = []
            for v in values:
                v = round(v) if hp.kind is int else v
                try:
                    hp.validate((v, v) if hp.kind == "pair" else v)
                except SettingError as exc:
                    shown = name if hp.kind == "pair" else exc.key
                    raise SweepError(f"grid {shown}: value {v!r} is out of range: must be "
                                     f"{hp.range_text().replace('a pair of numbers, each', 'a number')}") from None
                checked.append(int(v) if hp.kind is int else float(v))
            values = tuple(checked)
        axes.append(Axis(name, values, log, text))
    total_cells = math.prod(len(a.values) for a in axes)
    kind = script.problem.kind
    starts = len(base.starts) if base.starts is not None else len(getattr(script.problem, "surface", None).starts) \
        if kind == "surface" else 1
    cap = max_cells if max_cells is not None else (MAX_TRAJECTORIES if kind == "surface" else MAX_MLP_CELLS)
    if total_cells * starts > cap:
        unit = "trajectories (cells x start points)" if kind == "surface" else "cells"
        raise SweepError(f"grid of {total_cells} cells is {total_cells * starts} {unit}, over the cap of {cap}")
    total = script.steps if steps is None else steps
    if total is None:
        raise SweepError("no step count: give steps in the script, in [sweep] or as --steps N")
    if not 0 <= total <= MAX_STEPS:
        raise SweepError(f"steps must be in [0, {MAX_STEPS}], got {total}")
    if burn_in is not None and not 0 <= burn_in < max(total, 1):
        raise SweepError(f"burn_in must be in [0, steps), got {burn_in}")
    sweep = Sweep(script, base, axes, total, burn_in)
    sweep.cells = [_cell_settings(base, axes, combo) for combo in itertools.product(*(a.values for a in axes))]
    _check_cells(sweep)
    return sweep


def _cell_settings(base: LaneConfig, axes: list[Axis], combo: tuple) -> dict[str, Any]:
    """A cell's lane settings (the script's keys): ``optimizer`` and a set-table of the rest."""
    settings: dict[str, Any] = {}
    optimizer = base.optimizer
    for axis, value in zip(axes, combo):
        if axis.name == "optimizer":
            optimizer = value
        else:
            settings[axis.name] = value  # beta1/beta2 become the betas pair in cell_config
    return {"optimizer": optimizer, **settings}


def cell_config(base: LaneConfig, cell: dict[str, Any]) -> LaneConfig:
    """The lane a cell replays: the base lane with the cell's optimizer and settings."""
    cfg = base
    optimizer = cell["optimizer"]
    if optimizer != base.optimizer:
        table = base.to_table()
        spec = get_optimizer(optimizer)
        kept = {k: v for k, v in table.items() if k not in base.spec.param_names() or k in spec.param_names()}
        cfg = LaneConfig.from_table({**kept, "optimizer": optimizer, "lr": base.hyper["lr"]})
    settings = {k: v for k, v in cell.items() if k != "optimizer"}
    for name in ("beta1", "beta2"):
        if name in settings:
            betas = list(settings.get("betas", cfg.hyper["betas"]))
            betas[0 if name == "beta1" else 1] = settings.pop(name)
            settings["betas"] = tuple(betas)
    return cfg.with_settings(settings) if settings else cfg


def _check_cells(sweep: Sweep) -> None:
    """Every value of every axis must make a valid lane with each optimizer of the grid (rules
    across settings, such as Nesterov needing momentum > 0, included)."""
    optimizers = next((a.values for a in sweep.axes if a.categorical), (sweep.lane.optimizer,))
    for optimizer in optimizers:
        cells = [{"optimizer": optimizer}]
        for axis in sweep.axes:
            if not axis.categorical:
                cells += [{"optimizer": optimizer, axis.name: v} for v in axis.values]
        for cell in cells:
            try:
                cfg = cell_config(sweep.lane, cell)
                if cfg.optimizer == "nesterov" and cfg.hyper["momentum"] <= 0:
                    raise SettingError("momentum", "Nesterov momentum needs momentum > 0")
            except SettingError as exc:
                shown = ", ".join(f"{k}={v}" for k, v in cell.items())
                raise SweepError(f"grid cell ({shown}): {exc}") from None


def sweep_from_table(script: Script, text: str, overrides: dict[str, Any]) -> Sweep:
    """A sweep from the script's [sweep] table, CLI ``overrides`` (lane, grid, steps, burn_in)
    taking precedence; errors in the table are ``file:line: sweep.key: ...`` (ScriptError)."""
    table = script.raw.get("sweep", {})
    path = script.path

    def fail(key: str, message: str) -> ScriptError:
        return key_error(path, text, "sweep", key, f"sweep.{key}", message)

    for key in table:
        if key not in SWEEP_KEYS:
            raise key_error(path, text, "sweep", key, f"sweep.{key}",
                            f"unknown key{did_you_mean(key, SWEEP_KEYS)} (valid keys: {', '.join(SWEEP_KEYS)})")
    lane = table.get("lane")
    if lane is not None and not isinstance(lane, str):
        raise fail("lane", f"must be a lane name (a string), got {lane!r}")
    grid = table.get("grid")
    if grid is not None and (not isinstance(grid, list) or not all(isinstance(g, str) for g in grid)):
        raise fail("grid", f"must be a list of strings like \"lr=1e-4:1:log:64\", got {grid!r}")
    for key in ("steps", "burn_in"):
        value = table.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise fail(key, f"must be a whole number >= 0, got {value!r}")
    lane = overrides.get("lane") or lane
    steps = overrides.get("steps") if overrides.get("steps") is not None else table.get("steps")
    burn_in = overrides.get("burn_in") if overrides.get("burn_in") is not None else table.get("burn_in")
    if overrides.get("grid"):
        return build_sweep(script, lane, list(overrides["grid"]), steps=steps, burn_in=burn_in)
    try:
        return build_sweep(script, lane, list(grid or []), steps=steps, burn_in=burn_in)
    except SweepError as exc:
        message = str(exc)
        if message.startswith(("unknown lane", "which lane")) and table.get("lane") is not None:
            key = "lane"
        elif message.startswith("burn_in") and table.get("burn_in") is not None:
            key = "burn_in"
        elif message.startswith(("steps", "no step count")) and table.get("steps") is not None:
            key = "steps"
        elif grid is not None:
            key = "grid"
        else:
            raise  # nothing in the table is at fault (a missing grid, a lane given on the command line)
        raise fail(key, message) from None


# --- events -------------------------------------------------------------------------------------


def lane_events(script: Script, name: str) -> list[tuple[int, Command]]:
    """The script's events that change lane ``name`` or every lane (a reset, a problem switch);
    other lanes' events cannot change its numbers. SweepError if an event adds or removes it."""
    kept: list[tuple[int, Command]] = []
    for step, cmd in script.events:
        if isinstance(cmd, (Reset, SwitchProblem)):
            kept.append((step, cmd))
        elif isinstance(cmd, (SetLane, MoveStarts)) and cmd.lane == name:
            kept.append((step, cmd))
        elif isinstance(cmd, RemoveLane) and cmd.lane == name:
            raise SweepError(f"an event at step {step} removes lane {name!r}: sweep a lane that stays")
        elif isinstance(cmd, AddLane) and cmd.lane.get("name") == name:
            raise SweepError(f"lane {name!r} is added by an event at step {step}: sweep a lane of [[lanes]]")
    return kept


def renamed(cmd: Command, name: str) -> Command:
    if isinstance(cmd, SetLane):
        return SetLane(name, cmd.settings)
    if isinstance(cmd, MoveStarts):
        return MoveStarts(name, cmd.starts)
    return cmd


# --- running (the surface kind) -------------------------------------------------------------------


@dataclass
class SweepResult:
    sweep: Sweep
    rows: list[dict[str, Any]]  # per cell: its axis values and measures
    wall_time: float  # seconds the grid itself took (building the batches and stepping them)
    backend: str = "local"
    extra: dict[str, Any] = field(default_factory=dict)


def _structural_key(sweep: Sweep, cell: dict[str, Any]) -> tuple:
    """Cells that can share one batch: the same optimizer, and random draws of the same shape (a
    noise-free cell draws nothing; a data surface's minibatch has the cell's batch size)."""
    base = sweep.lane
    surface = sweep.script.problem.surface
    noise = cell.get("noise", base.noise)
    batch = cell.get("batch", base.batch)
    if surface.data_driven:
        # A data surface's loss is a matrix product over the data, whose rounding depends on how
        # many rows go in, and minibatches draw per trajectory: each cell steps as a lane of its own.
        return cell["optimizer"], id(cell)
    return cell["optimizer"], noise > 0


def run_surface_sweep(sweep: Sweep, progress: Callable[[int, int], None] | None = None) -> SweepResult:
    """Every cell of a surface sweep, batched; cells equal single-lane replays of their settings."""
    from sgdtui.engine.session import Session
    from sgdtui.engine.surface_race import combine_figures
    from sgdtui.engine.vectorized import Rows

    script = sweep.script
    started = time.perf_counter()
    if sweep.lane.schedule == "plateau":
        raise SweepError("a plateau schedule follows its own lane's loss: it cannot be swept (use another schedule)")
    groups: dict[tuple, list[int]] = {}
    for i, cell in enumerate(sweep.cells):
        groups.setdefault(_structural_key(sweep, cell), []).append(i)
    events = lane_events(script, sweep.lane.name)
    session = Session(script.problem, [], seed=script.seed, steps=sweep.steps, registry=script.registry,
                      history_capacity=0)
    members: list[tuple[str, list[int]]] = []
    pending: list[tuple[int, Command]] = []
    numeric = [a.name for a in sweep.axes if not a.categorical]
    for g, cells in enumerate(groups.values()):
        try:
            first = cell_config(sweep.lane, sweep.cells[cells[0]])
        except SettingError as exc:
            raise SweepError(f"grid: {exc}") from None
        name = f"cells-{g}"
        rows: dict[str, Any] = {}
        for axis in numeric:
            values = [sweep.cells[c][axis] for c in cells]
            if axis in ("beta1", "beta2"):
                pair = list(rows.get("betas", first.hyper["betas"]))
                pair[0 if axis == "beta1" else 1] = Rows.of(values)
                rows["betas"] = tuple(pair)
            else:
                rows[axis] = Rows.of(values)
        try:
            session.race.add_lane(replace(first, name=name), rows=rows, cells=len(cells),
                                  seed_name=sweep.lane.name, burn_in=sweep.burn_in)
        except ValueError as exc:
            raise SweepError(f"grid: {exc}") from None
        members.append((name, cells))
        pending += [(step, renamed(cmd, name)) for step, cmd in events]
    session.pending = sorted(pending, key=lambda item: item[0])
    session.run(sweep.steps, progress=progress)
    results: list[dict[str, Any] | None] = [None] * len(sweep.cells)
    for name, cells in members:
        lane = session.race.lane(name)
        per_trajectory = lane.figures()
        final = lane.L[: lane.n].numpy()
        k = lane.starts_per_cell
        for j, c in enumerate(cells):
            results[c] = combine_figures(per_trajectory[j * k:(j + 1) * k], final[j * k:(j + 1) * k])
    wall = time.perf_counter() - started
    rows_out = [{**_axis_values(sweep, combo), **res} for combo, res in
                zip(itertools.product(*(a.values for a in sweep.axes)), results)]
    return SweepResult(sweep, rows_out, wall)


def _axis_values(sweep: Sweep, combo: tuple) -> dict[str, Any]:
    return {axis.name: value for axis, value in zip(sweep.axes, combo)}


# --- outputs ---------------------------------------------------------------------------------------


def write_sweep(result: SweepResult, out: Path | str) -> list[str]:
    """sweep.csv (one row per cell: the axes, then the measures; empty where a measure is none)
    and sweep.json (axes, measures, seed, steps, wall_time, the cells)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sweep = result.sweep
    columns = [a.name for a in sweep.axes] + list(sweep.measures) + list(result.extra.get("columns", ()))
    with open_output(out / "sweep.csv", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in result.rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
    meta = {
        "script": sweep.script.path, "lane": sweep.lane.name, "problem": sweep.script.problem.label,
        "kind": sweep.script.problem.kind, "seed": sweep.script.seed, "steps": sweep.steps,
        "burn_in": sweep.burn_in, "axes": [a.to_json() for a in sweep.axes], "shape": list(sweep.shape),
        "measures": list(sweep.measures), "cells": len(result.rows), "wall_time": result.wall_time,
        "backend": result.backend, **{k: v for k, v in result.extra.items() if k != "columns"},
        "files": ["sweep.csv", "sweep.json"],
    }
    write_output_text(out / "sweep.json", json.dumps(meta, indent=2, allow_nan=False) + "\n")
    return ["sweep.csv", "sweep.json"]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def grid_array(result: SweepResult, measure: str) -> np.ndarray:
    """The measure over the grid, shaped like the axes (NaN where it is none)."""
    values = [row.get(measure) for row in result.rows]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64).reshape(result.sweep.shape)
