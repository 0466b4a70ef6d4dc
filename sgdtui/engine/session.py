"""Sessions: the one object both the TUI and headless replays drive.

A Session's state is a pure function of (script header, seed, [(step, command), ...]): every
applied command is logged with the session clock (steps taken since the session began; resets
do not rewind it), and ``to_script()`` writes header + log back as a script that replays to
identical numbers. The Session alone advances time: ``advance(n)`` steps and applies a script's
pending events as their steps come, for the TUI's worker and for ``run`` alike.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from sgdtui.engine.commands import (
    AddLane,
    Caption,
    Command,
    CommandError,
    MoveStarts,
    Nudge,
    Query,
    RemoveLane,
    Reset,
    RestoreLane,
    ScriptText,
    SetLane,
    Step,
    SwitchProblem,
    Trajectories,
)
from sgdtui.engine.lane import LaneConfig, check_points, restore_settings, unique_name
from sgdtui.engine.params import SettingError
from sgdtui.engine.problem import Problem, problem_from_table
from sgdtui.engine.script import Script, command_to_event, dump_script, load_script
from sgdtui.engine.snapshot import Snapshot
from sgdtui.engine.steering import nudged_settings
from sgdtui.engine.surfaces import SurfaceRegistry

RUN_CHUNK = 1000  # steps between progress reports in run()


def merged_table(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``current`` with ``changes`` merged in, sub-tables key by key; a None value removes a key."""
    out = dict(current)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged_table(out[key], value)
        elif value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


class Session:
    """Lanes racing on a problem, driven by commands. ``problem`` is a Problem or a [problem]
    table; ``events`` are a script's (step, command) pairs still to apply."""

    def __init__(
        self,
        problem: Problem | dict[str, Any],
        lanes: list[LaneConfig] = (),
        *,
        seed: int = 0,
        steps: int | None = None,
        registry: SurfaceRegistry | None = None,
        history_capacity: int | None = 4096,
        events: list[tuple[int, Command]] = (),
    ):
        self.registry = registry
        if not isinstance(problem, Problem):
            problem = problem_from_table(problem, self._registry())
        self.problem = problem
        self.initial_problem = problem.to_table()
        self.problems_visited = [problem.label]
        self.seed = seed
        self.steps = steps
        self.initial_lanes = [cfg.to_table() for cfg in lanes]
        self.lane_origins = {cfg.name: cfg for cfg in lanes}  # each lane's settings when it was added
        self.race = problem.make_race(list(lanes), seed, history_capacity)
        self.clock = 0
        self.log: list[tuple[int, Command]] = []
        self.pending: list[tuple[int, Command]] = sorted(events, key=lambda e: e[0])
        self.version = 0
        self.caption: tuple[int, str] | None = None  # the latest caption reached, with its step
        self.captions: list[tuple[int, str]] = []  # every caption reached, in order
        self.pause_requested = False  # a caption asked to pause here; the runner clears it

    @classmethod
    def from_script(cls, source: str | Path | Script, *, registry: SurfaceRegistry | None = None,
                    history_capacity: int | None = None) -> "Session":
        """A session from a script path or a parsed Script, its events pending."""
        script = source if isinstance(source, Script) else load_script(source, registry=registry)
        return cls(script.problem, script.lanes, seed=script.seed, steps=script.steps, registry=script.registry,
                   history_capacity=history_capacity, events=script.events)

    @property
    def kind(self) -> str:
        return self.problem.kind

    def _registry(self) -> SurfaceRegistry:
        if self.registry is None:
            self.registry = SurfaceRegistry()
        return self.registry

    # --- commands --------------------------------------------------------------------------
    def apply(self, command: Command) -> Command | None:
        """Apply a command at the current step boundary and log it; returns the command as
        logged (a Nudge as the SetLane it resolved to, an added lane with its name). Invalid ->
        CommandError, nothing changed."""
        if isinstance(command, Step):
            self.advance(command.n)
            return command
        try:
            logged = self._apply(command)
        except CommandError:
            raise
        except (SettingError, ValueError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise CommandError(str(message)) from None
        self.log.append((self.clock, logged))
        self.version += 1
        return logged

    def _apply(self, cmd: Command) -> Command:
        race = self.race
        if isinstance(cmd, Nudge):
            cmd = SetLane(cmd.lane, nudged_settings(race.lane(cmd.lane).config, cmd))
        if isinstance(cmd, RestoreLane):
            current = race.lane(cmd.lane).config.to_table()  # an unknown lane says so
            restored = LaneConfig.from_table({**self.lane_origins[cmd.lane].to_table(), "name": cmd.lane}).to_table()
            keys = [k for k in restore_settings(self.lane_origins[cmd.lane]) if current.get(k) != restored.get(k)
                    or (k in restored) != (k in current)]
            if not keys:
                raise CommandError(f"lane {cmd.lane!r} has its starting settings already")
            settings = restore_settings(self.lane_origins[cmd.lane])
            cmd = SetLane(cmd.lane, {k: settings[k] for k in keys})
        if isinstance(cmd, SetLane):
            race.set_lane(cmd.lane, race.lane(cmd.lane).config.with_settings(dict(cmd.settings)))
            return cmd
        if isinstance(cmd, AddLane):
            table = self.problem.prepare_lane(dict(cmd.lane))
            name = table.get("name") or race.unique_name(str(table.get("optimizer")))
            config = LaneConfig.from_table(table, name)
            race.add_lane(config)
            self.lane_origins[name] = config
            return AddLane({"name": name, **table})  # logged with the name it got and the defaults it took
        if isinstance(cmd, RemoveLane):
            race.remove_lane(cmd.lane)
            return cmd
        if isinstance(cmd, MoveStarts):
            starts = check_points(cmd.starts, "starts")
            race.move_starts(cmd.lane, starts)
            return MoveStarts(cmd.lane, starts)
        if isinstance(cmd, Reset):
            race.reset()
            return cmd
        if isinstance(cmd, SwitchProblem):
            return self._switch(cmd)
        if isinstance(cmd, Caption):
            if cmd.text:
                self.caption = (self.clock, cmd.text)
                self.captions.append(self.caption)
            self.pause_requested = self.pause_requested or cmd.pause
            return cmd
        raise CommandError(f"unknown command {cmd!r}")

    def _switch(self, cmd: SwitchProblem) -> SwitchProblem:
        """A problem switch applies to every lane or to none: the problem and any new lanes are
        built and checked before the race changes."""
        table = cmd.table
        if cmd.merge:
            table = merged_table(self.problem.to_table(), table)
        new = problem_from_table(table, self._registry())
        if new.kind != self.problem.kind:
            raise CommandError(f"a session cannot switch from a {self.problem.kind} problem to a {new.kind}"
                               " problem (start another session)")
        lanes = None
        if cmd.lanes is not None:
            tables = new.default_lanes() if cmd.lanes == "default" else list(cmd.lanes)
            if isinstance(tables, str) or not tables:
                raise CommandError(f"lanes must be 'default' or one or more lane tables, got {cmd.lanes!r}")
            lanes, names = [], []
            for table in tables:
                table = new.prepare_lane(dict(table))
                name = table.get("name") or unique_name(str(table.get("optimizer")), names)
                if name in names:
                    raise CommandError(f"duplicate lane name {name!r}")
                names.append(name)
                lanes.append((LaneConfig.from_table(table, name), {**table, "name": name}))
        race = self.race
        if lanes is None:
            race.set_problem(new)
        else:
            for name in race.lane_names():
                race.remove_lane(name)
            race.set_problem(new)
            for config, _ in lanes:
                race.add_lane(config)
                self.lane_origins[config.name] = config
        self.problem = new
        if new.label not in self.problems_visited:
            self.problems_visited.append(new.label)
        return SwitchProblem(new.to_table(), None if lanes is None else tuple(table for _, table in lanes))

    # --- time ------------------------------------------------------------------------------
    def _apply_due_events(self) -> None:
        while self.pending and self.pending[0][0] <= self.clock:
            _, command = self.pending.pop(0)
            self.apply(command)

    def advance(self, n: int = 1, *, chunk: int | None = None, progress: Callable[[int], None] | None = None) -> None:
        """Take ``n`` steps, applying each pending event once the clock reaches its step (events
        due now first, then after every step batch). ``progress(clock)`` after each batch."""
        end = self.clock + n
        self._apply_due_events()
        while self.clock < end:
            target = min(end, self.pending[0][0]) if self.pending else end
            size = max(1, target - self.clock)
            if chunk is not None:
                size = min(size, chunk)
            self.race.step(size)
            self.clock += size
            self.version += 1
            self._apply_due_events()
            if progress is not None:
                progress(self.clock)

    def next_pause(self) -> int | None:
        """The step of the next pending caption that pauses, if any."""
        for step, command in self.pending:
            if isinstance(command, Caption) and command.pause:
                return step
        return None

    def run(self, steps: int | None = None, progress: Callable[[int, int], None] | None = None) -> None:
        """Replay: step to ``steps`` (default: the script's), applying scripted events on time."""
        total = self.steps if steps is None else steps
        if total is None:
            raise ValueError("no step count: give steps in the script or as an argument")
        report = None if progress is None else (lambda clock: progress(clock, total))
        self.advance(max(0, total - self.clock), chunk=RUN_CHUNK, progress=report)
        self.race.flush()

    # --- read-outs -------------------------------------------------------------------------
    def query(self, query: Query) -> Any:
        """Answer a read-only request (the script so far, histories, or the problem's own)."""
        if isinstance(query, ScriptText):
            return self.to_toml()
        if isinstance(query, Trajectories):
            return self.trajectories()
        return self.race.answer(query)

    def snapshot(self, max_rows: int | None = 2000, *, selected: str | None = None, costly: bool = True,
                 live: bool = False) -> Snapshot:
        """An immutable Snapshot; costly read-outs only when ``costly`` (for ``selected``); ``live``:
        a frame of a running view (see ``Race.snapshot``)."""
        snapshot = self.race.snapshot(self.version, self.clock, selected=selected, max_rows=max_rows, costly=costly,
                                      live=live)
        return replace(snapshot, caption=self.caption) if self.caption is not None else snapshot

    def trajectories(self) -> dict[str, dict[str, Any]]:
        return self.race.trajectories()

    # --- scripts -----------------------------------------------------------------------------
    def to_script(self) -> dict[str, Any]:
        """A script (as a dict ready for TOML) that replays this session to identical numbers."""
        script: dict[str, Any] = {"version": 1, "seed": self.seed, "steps": self.clock}
        script["problem"] = copy.deepcopy(self.initial_problem)
        script["lanes"] = copy.deepcopy(self.initial_lanes)
        events = [command_to_event(step, cmd) for step, cmd in self.log]
        if events:
            script["events"] = events
        return script

    def to_toml(self) -> str:
        return dump_script(self.to_script())
