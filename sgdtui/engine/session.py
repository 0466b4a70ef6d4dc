"""Sessions: the one object both the TUI and headless replays drive.

A Session's state is a pure function of (script header, seed, [(step, command), ...]): every
applied command is logged with the session clock (steps taken since the session began; resets
do not rewind it), and ``to_script()`` writes header + log back as a script that replays to
identical numbers.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from sgdtui.engine.race import HessianInfo, Lane, LaneConfig, LaneReadout, Race, hessian_info
from sgdtui.engine.surfaces import (
    DEFAULT_SURFACE,
    Surface,
    SurfaceRegistry,
    surface_from_expr,
)

LANE_FIELDS = ("batch", "schedule", "coupling", "noise")


class CommandError(ValueError):
    """A command that cannot be applied (unknown lane, bad value); the session is unchanged."""


# --- commands ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SetLane:
    """Change a lane's hyperparameters and/or batch, schedule, coupling, noise.

    ``settings`` uses the script's keys: any hyperparameter by name, ``batch``, ``coupling``,
    ``noise`` and ``schedule`` (a name or {name = ..., param = ...}).
    """

    lane: str
    settings: dict[str, Any]


@dataclass(frozen=True)
class AddLane:
    """Add a lane; ``lane`` is a script lane table ({optimizer = ..., lr = ..., ...})."""

    lane: dict[str, Any]


@dataclass(frozen=True)
class RemoveLane:
    lane: str


@dataclass(frozen=True)
class MoveStarts:
    """Move a lane's start points (the lane restarts from them)."""

    lane: str
    starts: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Reset:
    """Every lane back to its start points, optimizer state cleared."""


@dataclass(frozen=True)
class SwitchSurface:
    """Switch to a named surface or an expression; every lane restarts on it."""

    surface: str | None = None
    expr: str | None = None
    xlim: tuple[float, float] | None = None
    ylim: tuple[float, float] | None = None


@dataclass(frozen=True)
class Step:
    """Take n steps (not logged: the log records the clock at which each change happened)."""

    n: int = 1


Command = Union[SetLane, AddLane, RemoveLane, MoveStarts, Reset, SwitchSurface, Step]


def lane_config_from_table(table: dict[str, Any], name: str) -> LaneConfig:
    """A LaneConfig from a script lane table (already checked by the script validator)."""
    settings = {k: v for k, v in table.items() if k not in ("name", "optimizer", "start", "starts")}
    schedule = settings.pop("schedule", None)
    if schedule is not None:
        sched_name, sched_params = split_schedule(schedule)
        settings["schedule"] = sched_name
        settings["schedule_params"] = sched_params
    if "start" in table:
        settings["starts"] = (tuple(float(v) for v in table["start"]),)
    elif "starts" in table:
        settings["starts"] = tuple(tuple(float(v) for v in p) for p in table["starts"])
    for key in ("betas",):
        if key in settings and isinstance(settings[key], list):
            settings[key] = tuple(settings[key])
    return LaneConfig.create(name, table["optimizer"], **settings)


def split_schedule(schedule: Any) -> tuple[str, dict[str, Any]]:
    """A schedule given as a name or as {name = ..., param = ...} -> (name, params)."""
    if isinstance(schedule, str):
        return schedule, {}
    if not isinstance(schedule, dict) or not isinstance(schedule.get("name"), str):
        raise CommandError(f"schedule must be a name or {{name = ..., ...}}, got {schedule!r}")
    params = dict(schedule)
    return params.pop("name"), params


def lane_table(config: LaneConfig) -> dict[str, Any]:
    """The script lane table that recreates ``config``."""
    spec = config.spec
    table: dict[str, Any] = {"name": config.name, "optimizer": config.optimizer}
    if config.starts is not None:
        if len(config.starts) == 1:
            table["start"] = list(config.starts[0])
        else:
            table["starts"] = [list(p) for p in config.starts]
    for hp in spec.hyper:
        value = config.hyper[hp.name]
        if hp.name == "lr" or value != hp.default:
            table[hp.name] = list(value) if isinstance(value, tuple) else value
    table["batch"] = config.batch
    if config.schedule != "constant":
        table["schedule"] = {"name": config.schedule, **config.schedule_params}
    table["coupling"] = config.coupling
    table["noise"] = config.noise
    return table


# --- snapshots --------------------------------------------------------------------------


@dataclass(frozen=True)
class LaneSnapshot(LaneReadout):
    noise: float
    steps: np.ndarray  # (T,) step index of each history row
    positions: np.ndarray  # (T, N, 2)
    losses: np.ndarray  # (T, N)
    lrs: np.ndarray  # (T,)
    current: np.ndarray  # (N, 2)
    loss: np.ndarray  # (N,)
    grad_norm: np.ndarray  # (N,)
    alive: np.ndarray  # (N,) bool
    diverged_at: tuple[int | None, ...]
    status: str
    hessian: HessianInfo | None


@dataclass(frozen=True)
class Snapshot:
    """An immutable picture of the session that a UI can render from another thread."""

    version: int
    clock: int
    surface: Surface
    lanes: tuple[LaneSnapshot, ...]

    def lane(self, name: str) -> LaneSnapshot:
        for lane in self.lanes:
            if lane.name == name:
                return lane
        raise KeyError(name)


# --- the session ------------------------------------------------------------------------


class Session:
    def __init__(
        self,
        surface,  # a Surface, or an MLPProblem for MLP mode
        lanes: list[LaneConfig] = (),
        *,
        seed: int = 0,
        steps: int | None = None,
        registry: SurfaceRegistry | None = None,
        problem: dict[str, Any] | None = None,
        history_capacity: int | None = 4096,
    ):
        self.registry = registry
        self.seed = seed
        self.steps = steps
        self.initial_lanes = [lane_table(cfg) for cfg in lanes]
        if isinstance(surface, Surface):
            self.mode = "surface"
            self.problem = problem if problem is not None else {"surface": surface.name}
            self.race = Race(surface, list(lanes), seed=seed, history_capacity=history_capacity)
        else:
            from sgdtui.mlp.race import MLPRace

            self.mode = "mlp"
            self.problem = problem if problem is not None else {"mlp": surface.to_table(), "device": surface.device}
            self.race = MLPRace(surface, list(lanes), seed=seed, history_capacity=history_capacity)
        self.clock = 0
        self.log: list[tuple[int, Command]] = []
        self.pending: list[tuple[int, Command]] = []  # scripted events not yet applied
        self.version = 0

    # --- construction --------------------------------------------------------------------
    @classmethod
    def from_script(cls, source, *, registry: SurfaceRegistry | None = None,
                    history_capacity: int | None = None) -> "Session":
        """A session from a script path, TOML text (``Script``) or parsed Script."""
        from sgdtui.engine.script import Script, load_script

        script = source if isinstance(source, Script) else load_script(source, registry=registry)
        session = cls(
            script.surface, script.lanes, seed=script.seed, steps=script.steps,
            registry=script.registry, problem=script.problem, history_capacity=history_capacity,
        )
        session.pending = list(script.events)
        return session

    @property
    def surface(self) -> Surface | None:
        """The surface being raced (None in MLP mode)."""
        return self.race.surface

    # --- driving -------------------------------------------------------------------------
    def apply(self, command: Command) -> None:
        """Apply a command at the current step boundary and log it. Invalid -> CommandError,
        nothing changed."""
        if isinstance(command, Step):
            self.step(command.n)
            return
        try:
            command = self._apply(command)
        except (ValueError, KeyError) as exc:
            msg = exc.args[0] if exc.args else str(exc)
            raise CommandError(str(msg)) from None
        self.log.append((self.clock, command))
        self.version += 1

    def _apply(self, cmd: Command) -> Command:
        """Apply ``cmd``; returns the command as it is logged (an added lane with its resolved name)."""
        race = self.race
        if isinstance(cmd, SetLane):
            lane = race.lane(cmd.lane)
            self._set_lane(lane, cmd.settings)
        elif isinstance(cmd, AddLane):
            table = dict(cmd.lane)
            name = table.get("name") or race.unique_name(table["optimizer"])
            race.add_lane(lane_config_from_table(table, name))
            if "name" not in table:  # log the name it got, so the exported script says which lane it is
                cmd = AddLane({"name": name, **table})
        elif isinstance(cmd, RemoveLane):
            race.remove_lane(cmd.lane)
        elif isinstance(cmd, MoveStarts):
            if self.mode == "mlp":
                raise CommandError("MLP lanes have no start points (all lanes start from the same initial weights)")
            lane = race.lane(cmd.lane)
            lane.config = lane.config.with_changes(starts=tuple(tuple(map(float, p)) for p in cmd.starts))
            lane.reset()
        elif isinstance(cmd, Reset):
            race.reset()
        elif isinstance(cmd, SwitchSurface):
            race.set_surface(self.resolve_surface(cmd))
        else:
            raise CommandError(f"unknown command {cmd!r}")
        return cmd

    def _set_lane(self, lane: Lane, settings: dict[str, Any]) -> None:
        # Validate everything on a copy first so a bad value changes nothing.
        spec = lane.spec
        hyper = {k: (tuple(v) if isinstance(v, list) else v) for k, v in settings.items() if k not in LANE_FIELDS}
        spec.validate({**lane.config.hyper, **hyper})
        changes: dict[str, Any] = {}
        for key in LANE_FIELDS:
            if key in settings:
                if key == "schedule":
                    name, params = split_schedule(settings[key])
                    changes["schedule"], changes["schedule_params"] = name, params
                else:
                    changes[key] = settings[key]
        if changes:
            lane.config.with_changes(**changes)  # raises before anything is touched
            lane.set_config(**changes)
        for key, value in hyper.items():
            lane.set_hyper(key, value)

    def resolve_surface(self, cmd: SwitchSurface) -> Surface:
        if cmd.expr is not None:
            return surface_from_expr(cmd.expr, xlim=cmd.xlim, ylim=cmd.ylim)
        if self.registry is None:
            self.registry = SurfaceRegistry()
        return self.registry.get(cmd.surface or DEFAULT_SURFACE)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.race.step()
            self.clock += 1
        self.version += 1

    def run(self, steps: int | None = None, progress=None) -> None:
        """Replay: step to ``steps`` (default: the script's), applying scripted events on time."""
        total = self.steps if steps is None else steps
        if total is None:
            raise ValueError("no step count: give steps in the script or as an argument")
        pending = sorted(self.pending, key=lambda e: e[0])
        i = 0
        while True:
            while i < len(pending) and pending[i][0] <= self.clock:
                self.apply(pending[i][1])
                i += 1
            if self.clock >= total:
                break
            # Step in one go up to the next event (or the end).
            target = min(total, pending[i][0]) if i < len(pending) else total
            chunk = max(1, min(target - self.clock, 1000))
            self.step(chunk)
            if progress is not None:
                progress(self.clock, total)
        self.pending = pending[i:]
        self.race.flush()

    # --- read-outs -----------------------------------------------------------------------
    def snapshot(self, max_rows: int | None = 2000, hessian: bool = True, *, selected: str | None = None,
                 gradient_noise: bool = True):
        """An immutable Snapshot (surface mode; the Hessian read-out only for the ``selected`` lane
        when one is named) or MLPSnapshot (MLP mode, with the prediction grid of the ``selected``
        lane)."""
        if self.mode == "mlp":
            from sgdtui.mlp.race import mlp_snapshot

            return mlp_snapshot(self.race, self.version, self.clock, selected=selected, max_rows=max_rows,
                                gradient_noise=gradient_noise)
        lanes = []
        for lane in self.race.lanes:
            lane.flush()
            cfg = lane.config
            hist = lane.history.snapshot(max_rows)
            alive = lane.alive.numpy().copy()
            info = None
            # The Hessian costs a double backward: only for the selected lane when one is named.
            if hessian and alive.any() and (selected is None or selected == cfg.name):
                try:
                    info = hessian_info(self.surface, lane.positions[int(np.argmax(alive))])
                except RuntimeError:
                    info = None
            lanes.append(LaneSnapshot(
                **lane.readout(), noise=cfg.noise, steps=hist["step"], positions=hist["pos"],
                losses=hist["loss"], lrs=hist["lr"], current=lane.positions, loss=lane.loss,
                grad_norm=lane.grad_norm, alive=alive,
                diverged_at=tuple(None if d < 0 else int(d) for d in lane.diverged_at),
                status=lane.status(), hessian=info,
            ))
        return Snapshot(version=self.version, clock=self.clock, surface=self.surface, lanes=tuple(lanes))

    def trajectories(self) -> dict[str, dict[str, np.ndarray]]:
        """Per lane: 'step' (T,), 'pos' (T, N, 2), 'loss' (T, N), 'gnorm' (T, N), 'lr' (T,).
        In MLP mode: 'step', 'train_loss', 'lr' per step."""
        self.race.flush()
        return {lane.config.name: lane.history.snapshot() for lane in self.race.lanes}

    def evaluations(self) -> dict[str, dict[str, np.ndarray]]:
        """MLP mode: per lane 'step', 'val_loss', 'val_acc', 'weight_norm', 'norm_sq' every eval_every steps."""
        if self.mode != "mlp":
            raise ValueError("evaluations exist in MLP mode only")
        self.race.flush()
        return {lane.config.name: lane.evals.snapshot() for lane in self.race.lanes}

    # --- scripts -------------------------------------------------------------------------
    def to_script(self) -> dict[str, Any]:
        """A script (as a dict ready for TOML) that replays this session to identical numbers."""
        from sgdtui.engine.script import command_to_event

        script: dict[str, Any] = {"version": 1, "seed": self.seed, "steps": self.clock}
        script["problem"] = copy.deepcopy(self.problem)
        script["lanes"] = copy.deepcopy(self.initial_lanes)
        events = [command_to_event(step, cmd) for step, cmd in self.log]
        if events:
            script["events"] = events
        return script

    def to_toml(self) -> str:
        from sgdtui.engine.script import dump_script

        return dump_script(self.to_script())
