"""The problem protocol: what a race runs on, and the registry of problem kinds.

A problem kind (an analytic or data-driven 2-D surface, an MLP on a dataset, ...) is a
``Problem`` subclass that reads and writes its own keys of a script's ``[problem]`` table,
describes itself, adapts lane tables to itself (default batch size, start points or none) and
builds its race. Session, Script and replay dispatch through this protocol only: nothing in
the engine names a kind other than its own surfaces.

Kinds register themselves: each is published as an entry point in the ``sgdtui.problems``
group (see pyproject.toml) and loaded the first time the registry is asked, so a package
that plugs a new kind in needs no change here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from sgdtui.engine.checks import did_you_mean
from sgdtui.engine.params import SettingError

if TYPE_CHECKING:  # annotations only
    from sgdtui.engine.lane import LaneConfig
    from sgdtui.engine.race import Race
    from sgdtui.engine.surfaces import SurfaceRegistry

ENTRY_POINT_GROUP = "sgdtui.problems"
DEFAULT_TABLE: dict[str, Any] = {"surface": "pathological"}  # a script without [problem]


class Problem(ABC):
    """One problem a session races on. Immutable once built; ``to_table`` gives it back."""

    kind: ClassVar[str]  # registry name: "surface", "mlp"
    table_keys: ClassVar[tuple[str, ...]]  # the [problem] keys this kind reads (any one selects it)
    has_start_points: ClassVar[bool] = False  # lanes have start points (move with MoveStarts)

    @classmethod
    @abstractmethod
    def from_table(cls, table: dict[str, Any], registry: "SurfaceRegistry | None") -> "Problem":
        """Validate a [problem] table; a bad value raises SettingError naming the key."""

    @abstractmethod
    def to_table(self) -> dict[str, Any]:
        """The [problem] table that rebuilds this problem exactly."""

    @property
    @abstractmethod
    def label(self) -> str:
        """The problem in a few words (status line, summaries)."""

    def prepare_lane(self, table: dict[str, Any]) -> dict[str, Any]:
        """A script lane table adapted to this problem (defaults filled in, foreign keys refused
        with SettingError); lanes of every kind then go through ``LaneConfig.from_table``."""
        return table

    @abstractmethod
    def make_race(self, lanes: "list[LaneConfig]", seed: int, history_capacity: int | None) -> "Race":
        """A race of ``lanes`` on this problem."""

    @abstractmethod
    def default_lanes(self) -> list[dict[str, Any]]:
        """Lane tables of the race this problem opens with (each with a name): chosen so that every
        lane stays finite and the race shows a difference worth seeing."""


_KINDS: dict[str, type[Problem]] = {}
_loaded = False


def register_problem_kind(cls: type[Problem]) -> type[Problem]:
    """Add a kind to the registry (also usable as a class decorator)."""
    _KINDS[cls.kind] = cls
    return cls


def problem_kinds() -> dict[str, type[Problem]]:
    """Every registered kind, loading the ``sgdtui.problems`` entry points the first time."""
    global _loaded
    if not _loaded:
        _loaded = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            register_problem_kind(point.load())
    return dict(_KINDS)


def problem_keys() -> tuple[str, ...]:
    """Every key a [problem] table (or a switching event) may have, over all kinds."""
    return tuple(key for cls in problem_kinds().values() for key in cls.table_keys)


def kind_of(table: dict[str, Any]) -> type[Problem]:
    """The kind a [problem] table selects; SettingError for unknown or mixed keys."""
    if not isinstance(table, dict):
        raise SettingError("problem", f"must be a table ([problem]), got {table!r}")
    kinds = problem_kinds()
    valid = problem_keys()
    for key in table:
        if key not in valid:
            raise SettingError(key, f"unknown key{did_you_mean(key, valid)} (valid keys: {', '.join(valid)})")
    owner = {key: cls for cls in kinds.values() for key in cls.table_keys}
    if not table:
        return kind_of(DEFAULT_TABLE)
    chosen = owner[next(iter(table))]  # the first key names the kind; a later key of another is the mistake
    for key in table:
        if owner[key] is not chosen:
            raise SettingError(key, f"a {chosen.kind} problem has no '{key}' (a key of {owner[key].kind} problems):"
                                    " give one kind")
    return chosen


def problem_from_table(table: dict[str, Any] | None, registry: "SurfaceRegistry | None" = None) -> Problem:
    """The problem a [problem] table describes (None or {}: the default surface)."""
    table = DEFAULT_TABLE if not table else table
    return kind_of(table).from_table(table, registry)
