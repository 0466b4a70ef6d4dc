"""One parameter-spec type for every tunable setting: optimizer hyperparameters, schedule
parameters and the lane's own settings (batch, noise, coupling).

A ``ParamSpec`` knows its default, kind, range, help line and how the playground's keys move
it. ``validate`` is the only place a value is checked; a bad value raises ``SettingError``,
which carries the key it is about, so the script reader only has to add the file and line::

    SettingError("lr", "must be a number in (0, 1e+06], got -1")  ->  "lr: must be a number ..."
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from sgdtui.engine.checks import did_you_mean

# One press of a key moves a log-scaled value by a quarter decade.
KEY_FACTOR = 10 ** 0.25

KINDS = (float, int, bool, "pair", "list[int]", "choice")
STEPS = ("linear", "log", "decay", "count", "bool")


class SettingError(ValueError):
    """A bad value for a named setting. ``key`` is the setting's path inside its table
    (``lr``, ``schedule.step_size``, ``mlp.hidden``); ``reason`` says what is wrong."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}" if key else reason)
        self.key = key
        self.reason = reason

    def under(self, prefix: str) -> "SettingError":
        """The same error one table further out: ``lr`` under ``set`` is ``set.lr``."""
        key = f"{prefix}.{self.key}" if self.key else prefix
        return type(self)(key, self.reason)

    def __reduce__(self):  # picklable across the session process, with its key
        return type(self), (self.key, self.reason)


@dataclass(frozen=True)
class ParamSpec:
    """One setting.

    ``kind``: ``float``, ``int``, ``bool``, ``"pair"`` (two floats, e.g. Adam's betas),
    ``"list[int]"`` (sorted, e.g. milestones) or ``"choice"`` (one of ``choices``).
    ``low``/``high`` bound numbers (each element of a pair or list); ``*_open`` excludes the
    bound itself. ``none_ok``: None is allowed (it stands for a value derived from the lane).

    ``step`` says how the keys move the value: "log" multiplies by 10^(1/4) (from 0, the
    first press goes to ``first``); "decay" is a β in [0, 1) moved in log(1 - β) (four presses
    = one decade of 1 - β); "count" is an EMA length N = 1/(1 - β) moved multiplicatively;
    "linear" adds ``increment``; "bool" toggles.
    """

    name: str
    default: Any
    kind: Any = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""
    step: str = "linear"
    increment: float = 0.1
    first: float | None = None
    none_ok: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TypeError(f"ParamSpec {self.name!r}: unknown kind {self.kind!r}")
        if self.step not in STEPS:
            raise TypeError(f"ParamSpec {self.name!r}: unknown step {self.step!r}")

    # --- checking ------------------------------------------------------------------------
    def fail(self, value: Any, hint: str = "") -> SettingError:
        return SettingError(self.name, f"must be {self.range_text()}, got {value!r}{hint}")

    def validate(self, value: Any) -> Any:
        """``value`` normalised to this setting's kind (ints stay ints, pairs become tuples,
        lists are sorted), or SettingError."""
        if value is None:
            if self.none_ok:
                return None
            raise self.fail(value)
        if self.kind is bool:
            if not isinstance(value, bool):
                raise self.fail(value)
            return value
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                hint = did_you_mean(value, self.choices) if isinstance(value, str) else ""
                raise self.fail(value, hint)
            return value
        if self.kind == "pair":
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != 2:
                raise self.fail(value)
            return tuple(self._number(v, float, value) for v in value)
        if self.kind == "list[int]":
            if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
                raise self.fail(value)
            # Sorted like torch's MultiStepLR (a Counter; a repeated milestone decays twice).
            return tuple(sorted(self._number(v, int, v) for v in value))
        return self._number(value, self.kind, value)

    def _number(self, value: Any, kind: type, shown: Any) -> float | int:
        # bool is an int subclass; True as a step count or an lr is a mistake, not a 1.
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise self.fail(shown)
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(shown)
        if kind is int:
            if not number.is_integer():  # 70.0 from a TOML float or a key step is fine; 70.5 is not
                raise self.fail(shown)
            if not self.in_range(number):
                raise self.fail(shown)
            return int(number)
        if not self.in_range(number):
            raise self.fail(shown)
        return number

    def in_range(self, x: float) -> bool:
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        if self.high is not None and (x > self.high or (self.high_open and x == self.high)):
            return False
        return True

    def bounds_text(self) -> str:
        """The range alone: "(0, 1e+06]", ">= 1", "true | false", "one of ..." (for listings)."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind is bool:
            return "true | false"
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            return f"{'(' if self.low_open else '['}{lo:g}, {hi:g}{')' if self.high_open else ']'}"
        if lo is not None:
            return f"{'>' if self.low_open else '>='} {lo:g}"
        if hi is not None:
            return f"{'<' if self.high_open else '<='} {hi:g}"
        return "any"

    def range_text(self) -> str:
        """What a valid value is, as a phrase: "a number in (0, 1e+06]", "an int >= 1", ..."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind is bool:
            return "true or false"
        what = {float: "a number", int: "an int", "pair": "a pair of numbers", "list[int]": "a list of ints"}[self.kind]
        bounds = self.bounds_text()
        if bounds == "any":
            text = what
        elif bounds[0] in "[(":
            text = f"{what}{', each' if self.kind in ('pair', 'list[int]') else ''} in {bounds}"
        else:
            text = f"{what}{', each' if self.kind in ('pair', 'list[int]') else ''} {bounds}"
        return text + (" (or none)" if self.none_ok else "")

    # --- key steps -------------------------------------------------------------------------
    def nudge(self, value: Any, direction: int) -> Any:
        """The value after one key press up (+1) or down (-1), kept in range."""
        if self.kind == "pair":  # betas: the keys move beta1
            return (self._nudge_scalar(value[0], direction), value[1])
        return self._nudge_scalar(value, direction)

    def _nudge_scalar(self, value: float, direction: int) -> Any:
        if self.kind is bool or self.step == "bool":
            return not value
        if self.step == "log":
            if self.first is not None:  # a log scale never reaches 0: step between 0 and ``first``
                if value <= 0:
                    return self.first if direction > 0 else 0.0
                if direction < 0 and value / KEY_FACTOR < self.first * 0.999:
                    return 0.0
            new = value * KEY_FACTOR ** direction if value > 0 else self.default
        elif self.step == "decay":
            new = 1.0 - (1.0 - value) / KEY_FACTOR ** direction  # additive in log(1 - beta)
        elif self.step == "count":
            new = value * KEY_FACTOR ** direction
        else:
            new = value + direction * self.increment
        lo = -math.inf if self.low is None else self.low + (1e-12 if self.low_open else 0.0)
        hi = math.inf if self.high is None else self.high - (1e-6 if self.high_open else 0.0)
        new = min(max(new, lo), hi)
        if self.kind is int:
            low_int = int(math.ceil(lo)) if math.isfinite(lo) else -(2**62)
            high_int = int(hi) if math.isfinite(hi) else 2**62
            new = max(int(round(new)), low_int)
            if new == value:
                new = min(value + direction, high_int) if direction > 0 else max(value - 1, low_int)
        return new
