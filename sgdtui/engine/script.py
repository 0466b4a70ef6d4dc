"""Scripts (TOML, version 1): read, validate, write.

A script is a user-facing contract (documented in the README). Every value is validated by the
object it configures (a problem kind, ``LaneConfig``, a schedule, an optimizer), which raises a
``SettingError`` naming the key; this module only adds the file, the line where the key can be
found and the table it sits in::

    race.toml:12: lanes[1].optimizer: unknown optimizer 'adma'; did you mean 'adam'? (choose from ...)
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from sgdtui.engine.checks import did_you_mean
from sgdtui.engine.commands import AddLane, Caption, Command, MoveStarts, RemoveLane, Reset, SetLane, SwitchProblem
from sgdtui.engine.lane import LaneConfig, check_points, unique_name
from sgdtui.engine.params import SettingError
from sgdtui.engine.problem import DEFAULT_TABLE, Problem, problem_from_table, problem_keys
from sgdtui.engine.surfaces import SurfaceRegistry

VERSION = 1
TOP_KEYS = ("version", "seed", "steps", "problem", "lanes", "events", "sweep")  # [sweep]: engine/sweep.py
LANE_ACTIONS = ("set", "add", "remove", "starts", "reset")
CAPTION_KEYS = ("caption", "pause")
MAX_CAPTION = 400
MAX_STEPS = 100_000_000


class ScriptError(ValueError):
    """An invalid script. The message is one line: file:line: key: what is wrong."""


@dataclass
class Script:
    seed: int
    steps: int | None
    problem: Problem
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
        if key:
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

    def setting(self, table: str, index: int, prefix: str, exc: SettingError, line_key: str | None = None) -> ScriptError:
        """A SettingError raised inside the table ``prefix`` (e.g. ``lanes[1].``) as a script error."""
        keypath = f"{prefix}{exc.key}" if exc.key else prefix.rstrip(".")
        return self.fail(table, index, line_key or exc.key.split(".")[0], keypath, exc.reason)


def key_error(path: str, text: str, table: str, key: str | None, keypath: str, message: str,
              index: int = 0) -> ScriptError:
    """A ScriptError for ``key`` of ``table`` (its ``index``-th array entry) located in the
    script's ``text``: ``file:line: keypath: message``, for tables validated elsewhere ([sweep])."""
    return _Checker(path, text).fail(table, index, key, keypath, message)


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
        except RecursionError:  # tomllib gives no position: find the statement ourselves
            where, keypath = _too_deep(text)
            raise ScriptError(f"{path}{where}: {keypath}arrays or inline tables nested too deeply") from None
    try:
        return validate_script(data, path=path, text=text, registry=registry)
    except RecursionError:
        raise ScriptError(f"{path}: values nested too deeply") from None


def _too_deep(text: str, limit: int = 64) -> tuple[str, str]:
    """(":line", "key path: ") of the first statement nesting arrays or inline tables deeper
    than ``limit`` (outside strings and comments), or ("", "") if none does."""
    depth, quote, line, at = 0, "", 1, 0
    while at < len(text):
        char = text[at]
        if quote:
            if text.startswith(quote, at):
                at, quote = at + len(quote), ""
                continue
            step = 2 if char == "\\" and quote[0] == '"' else 1
            line += text.count("\n", at, at + step)
            at += step
            continue
        if char == "#":
            at = text.find("\n", at)
            at = len(text) if at < 0 else at
            continue
        if char in "\"'":
            quote = char * 3 if text.startswith(char * 3, at) else char
            at += len(quote)
            continue
        depth += (char in "[{") - (char in "]}")
        line += char == "\n"
        if depth > limit:
            break
        at += 1
    else:
        return "", ""
    locator = _Locator(text)
    statement = max((entry for entry in locator.keys if entry[3] <= line), key=lambda e: e[3], default=None)
    if statement is None:
        return f":{line}", ""
    table, index, key, lineno = statement
    is_array = any(t == table and i == index and text.splitlines()[n - 1].lstrip().startswith("[[")
                   for t, i, n in locator.tables)
    prefix = f"{table}[{index}]." if is_array else (f"{table}." if table else "")
    return f":{lineno}", f"{prefix}{key}: "


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

    if "sweep" in data and not isinstance(data["sweep"], dict):
        raise chk.fail("", 0, "sweep", "sweep", "must be a table ([sweep])")
    table = data.get("problem", DEFAULT_TABLE)
    if not isinstance(table, dict):
        raise chk.fail("", 0, "problem", "problem", "must be a table ([problem])")
    if registry is None:
        registry = SurfaceRegistry()
    try:
        problem = problem_from_table(table, registry)
    except SettingError as exc:
        raise chk.setting("problem", 0, "problem.", exc) from None

    lanes_raw = data.get("lanes")
    if lanes_raw is None:
        raise chk.fail("", 0, None, "lanes", "missing: a script needs at least one [[lanes]] table")
    if not isinstance(lanes_raw, list) or not lanes_raw or not all(isinstance(t, dict) for t in lanes_raw):
        raise chk.fail("", 0, "lanes", "lanes", "must be one or more [[lanes]] tables")
    lanes: list[LaneConfig] = []
    for i, lane_table in enumerate(lanes_raw):
        _, cfg = _check_lane(chk, "lanes", i, f"lanes[{i}].", lane_table, [c.name for c in lanes], problem)
        lanes.append(cfg)

    events_raw = data.get("events", [])
    if not isinstance(events_raw, list) or not all(isinstance(t, dict) for t in events_raw):
        raise chk.fail("", 0, "events", "events", "must be [[events]] tables")
    events: list[tuple[int, Command]] = []
    state = _EventState(problem, {cfg.name: cfg for cfg in lanes}, registry)
    last_step = 0
    for i, ev in enumerate(events_raw):
        caption = _check_caption(chk, i, ev)
        action = {k: v for k, v in ev.items() if k not in CAPTION_KEYS}
        if caption is not None and set(action) <= {"step"}:
            step = _check_step(chk, i, ev)
            cmds = [caption]
        else:
            step, cmd = _check_event(chk, i, action, state)
            cmds = [cmd] if caption is None else [cmd, caption]
        if step < last_step:
            raise chk.fail("events", i, "step", f"events[{i}].step",
                           f"{step} comes before the previous event's step {last_step}: list events in order")
        last_step = step
        events.extend((step, cmd) for cmd in cmds)
    return Script(seed=seed, steps=steps, problem=problem, lanes=lanes, events=events, registry=registry,
                  path=path, raw=data)


def _check_lane(chk: _Checker, table_name: str, index: int, prefix: str, table: dict, taken: list[str],
                problem: Problem, line_key: str | None = None) -> tuple[dict, LaneConfig]:
    """(the lane table adapted to the problem, its LaneConfig); a lane without a name gets the
    optimizer's, made unique."""
    try:
        table = problem.prepare_lane(table)
        name = table.get("name")
        if name is None and isinstance(table.get("optimizer"), str):
            name = unique_name(table["optimizer"], taken)
        elif name in taken:
            raise SettingError("name", f"duplicate lane name {name!r}")
        return table, LaneConfig.from_table(table, name)
    except SettingError as exc:
        raise chk.setting(table_name, index, prefix, exc, line_key) from None


@dataclass
class _EventState:
    """What the events seen so far have made of the session: the lanes' configs and the problem."""

    problem: Problem
    configs: dict[str, LaneConfig]
    registry: SurfaceRegistry


def _check_step(chk: _Checker, i: int, ev: dict) -> int:
    if "step" not in ev:
        raise chk.fail("events", i, None, f"events[{i}]", "missing key 'step' (the step at which the change takes effect)")
    step = ev["step"]
    if not _is_int(step) or not 0 <= step <= MAX_STEPS:
        raise chk.fail("events", i, "step", f"events[{i}].step", f"must be an integer in [0, {MAX_STEPS}], got {step!r}")
    return step


def _check_caption(chk: _Checker, i: int, ev: dict) -> Caption | None:
    """An event's ``caption = "..."`` and ``pause = true`` as a Caption (None without either)."""
    if not any(k in ev for k in CAPTION_KEYS):
        return None
    text, pause = ev.get("caption", ""), ev.get("pause", False)
    if not isinstance(text, str) or len(text) > MAX_CAPTION:
        raise chk.fail("events", i, "caption", f"events[{i}].caption",
                       f"must be a string of at most {MAX_CAPTION} characters")
    if not isinstance(pause, bool):
        raise chk.fail("events", i, "pause", f"events[{i}].pause", f"must be true or false, got {pause!r}")
    return Caption(" ".join(text.split()), pause)


def _check_event(chk: _Checker, i: int, ev: dict, state: _EventState) -> tuple[int, Command]:
    prefix = f"events[{i}]."
    names = list(state.configs)
    switch_keys = problem_keys()

    def fail(key, message, keypath=None):
        return chk.fail("events", i, key, keypath or f"{prefix}{key}", message)

    valid = ("step", "lane", *LANE_ACTIONS, "problem", *switch_keys, "lanes", *CAPTION_KEYS)
    for key in ev:
        if key not in valid:
            raise _unknown_key(chk, "events", i, key, prefix, valid)
    step = _check_step(chk, i, ev)
    inline = {k: ev[k] for k in switch_keys if k in ev}
    actions = [a for a in LANE_ACTIONS if a in ev] + (["problem"] if inline or "problem" in ev else [])
    if "lanes" in ev and actions != ["problem"]:
        raise fail("lanes", "'lanes' goes with a problem switch (surface = ..., expr = ..., mlp = ...)")
    if len(actions) != 1 or (inline and "problem" in ev):
        raise fail(None, f"needs exactly one action, one of: {', '.join((*LANE_ACTIONS, 'problem', *switch_keys))}"
                         " (or only a caption)",
                   f"events[{i}]")
    action = actions[0]

    def lane_name() -> str:
        name = ev.get("lane")
        if name is None:
            raise fail(None, f"'{action}' needs a 'lane' (one of: {', '.join(names)})", f"events[{i}].lane")
        if name not in names:
            raise fail("lane", f"unknown lane {name!r}{did_you_mean(str(name), names)} (lanes at that point: "
                               f"{', '.join(names)})")
        return name

    if action == "set":
        lane = lane_name()
        settings = ev["set"]
        if not isinstance(settings, dict) or not settings:
            raise fail("set", "must be a non-empty table, e.g. set = { lr = 0.5 }")
        try:
            state.configs[lane] = state.configs[lane].with_settings(settings)
        except SettingError as exc:
            raise chk.setting("events", i, f"{prefix}set.", exc, "set") from None
        return step, SetLane(lane, dict(settings))
    if action == "add":
        table = ev["add"]
        if not isinstance(table, dict):
            raise fail("add", "must be a lane table, e.g. add = { optimizer = 'adam', lr = 0.1 }")
        table, cfg = _check_lane(chk, "events", i, f"{prefix}add.", table, names, state.problem, line_key="add")
        state.configs[cfg.name] = cfg
        return step, AddLane({**table, "name": cfg.name})
    if action == "remove":
        name = ev["remove"]
        if name not in names:
            raise fail("remove", f"unknown lane {name!r}{did_you_mean(str(name), names)} (lanes: {', '.join(names)})")
        del state.configs[name]
        return step, RemoveLane(name)
    if action == "starts":
        lane = lane_name()
        if not state.problem.has_start_points:
            raise fail("starts", f"a {state.problem.kind} problem's lanes have no start points")
        try:
            points = check_points(ev["starts"], "starts")
        except SettingError as exc:
            raise chk.setting("events", i, prefix, exc) from None
        return step, MoveStarts(lane, points)
    if action == "reset":
        if ev["reset"] is not True:
            raise fail("reset", "must be true")
        return step, Reset()
    table, where = (inline, prefix) if inline else (ev["problem"], f"{prefix}problem.")
    if not isinstance(table, dict):
        raise fail("problem", f"must be a [problem] table, got {table!r}")
    try:
        new = problem_from_table(table, state.registry)
    except SettingError as exc:
        raise chk.setting("events", i, where, exc, None if inline else "problem") from None
    if new.kind != state.problem.kind:
        raise fail(next(iter(table), None), f"a session cannot switch from a {state.problem.kind} problem to a"
                                            f" {new.kind} problem (start another session)", prefix.rstrip("."))
    state.problem = new
    if "lanes" not in ev:
        state.configs = {name: cfg.with_starts(None) for name, cfg in state.configs.items()}
        return step, SwitchProblem(new.to_table())
    lanes = ev["lanes"]
    if not isinstance(lanes, list) or not lanes or not all(isinstance(t, dict) for t in lanes):
        raise fail("lanes", "must be a list of lane tables, e.g. lanes = [{ optimizer = 'adam', lr = 0.1 }]")
    tables, configs = [], {}
    for k, lane_table in enumerate(lanes):
        lane_table, cfg = _check_lane(chk, "events", i, f"{prefix}lanes[{k}].", lane_table, list(configs), new,
                                      line_key="lanes")
        tables.append({**lane_table, "name": cfg.name})
        configs[cfg.name] = cfg
    state.configs = configs
    return step, SwitchProblem(new.to_table(), tuple(tables))


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
    if isinstance(cmd, Caption):
        event = {"step": step, "caption": cmd.text}
        if cmd.pause:
            event["pause"] = True
        return event
    if isinstance(cmd, SwitchProblem):  # the [problem] keys inline: surface = "...", mlp = { ... }
        event = {"step": step, **cmd.table}
        if cmd.lanes is not None:
            event["lanes"] = [dict(table) for table in cmd.lanes]
        return event
    raise TypeError(f"cannot write {cmd!r} as an event")


def dump_script(script: dict[str, Any]) -> str:
    """TOML text of a script dict; floats are written with repr so they read back bit-identically."""
    header = "# sgdtui script (version 1): replay with `sgdtui replay FILE`\n"
    return header + tomli_w.dumps(script)
