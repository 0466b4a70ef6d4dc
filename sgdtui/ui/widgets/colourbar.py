"""A one-line colour bar: the contour pane's loss bands, each as a coloured swatch with the value
where it starts, so the shading can be read as numbers."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from sgdtui.ui.widgets.plotting import format_tick


class ColourBar(Static):
    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("", id=id, markup=False)
        self._shown: tuple | None = None
        self._bands: tuple | None = None  # the last bands shown, for after a note
        self._noted = False

    def note(self, text: str | None) -> None:
        """A line of text instead of the bands (the density view says what its shades are); None
        puts the bands back."""
        if text is None:
            if self._noted and self._bands is not None:
                self._noted, self._shown = False, None
                self.show(*self._bands)
            return
        if (text,) != self._shown:
            self._noted, self._shown = True, (text,)
            self.update(Text(text, style="dim"))

    def show(self, label: str, edges: list[float], colours: list[tuple[int, int, int]]) -> None:
        """``colours[k]`` shades values from ``edges[k - 1]`` up to ``edges[k]`` (band 0: below
        ``edges[0]``); the swatch of band k is labelled with the value where it starts."""
        self._bands = (label, list(edges), list(colours))
        if self._noted:
            return
        key = (label, tuple(edges), tuple(colours))
        if key == self._shown:
            return
        self._shown = key
        text = Text(f"{label} ", style="dim")
        for k, colour in enumerate(colours):
            text.append("  ", style=f"on #{colour[0]:02x}{colour[1]:02x}{colour[2]:02x}")
            if k < len(edges):
                text.append(f"{format_tick(edges[k])} ", style="dim")
        self.update(text)
