"""The share string of the session being played, shown so it can be copied (palette: "Share string")."""

from __future__ import annotations

import os
import shlex
from urllib.parse import quote

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static, TextArea

from sgdtui.ui.screens import Modal

SERVE_URL_ENV = "SGDTUI_SERVE_URL"  # set by `sgdtui serve` for its sessions: the address the browser used


def share_lines(share: str) -> list[str]:
    """How to open the string: the command line, and the browser link when served."""
    lines = [f"sgdtui --script-string {shlex.quote(share)}", f"sgdtui replay --script-string {shlex.quote(share)}"]
    base = os.environ.get(SERVE_URL_ENV)
    if base:
        lines.append(f"{base.rstrip('/')}/?script={quote(share, safe='')}")
    return lines


class ShareScreen(Modal[None]):
    """The string in a read-only text area (select to copy; c copies it all); escape closes."""

    BINDINGS = [Binding("escape", "close", "Close"), Binding("c", "copy", "Copy")]
    DEFAULT_CSS = """
    ShareScreen { align: center middle; background: $background 60%; }
    ShareScreen TextArea { height: auto; max-height: 12; }
    """

    def __init__(self, share: str) -> None:
        super().__init__()
        self.share = share

    def compose(self) -> ComposeResult:
        with Vertical(classes="picker"):
            yield Static("Share this session (c copies, escape closes)", classes="picker-title")
            text = TextArea("\n".join(share_lines(self.share)), read_only=True, soft_wrap=True, id="share-text")
            yield text
            yield Static(f"{len(self.share)} characters: the whole script, events included; it replays to the"
                         " same numbers", markup=False)

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.share)
        self.app.notify("share string copied to the clipboard", timeout=3)

    def action_close(self) -> None:
        self.dismiss(None)
