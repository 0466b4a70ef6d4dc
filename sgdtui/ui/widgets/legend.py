"""The lanes' legend beside the curves (not over the data): each lane's glyph and name in its
colour, the selected one in bold."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class Legend(Static):
    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("", id=id, markup=False)
        self._shown: tuple | None = None

    def show(self, entries: list[tuple[str, str, str]], selected: str | None, extra: str = "") -> None:
        """``entries``: (name, glyph, rich colour) per lane; ``extra``: a dim note at the end."""
        key = (tuple(entries), selected, extra)
        if key == self._shown:
            return
        self._shown = key
        text = Text()
        for name, glyph, colour in entries:
            text.append(f"{glyph} {name}", style=f"bold {colour}" if name == selected else colour)
            text.append("  ")
        if extra:
            text.append(extra, style="dim")
        self.update(text)
