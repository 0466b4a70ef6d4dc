"""The one-line status bar under the plots."""

from __future__ import annotations

from textual.widgets import Static


class StatusLine(Static):
    """Shows ``present.status_text``; updates only when the text changed.

    Its height is ``min_rows`` (the App sets 3 on a tall terminal) or the text's row count when
    that is more. A height change relayouts and redraws every pane (about 90 ms at 120x40), so on
    a tall terminal the Lab's third row (a range test, a stability warning as lr goes up) has its
    place kept and appears without one."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__("", id=id, markup=False)
        self.text = ""
        self.min_rows = 2
        self.rows = 2  # the height set (app.tcss starts it at 2)

    def set_min_rows(self, rows: int) -> None:
        if rows != self.min_rows:
            self.min_rows = rows
            self._fit(self.text)

    def show(self, text: str) -> None:
        if text != self.text:
            self.text = text
            resized = self._fit(text)
            # Otherwise the height stays: a new text needs no relayout, which would repaint every
            # pane of the screen, not just this line.
            self.update(text, layout=resized)

    def _fit(self, text: str) -> bool:
        rows = max(self.min_rows, text.count("\n") + 1)
        if rows == self.rows:
            return False
        self.rows = rows
        self.styles.height = rows
        return True


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
