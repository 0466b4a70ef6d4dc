"""The phase diagram (key P): a sweep of the selected lane over one or two of its settings, drawn
as a heatmap of a measure with theory overlays; enter opens the cell under the cursor as a new
live lane (an AddLane command, so it is recorded like any other).

The sweep is ``engine/sweep.py``'s, run in a thread (a Textual worker); progress and results come
back through ``call_from_thread``, so no widget is touched from the thread and no frame waits for
it. The lane's settings come from the session as a query.
"""

from __future__ import annotations

import asyncio
import math
import tomllib
from typing import Any, Callable

import numpy as np
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, ProgressBar, Static

from sgdtui.engine.commands import AddLane
from sgdtui.engine.lane import unique_name
from sgdtui.engine.script import dump_script, load_script
from sgdtui.engine.surface_race import LaneSettings
from sgdtui.engine.sweep import SweepError, build_sweep, cell_config, grid_array, run_surface_sweep
from sgdtui.engine.theory import HEAVY_BALL, curvature, heavy_ball_edge, heavy_ball_rate, stationary_excess_loss
from sgdtui.ui.screens import Modal
from sgdtui.ui.widgets.heatmap import Heatmap, HeatmapData

MEASURES = ("final_loss", "best_loss", "stationary_loss", "steps_to_min", "diverged_at")
THEORY_RATE = "rate (theory)"
DEFAULT_COUNT = 24
DEFAULT_STEPS = 300
ASK_TIMEOUT = 5.0
_LAST: dict[tuple, tuple] = {}  # the last result per (problem, lane): reopening shows it at once


async def open_phase_screen(app) -> None:
    """Ask the session for the selected lane's settings, then show the phase-diagram screen."""
    if app.mode != "surface":
        app.notify("phase diagrams are for surface mode (sgdtui sweep runs MLP grids)", severity="warning")
        return
    if app.selected is None:
        app.notify("no lane selected: press a to add one", severity="warning")
        return
    try:
        settings = await asyncio.wait_for(asyncio.wrap_future(app.worker.ask(LaneSettings(app.selected))), ASK_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - shown, never fatal
        reason = "the session did not answer in time" if isinstance(exc, TimeoutError) else exc
        app.notify(f"phase diagram: {reason}", severity="error")
        return
    names = app.worker.latest.snapshot.lane_names()
    app.push_screen(PhaseScreen(settings, app.factory.registry, app.submit, names))


def default_axes(lane: dict[str, Any]) -> tuple[str, str]:
    """lr around the lane's on a log scale; the lane's decay (momentum, β1, ...) when it has one."""
    lr = float(lane["lr"])
    x = f"lr={max(lr / 30, 1e-9):.3g}:{min(lr * 30, 1e6):.3g}:log:{DEFAULT_COUNT}"
    from sgdtui.engine.optimizers import get_optimizer

    spec = get_optimizer(lane["optimizer"])
    decay = spec.decay_param
    y = ""
    if decay in ("momentum", "beta"):
        y = f"{decay}=0:0.99:{DEFAULT_COUNT}"
    elif decay == "betas":
        y = f"beta1=0:0.99:{DEFAULT_COUNT}"
    elif decay == "alpha":
        y = f"alpha=0.5:0.999:{DEFAULT_COUNT}"
    elif decay == "n_g":
        y = f"n_g=1:100:log:{DEFAULT_COUNT}"
    if y and lane["optimizer"] == "nesterov":
        y = f"momentum=0.01:0.99:{DEFAULT_COUNT}"
    return x, y


class PhaseScreen(Modal[None]):
    BINDINGS = [
        Binding("escape", "dismiss", "Close"),
        Binding("m", "measure", "next measure"),
        Binding("ctrl+r", "run", "run the sweep"),
    ]
    DEFAULT_CSS = """
    PhaseScreen { align: center middle; }
    PhaseScreen > #phase { width: 100%; height: 100%; border: round $accent; padding: 0 1; }
    PhaseScreen Input { width: 1fr; }
    PhaseScreen #phase-steps { width: 14; }
    PhaseScreen #phase-inputs { height: 3; }
    PhaseScreen #phase-info { height: 2; }
    PhaseScreen ProgressBar { height: 1; }
    """

    def __init__(self, settings: dict[str, Any], registry, submit: Callable[[AddLane], Any], lane_names: list[str]):
        super().__init__()
        self.settings = settings
        self.registry = registry
        self.submit = submit
        self.lane_names = list(lane_names)
        self.measure = "final_loss"
        self.result = None
        self.curv = None
        self._run = 0  # the latest run: a result of an earlier one (still in its thread) is dropped
        self._key = (repr(settings["problem"]), repr(settings["lane"]), settings["seed"])

    def compose(self) -> ComposeResult:
        x, y = default_axes(self.settings["lane"])
        lane = self.settings["lane"]
        with Vertical(id="phase"):
            yield Static(f"phase diagram of lane {lane['name']} ({lane['optimizer']}) on "
                         f"{next(iter(self.settings['problem'].values()))}: axes as PARAM=LOW:HIGH[:log]:COUNT, "
                         "enter runs, arrows move, enter on a cell opens it as a lane, m measure, escape closes",
                         id="phase-title", markup=False)
            with Horizontal(id="phase-inputs"):
                yield Input(value=x, placeholder="x axis, e.g. lr=1e-4:1:log:32", id="phase-x")
                yield Input(value=y, placeholder="y axis (empty: a curve over x)", id="phase-y")
                yield Input(value=str(DEFAULT_STEPS), placeholder="steps", id="phase-steps")
            yield ProgressBar(total=1, show_eta=False, id="phase-progress")
            yield Heatmap(id="phase-map")
            yield Static("", id="phase-info", markup=False)

    def on_mount(self) -> None:
        last = _LAST.get(self._key)
        if last is not None:
            self.result, self.curv = last
            self._draw()
            self.query_one(Heatmap).focus()
        else:
            self.action_run()

    # --- running -------------------------------------------------------------------------------
    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run()

    def action_run(self) -> None:
        grid = [self.query_one("#phase-x", Input).value.strip(), self.query_one("#phase-y", Input).value.strip()]
        grid = [g for g in grid if g]
        steps_text = self.query_one("#phase-steps", Input).value.strip()
        if not steps_text.isdigit() or int(steps_text) < 1:
            self._info("steps must be a whole number >= 1")
            return
        steps = int(steps_text)
        try:
            sweep = self._build(grid, steps)
        except (SweepError, ValueError) as exc:
            self._info(str(exc).splitlines()[0])
            return
        bar = self.query_one(ProgressBar)
        bar.update(total=sweep.steps, progress=0)
        self._info(f"sweeping {len(sweep.cells)} cells x {sweep.steps} steps ...")
        self._run += 1
        run = self._run
        self.run_worker(lambda: self._work(sweep, run), thread=True, exit_on_error=False, group="phase")

    def _build(self, grid: list[str], steps: int):
        text = dump_script({"version": 1, "seed": self.settings["seed"], "steps": steps,
                            "problem": self.settings["problem"], "lanes": [self.settings["lane"]]})
        script = load_script(tomllib.loads(text), registry=self.registry, text=text)
        return build_sweep(script, self.settings["lane"]["name"], grid, steps=steps, burn_in=steps // 2)

    def _work(self, sweep, run: int) -> None:
        """In the worker thread: the sweep and the curvature; results go back to the UI thread."""
        app = self.app
        try:
            result = run_surface_sweep(sweep, progress=lambda done, total: app.call_from_thread(self._progress, done, run))
            surface = sweep.script.problem.surface
            start = tuple(sweep.lane.starts[0]) if sweep.lane.starts else tuple(surface.starts[0])
            curv = curvature(surface, start)
        except Exception as exc:  # noqa: BLE001 - shown in the screen, never fatal
            app.call_from_thread(self._info, f"sweep failed: {type(exc).__name__}: {exc}")
            return
        app.call_from_thread(self._done, result, curv, run)

    def _progress(self, done: int, run: int) -> None:
        if run == self._run and self.is_mounted:
            self.query_one(ProgressBar).update(progress=done)

    def _done(self, result, curv, run: int) -> None:
        if run != self._run or not self.is_mounted:
            return
        self.result, self.curv = result, curv
        _LAST[self._key] = (result, curv)
        self.query_one(ProgressBar).update(progress=result.sweep.steps)
        self._draw()
        self.query_one(Heatmap).focus()

    # --- drawing ---------------------------------------------------------------------------------
    def measures(self) -> tuple[str, ...]:
        extra = (THEORY_RATE,) if self._rate_theory() else ()
        return MEASURES + extra

    def action_measure(self) -> None:
        options = self.measures()
        self.measure = options[(options.index(self.measure) + 1) % len(options)] if self.measure in options else options[0]
        self._draw()

    def _axes(self):
        axes = self.result.sweep.axes
        return axes[0], (axes[1] if len(axes) > 1 else None)

    def _rate_theory(self) -> bool:
        if self.result is None or self.curv is None or not self.curv.quadratic:
            return False
        x, y = self._axes()
        return self.result.sweep.lane.optimizer in HEAVY_BALL and x.name == "lr" and (y is None or y.name == "momentum")

    def _draw(self) -> None:
        result = self.result
        if result is None:
            return
        x, y = self._axes()
        shape = result.sweep.shape
        diverged = ~np.isnan(grid_array(result, "diverged_at"))
        if self.measure == THEORY_RATE:
            values = self._rate_grid()
        else:
            values = grid_array(result, self.measure)
        if y is None:
            values, diverged = values.reshape(1, -1), diverged.reshape(1, -1)
        else:
            values, diverged = values.T, diverged.T  # rows follow the y axis
        data = HeatmapData(
            values=values, diverged=diverged, x_label=x.text, x_values=x.values,
            y_label=y.text if y is not None else "", y_values=y.values if y is not None else (),
            measure=self.measure, log_colour=self.measure in ("final_loss", "best_loss", "stationary_loss"),
        )
        self._overlay(data, shape)
        self.query_one(Heatmap).show(data)
        cx, cy = self.query_one(Heatmap).cursor
        self._describe(cx, cy)

    def _rate_grid(self) -> np.ndarray:
        x, y = self._axes()
        mu0 = float(self.result.sweep.lane.hyper.get("momentum", 0.0))
        eig = self.curv.eigenvalues
        mus = y.values if y is not None else (mu0,)
        grid = np.array([[heavy_ball_rate(lr, mu, eig) for mu in mus] for lr in x.values])
        return grid if y is not None else grid[:, 0]

    def _overlay(self, data: HeatmapData, shape) -> None:
        """GD's 2/λmax (or heavy ball's 2(1+μ)/λmax per row) where the x axis is lr; on a quadratic
        with gradient noise, the stationary loss theory for a one-axis sweep."""
        curv, result = self.curv, self.result
        x, y = self._axes()
        if curv is None or x.name != "lr" or curv.gd_edge is None:
            data.legend = "no theory overlay for this axis" if curv is not None else ""
            return
        lane = result.sweep.lane
        heavy = lane.optimizer in HEAVY_BALL
        lrs = np.asarray(x.values, dtype=float)
        ny = data.values.shape[0]
        theory = np.zeros_like(data.values, dtype=bool)
        for iy in range(ny):
            mu = float(y.values[iy]) if (y is not None and y.name == "momentum") else float(lane.hyper.get("momentum", 0.0))
            edge = heavy_ball_edge(mu, curv.lambda_max) if heavy else curv.gd_edge
            ix = int(np.searchsorted(lrs, edge))
            if 0 <= ix < len(lrs):
                theory[iy, ix] = True
        data.theory = theory
        exact = "exact: a quadratic" if curv.quadratic else f"the local edge at {curv.where}"
        rule = "heavy ball converges for lr < 2(1+μ)/λmax" if heavy else "GD is stable for lr < 2/λmax"
        data.legend = f"theory ({exact}): {rule}; λ = {', '.join(f'{e:.4g}' for e in curv.eigenvalues)}, " \
                      f"2/λmax = {curv.gd_edge:.4g}"
        if y is None and heavy and curv.quadratic and lane.noise > 0 and self.measure == "stationary_loss":
            mu = float(lane.hyper.get("momentum", 0.0))
            floor = self.result.sweep.script.problem.surface.min_value or 0.0
            data.theory_curve = np.array([floor + stationary_excess_loss(lr, mu, curv.eigenvalues, lane.noise, lane.batch)
                                          for lr in lrs])
            data.legend += f"; · stationary loss, slope E‖ĝ-g‖²/4 = {lane.noise ** 2 / lane.batch / 2:.3g} at small lr"

    # --- the cursor ------------------------------------------------------------------------------
    def on_heatmap_moved(self, message: Heatmap.Moved) -> None:
        self._describe(message.ix, message.iy)

    def _cell_index(self, ix: int, iy: int) -> int:
        shape = self.result.sweep.shape
        return ix * shape[1] + iy if len(shape) > 1 else ix

    def _describe(self, ix: int, iy: int) -> None:
        if self.result is None:
            return
        row = self.result.rows[self._cell_index(ix, iy)]
        x, y = self._axes()
        where = ", ".join(f"{a.name}={_short(row[a.name])}" for a in (x, y) if a is not None)
        figures = ", ".join(f"{m} {_short(row.get(m))}" for m in MEASURES)
        self._info(f"{where}: {figures}   (enter opens it as a lane; sweep took {self.result.wall_time:.2f} s)")

    def on_heatmap_chosen(self, message: Heatmap.Chosen) -> None:
        if self.result is None:
            return
        index = self._cell_index(message.ix, message.iy)
        sweep = self.result.sweep
        cfg = cell_config(sweep.lane, sweep.cells[index])
        name = unique_name(f"{sweep.lane.name}.{message.ix}.{message.iy}"[:40], self.lane_names)
        self.lane_names.append(name)
        table = {**cfg.to_table(), "name": name}
        self.submit(AddLane(table))
        self.app.notify(f"lane {name} added: {', '.join(f'{a.name}={_short(sweep.cells[index].get(a.name, cfg.optimizer))}' for a in sweep.axes)}")
        self.dismiss(None)

    def _info(self, text: str) -> None:
        self.query_one("#phase-info", Static).update(text)


def _short(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else str(v)
    return str(v)
