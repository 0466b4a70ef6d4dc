"""Scripts (TOML, version 1): read, validate, write.

A script is a user-facing contract (documented in the README). Every error names the file, the
line where it can be found, and the key, with the valid choices where there are some::

    race.toml:12: lanes[1].optimizer: unknown optimizer 'adma'; did you mean 'adam'? (choose from ...)
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from sgdtui.engine.checks import did_you_mean, is_number
from sgdtui.engine.optimizers import OPTIMIZERS, OptimizerConfigError, get_optimizer
from sgdtui.engine.race import LaneConfig, unique_name
from sgdtui.engine.schedules import COUPLINGS, SCHEDULES, make_schedule
from sgdtui.engine.session import (
    AddLane,
    Command,
    MoveStarts,
    RemoveLane,
    Reset,
    SetLane,
    SwitchSurface,
    lane_config_from_table,
)
from sgdtui.engine.surfaces import (
    DEFAULT_SURFACE,
    Surface,
    SurfaceError,
    SurfaceRegistry,
    surface_from_expr,
)

VERSION = 1
TOP_KEYS = ("version", "seed", "steps", "problem", "lanes", "events")
PROBLEM_KEYS = ("surface", "expr", "xlim", "ylim", "mlp", "device")
LANE_KEYS = ("name", "optimizer", "start", "starts", "batch", "schedule", "coupling", "noise")
EVENT_ACTIONS = ("set", "add", "remove", "starts", "reset", "surface", "expr")
MAX_STEPS = 100_000_000


class ScriptError(ValueError):
    """An invalid script. The message is one line: file:line: key: what is wrong."""


@dataclass
class Script:
    seed: int
    steps: int | None
    problem: dict[str, Any]
    surface: Surface
    lanes: list[LaneConfig]
    events: list[tuple[int, Command]]
    registry: SurfaceRegistry | None = None
    path: str = "<script>"
    raw: dict[str, Any] = field(default_factory=dict)


class _Locator:
    """Finds the line of a key inside a given table of the TOML text (tomllib gives no positions)."""

    HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-]+)\s*\]\]?")
    KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+|\"[^\"]*\")\s*=")

    def __init__(self, text: str):
        self.tables: list[tuple[str, int, int]] = []  # (table name, array index, line)
        self.keys: list[tuple[str, int, str, int]] = []  # (table, index, key, line)
        counts: dict[str, int] = {}
        table, index = "", 0
        for lineno, line in enumerate(text.splitlines(), start=1):
            m = self.HEADER.match(line)
            if m:
                table = m.group(2)
                if m.group(1) == "[[":
                    counts[table] = counts.get(table, -1) + 1
                    index = counts[table]
                else:
                    index = 0
                self.tables.append((table, index, lineno))
                continue
            k = self.KEY.match(line)
            if k:
                self.keys.append((table, index, k.group(1).strip('"'), lineno))

    def line(self, table: str, index: int, key: str | None) -> int | None:
        if key is not None:
            for t, i, k, lineno in self.keys:
                if t == table and i == index and k == key:
                    return lineno
        for t, i, lineno in self.tables:
            if t == table and i == index:
                return lineno
        return None


class _Checker:
    def __init__(self, path: str, text: str):
        self.path = path
        self.loc = _Locator(text)

    def fail(self, table: str, index: int, key: str | None, keypath: str, message: str) -> ScriptError:
        line = self.loc.line(table, index, key)
        where = f"{self.path}:{line}" if line else self.path
        return ScriptError(f"{where}: {keypath}: {message}" if keypath else f"{where}: {message}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _unknown_key(chk: _Checker, table: str, index: int, key: str, prefix: str, valid) -> ScriptError:
    return chk.fail(table, index, key, f"{prefix}{key}",
                    f"unknown key{did_you_mean(key, valid)} (valid keys: {', '.join(valid)})")


def load_script(source: str | Path | dict, *, registry: SurfaceRegistry | None = None,
                text: str | None = None) -> Script:
    """Read and validate a script from a path (or a parsed dict with its ``text`` for line numbers)."""
    if isinstance(source, dict):
        path, data, text = "<script>", source, text or ""
    else:
        path = str(source)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"{path}: cannot read script ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise ScriptError(f"{path}: not a UTF-8 text file") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            line = f":{m.group(1)}" if m else ""
            raise ScriptError(f"{path}{line}: invalid TOML: {exc}") from None
    return validate_script(data, path=path, text=text, registry=registry)


def validate_script(data: dict, *, path: str, text: str, registry: SurfaceRegistry | None) -> Script:
    chk = _Checker(path, text)
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown_key(chk, "", 0, key, "", TOP_KEYS)
    if "version" not in data:
        raise chk.fail("", 0, None, "version", f"missing (this reader understands version = {VERSION})")
    if data["version"] != VERSION or not _is_int(data["version"]):
        raise chk.fail("", 0, "version", "version", f"unsupported version {data['version']!r} (expected {VERSION})")
    seed = data.get("seed", 0)
    if not _is_int(seed) or not 0 <= seed < 2 ** 63:
        raise chk.fail("", 0, "seed", "seed", f"must be a non-negative integer, got {seed!r}")
    steps = data.get("steps")
    if steps is not None and (not _is_int(steps) or not 0 <= steps <= MAX_STEPS):
        raise chk.fail("", 0, "steps", "steps", f"must be an integer in [0, {MAX_STEPS}], got {steps!r}")

    problem = data.get("problem", {"surface": DEFAULT_SURFACE})
    if not isinstance(problem, dict):
        raise chk.fail("", 0, "problem", "problem", "must be a table ([problem])")
    surface, registry = _check_problem(chk, problem, registry)

    lanes_raw = data.get("lanes")
    if lanes_raw is None:
        raise chk.fail("", 0, None, "lanes", "missing: a script needs at least one [[lanes]] table")
    if not isinstance(lanes_raw, list) or not lanes_raw or not all(isinstance(t, dict) for t in lanes_raw):
        raise chk.fail("", 0, "lanes", "lanes", "must be one or more [[lanes]] tables")
    lanes: list[LaneConfig] = []
    names: list[str] = []
    mlp = not isinstance(surface, Surface)
    for i, table in enumerate(lanes_raw):
        cfg = _check_lane(chk, "lanes", i, f"lanes[{i}].", table, names, mlp=mlp)
        lanes.append(cfg)
        names.append(cfg.name)

    events_raw = data.get("events", [])
    if not isinstance(events_raw, list) or not all(isinstance(t, dict) for t in events_raw):
        raise chk.fail("", 0, "events", "events", "must be [[events]] tables")
    events: list[tuple[int, Command]] = []
    live_names = list(names)
    optimizer_of = {cfg.name: cfg.optimizer for cfg in lanes}
    last_step = 0
    for i, ev in enumerate(events_raw):
        step, cmd = _check_event(chk, i, ev, live_names, optimizer_of, mlp=mlp)
        if step < last_step:
            raise chk.fail("events", i, "step", f"events[{i}].step",
                           f"{step} comes before the previous event's step {last_step}: list events in order")
        last_step = step
        events.append((step, cmd))
    return Script(seed=seed, steps=steps, problem=dict(problem), surface=surface, lanes=lanes,
                  events=events, registry=registry, path=path, raw=data)


def _check_problem(chk: _Checker, problem: dict, registry):
    for key in problem:
        if key not in PROBLEM_KEYS:
            raise _unknown_key(chk, "problem", 0, key, "problem.", PROBLEM_KEYS)
    if "mlp" in problem:
        from sgdtui.mlp.race import MLPProblem, MLPProblemError

        for other in ("surface", "expr", "xlim", "ylim"):
            if other in problem:
                raise chk.fail("problem", 0, other, f"problem.{other}", "an MLP problem has no surface: drop this key or 'mlp'")
        try:
            return MLPProblem.from_table(problem["mlp"], problem.get("device", "auto")), registry
        except MLPProblemError as exc:
            msg = str(exc)
            key = "device" if msg.startswith("device") else "mlp"
            raise chk.fail("problem", 0, key, f"problem.{msg.split(':', 1)[0]}", msg.split(": ", 1)[1]) from None
    if "device" in problem:
        raise chk.fail("problem", 0, "device", "problem.device", "'device' goes with an 'mlp' problem")
    if "surface" in problem and "expr" in problem:
        raise chk.fail("problem", 0, "expr", "problem", "give either 'surface' or 'expr', not both")
    lims = {}
    for key in ("xlim", "ylim"):
        if key in problem:
            v = problem[key]
            if not (isinstance(v, list) and len(v) == 2 and all(is_number(x) and math.isfinite(x) for x in v) and v[0] < v[1]):
                raise chk.fail("problem", 0, key, f"problem.{key}", f"must be [low, high] with low < high, got {v!r}")
            lims[key] = tuple(float(x) for x in v)
    if "expr" in problem:
        if not isinstance(problem["expr"], str):
            raise chk.fail("problem", 0, "expr", "problem.expr", "must be a string formula in x and y")
        try:
            return surface_from_expr(problem["expr"], **lims), registry
        except SurfaceError as exc:
            raise chk.fail("problem", 0, "expr", "problem.expr", str(exc)) from None
    if lims:
        raise chk.fail("problem", 0, "xlim" if "xlim" in lims else "ylim", "problem",
                       "xlim/ylim go with 'expr' (a named surface has its own view)")
    name = problem.get("surface", DEFAULT_SURFACE)
    if not isinstance(name, str):
        raise chk.fail("problem", 0, "surface", "problem.surface", f"must be a surface name, got {name!r}")
    if registry is None:
        registry = SurfaceRegistry()
    if name not in registry:
        raise chk.fail("problem", 0, "surface", "problem.surface",
                       f"unknown surface {name!r}{did_you_mean(name, registry.names())} (choose from {', '.join(registry.names())})")
    return registry.get(name), registry


def _check_lane(chk: _Checker, table_name: str, index: int, prefix: str, table: dict, taken: list[str],
                mlp: bool = False) -> LaneConfig:
    def fail(key, message, keypath=None):
        return chk.fail(table_name, index, key, keypath or f"{prefix}{key}", message)

    if mlp:
        for key in ("start", "starts"):
            if key in table:
                raise fail(key, "MLP lanes have no start points (all lanes start from the same initial weights)")
        if "batch" not in table:
            from sgdtui.mlp.race import DEFAULT_BATCH

            table = {**table, "batch": DEFAULT_BATCH}

    opt = table.get("optimizer")
    if opt is None:
        raise fail(None, f"missing key 'optimizer' (choose from {', '.join(OPTIMIZERS)})", prefix.rstrip("."))
    if not isinstance(opt, str) or opt not in OPTIMIZERS:
        raise fail("optimizer", f"unknown optimizer {opt!r}{did_you_mean(opt, OPTIMIZERS)} (choose from {', '.join(OPTIMIZERS)})")
    spec = get_optimizer(opt)
    valid = list(LANE_KEYS) + spec.param_names()
    for key in table:
        if key not in valid:
            raise _unknown_key(chk, table_name, index, key, prefix, valid)
    name = table.get("name")
    if name is None:
        name = unique_name(opt, taken)
    elif not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.+\-]{1,40}", name):
        raise fail("name", f"must be 1-40 letters, digits or _.+- characters, got {name!r}")
    elif name in taken:
        raise fail("name", f"duplicate lane name {name!r}")
    if "start" in table and "starts" in table:
        raise fail("starts", "give either 'start' or 'starts', not both")
    if "start" in table and not _is_point(table["start"]):
        raise fail("start", f"must be [x, y] (two finite numbers), got {table['start']!r}")
    if "starts" in table:
        pts = table["starts"]
        if not isinstance(pts, list) or not pts or not all(_is_point(p) for p in pts):
            raise fail("starts", f"must be a non-empty list of [x, y] points, got {pts!r}")
        if len(pts) > 100_000:
            raise fail("starts", "at most 100000 start points per lane")
    if "batch" in table and (not _is_int(table["batch"]) or not 1 <= table["batch"] <= 1_000_000):
        raise fail("batch", f"must be an integer in [1, 1000000], got {table['batch']!r}")
    if "coupling" in table and table["coupling"] not in COUPLINGS:
        c = table["coupling"]
        raise fail("coupling", f"unknown coupling {c!r}{did_you_mean(c, COUPLINGS)} (choose from {', '.join(COUPLINGS)})")
    if "noise" in table and (not is_number(table["noise"]) or not 0 <= table["noise"] <= 1e6):
        raise fail("noise", f"must be a number in [0, 1e6], got {table['noise']!r}")
    if "schedule" in table:
        _check_schedule(fail, table["schedule"])
    for hp in spec.hyper:
        if hp.name in table:
            try:
                hp.validate(table[hp.name])
            except OptimizerConfigError as exc:
                raise fail(hp.name, _without_key(exc, hp.name)) from None
    try:
        return lane_config_from_table(table, name)
    except ValueError as exc:
        raise fail(None, str(exc), prefix.rstrip(".")) from None


def _check_schedule(fail, schedule: Any) -> None:
    if isinstance(schedule, str):
        name, params = schedule, {}
    elif isinstance(schedule, dict):
        params = dict(schedule)
        name = params.pop("name", None)
        if name is None:
            raise fail("schedule", f"a schedule table needs a 'name' (choose from {', '.join(SCHEDULES)})")
    else:
        raise fail("schedule", f"must be a name or a table {{ name = ..., ... }}, got {schedule!r}")
    if name not in SCHEDULES:
        raise fail("schedule", f"unknown schedule {name!r}{did_you_mean(name, SCHEDULES)} (choose from {', '.join(SCHEDULES)})")
    try:
        make_schedule(name, **params)
    except ValueError as exc:
        raise fail("schedule", str(exc)) from None


def _without_key(exc: Exception, key: str) -> str:
    """'lr' = -2 is out of range ... -> -2 is out of range ... (the caller already names the key)."""
    return str(exc).replace(f"'{key}' = ", "", 1).replace(f"'{key}' ", "", 1)


def _is_point(p: Any) -> bool:
    return isinstance(p, list) and len(p) == 2 and all(is_number(v) and math.isfinite(v) for v in p)


def _check_event(chk: _Checker, i: int, ev: dict, names: list[str], optimizer_of: dict[str, str],
                 mlp: bool = False) -> tuple[int, Command]:
    prefix = f"events[{i}]."

    def fail(key, message, keypath=None):
        return chk.fail("events", i, key, keypath or f"{prefix}{key}", message)

    valid = ("step", "lane", "xlim", "ylim") + EVENT_ACTIONS
    for key in ev:
        if key not in valid:
            raise _unknown_key(chk, "events", i, key, prefix, valid)
    if "step" not in ev:
        raise fail(None, "missing key 'step' (the step at which the change takes effect)", f"events[{i}]")
    step = ev["step"]
    if not _is_int(step) or not 0 <= step <= MAX_STEPS:
        raise fail("step", f"must be an integer in [0, {MAX_STEPS}], got {step!r}")
    actions = [a for a in EVENT_ACTIONS if a in ev]
    if "surface" in actions and "expr" in actions:
        raise fail("expr", "give either 'surface' or 'expr', not both")
    if len([a for a in actions if a != "expr" or "surface" not in actions]) != 1:
        raise fail(None, f"needs exactly one action, one of: {', '.join(EVENT_ACTIONS)}", f"events[{i}]")
    action = actions[0]

    def lane_name() -> str:
        name = ev.get("lane")
        if name is None:
            raise fail(None, f"'{action}' needs a 'lane' (one of: {', '.join(names)})", f"events[{i}].lane")
        if name not in names:
            raise fail("lane", f"unknown lane {name!r}{did_you_mean(name, names)} (lanes at that point: {', '.join(names)})")
        return name

    if action == "set":
        lane = lane_name()
        settings = ev["set"]
        if not isinstance(settings, dict) or not settings:
            raise fail("set", "must be a non-empty table, e.g. set = { lr = 0.5 }")
        # Validate against the lane's optimizer by building a throwaway lane table.
        return step, SetLane(lane, _check_settings(fail, settings, optimizer_of[lane]))
    if action == "add":
        table = ev["add"]
        if not isinstance(table, dict):
            raise fail("add", "must be a lane table, e.g. add = { optimizer = 'adam', lr = 0.1 }")
        cfg = _check_lane(chk, "events", i, f"{prefix}add.", table, names, mlp=mlp)
        names.append(cfg.name)
        optimizer_of[cfg.name] = cfg.optimizer
        return step, AddLane({**table, "name": cfg.name, **({"batch": cfg.batch} if mlp else {})})
    if action == "remove":
        name = ev["remove"]
        if name not in names:
            raise fail("remove", f"unknown lane {name!r}{did_you_mean(name, names)} (lanes: {', '.join(names)})")
        names.remove(name)
        return step, RemoveLane(name)
    if mlp and action in ("starts", "surface", "expr"):
        raise fail(action, "not available in an MLP script (no surface, no start points)")
    if action == "starts":
        lane = lane_name()
        pts = ev["starts"]
        if not isinstance(pts, list) or not pts or not all(_is_point(p) for p in pts):
            raise fail("starts", f"must be a non-empty list of [x, y] points, got {pts!r}")
        return step, MoveStarts(lane, tuple(tuple(float(v) for v in p) for p in pts))
    if action == "reset":
        if ev["reset"] is not True:
            raise fail("reset", "must be true")
        return step, Reset()
    lims = {}
    for key in ("xlim", "ylim"):
        if key in ev:
            v = ev[key]
            if not (isinstance(v, list) and len(v) == 2 and all(is_number(x) for x in v) and v[0] < v[1]):
                raise fail(key, f"must be [low, high] with low < high, got {v!r}")
            lims[key] = (float(v[0]), float(v[1]))
    if action == "expr":
        try:
            surface_from_expr(ev["expr"], **lims)
        except (SurfaceError, TypeError) as exc:
            raise fail("expr", str(exc)) from None
        return step, SwitchSurface(expr=ev["expr"], **lims)
    name = ev["surface"]
    registry = SurfaceRegistry()
    if not isinstance(name, str) or name not in registry:
        raise fail("surface", f"unknown surface {name!r}{did_you_mean(name, registry.names())} "
                              f"(choose from {', '.join(registry.names())})")
    return step, SwitchSurface(surface=name)


def _check_settings(fail, settings: dict, optimizer: str) -> dict:
    """Check a ``set`` table against the lane's optimizer (its hyperparameters and their ranges)."""
    spec = get_optimizer(optimizer)
    for key, value in settings.items():
        if key == "batch" and (not _is_int(value) or not 1 <= value <= 1_000_000):
            raise fail("set", f"set.batch must be an integer in [1, 1000000], got {value!r}")
        if key == "coupling" and value not in COUPLINGS:
            raise fail("set", f"set.coupling: unknown coupling {value!r} (choose from {', '.join(COUPLINGS)})")
        if key == "noise" and (not is_number(value) or not 0 <= value <= 1e6):
            raise fail("set", f"set.noise must be a number in [0, 1e6], got {value!r}")
        if key == "schedule":
            _check_schedule(fail, value)
        if key not in ("batch", "coupling", "noise", "schedule"):
            if key not in spec.param_names():
                valid = ["batch", "schedule", "coupling", "noise", *spec.param_names()]
                raise fail("set", f"set.{key}: '{optimizer}' has no setting '{key}'{did_you_mean(key, valid)}"
                                  f" (valid: {', '.join(valid)})")
            try:
                spec.param(key).validate(value)
            except OptimizerConfigError as exc:
                raise fail("set", f"set.{key}: {_without_key(exc, key)}") from None
    return {k: (tuple(v) if isinstance(v, list) else v) for k, v in settings.items()}


# --- writing ----------------------------------------------------------------------------


def command_to_event(step: int, cmd: Command) -> dict[str, Any]:
    if isinstance(cmd, SetLane):
        settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cmd.settings.items()}
        return {"step": step, "lane": cmd.lane, "set": settings}
    if isinstance(cmd, AddLane):
        return {"step": step, "add": dict(cmd.lane)}
    if isinstance(cmd, RemoveLane):
        return {"step": step, "remove": cmd.lane}
    if isinstance(cmd, MoveStarts):
        return {"step": step, "lane": cmd.lane, "starts": [list(p) for p in cmd.starts]}
    if isinstance(cmd, Reset):
        return {"step": step, "reset": True}
    if isinstance(cmd, SwitchSurface):
        ev: dict[str, Any] = {"step": step}
        if cmd.expr is not None:
            ev["expr"] = cmd.expr
        else:
            ev["surface"] = cmd.surface
        if cmd.xlim:
            ev["xlim"] = list(cmd.xlim)
        if cmd.ylim:
            ev["ylim"] = list(cmd.ylim)
        return ev
    raise TypeError(f"cannot write {cmd!r} as an event")


def dump_script(script: dict[str, Any]) -> str:
    """TOML text of a script dict; floats are written with repr so they read back bit-identically."""
    header = "# sgdtui script (version 1): replay with `sgdtui replay FILE`\n"
    return header + tomli_w.dumps(script)
