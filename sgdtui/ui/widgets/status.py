"""The one-line status bar under the plots."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    """Shows ``present.status_text``; updates only when the text changed."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("", id=id, markup=False)
        self.text = ""

    def show(self, text: str) -> None:
        if text != self.text:
            rows = text.count("\n") + 1
            resized = rows != self.text.count("\n") + 1 and rows >= 2
            if resized:
                self.styles.height = rows  # a third row only while the Lab has something to say
            self.text = text
            # The height is fixed (app.tcss): a new text needs no relayout, which would repaint
            # every pane of the screen, not just this line.
            self.update(text, layout=resized)


class CaptionLine(Static):
    """A lesson's latest caption (a script's ``caption = "..."``), hidden until there is one."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("", id=id, markup=False)
        self.caption: tuple[int, str] | None = None

    def show(self, caption: tuple[int, str] | None) -> None:
        if caption == self.caption:
            return
        self.caption = caption
        self.display = caption is not None
        if caption is not None:
            self.update(f"▶ step {caption[0]}: {caption[1]}")
