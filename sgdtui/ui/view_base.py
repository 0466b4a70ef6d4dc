"""What every mode's view offers the App: draw a snapshot, give the lanes table its rows and the
status line its text, and handle the actions only that view has (pan and zoom, loss slices)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.containers import Horizontal

from sgdtui.engine.snapshot import Snapshot
from sgdtui.ui.present import LaneColours


@dataclass(frozen=True)
class ViewContext:
    """How the App wants a snapshot drawn."""

    colours: LaneColours
    selected: str | None
    log_scale: bool | None  # None: chosen from the live range
    running: bool
    prompt: bool = False  # the frame answers a key press: a pane that may lag (the loss pane) draws later


class ModeView(Horizontal):
    """The plots of one problem kind (the App shows the view of the session's kind).

    ``actions``: the App actions only this view handles; in other modes they are hidden from the
    footer and the palette, and their keys say which mode they need.
    """

    kind: ClassVar[str]
    actions: ClassVar[frozenset[str]] = frozenset()

    DEFAULT_CLASSES = "mode-view"

    def show_snapshot(self, snapshot: Snapshot, context: ViewContext) -> None:
        raise NotImplementedError

    table_drop_order: ClassVar[tuple[str, ...]] = ()  # columns a narrow terminal gives up, first to last

    def table(self, snapshot: Snapshot, context: ViewContext) -> tuple[tuple[tuple[str, int], ...], dict[str, list[str]]]:
        """(columns, rows) for the lanes table."""
        raise NotImplementedError

    def status(self, snapshot: Snapshot, context: ViewContext, *, speed: str, steps_per_second: float | None,
               frames_per_second: float | None) -> str:
        raise NotImplementedError

    def suggested_lr(self, snapshot: Snapshot, lane: str | None) -> float | None:
        """The lr the range test of ``lane`` suggests (R applies it to the other lanes); None
        where the lane is no range test or has no suggestion yet. Each view says how it reads one."""
        return None

    def forget(self) -> None:
        """A new session: drop what the view remembers of the old one."""
