"""A loading screen, painted with plain escape codes the moment the command line is parsed.

Importing torch takes most of the two seconds before the playground's first frame. Textual only
paints once the session is built, so without this the terminal would sit blank and echo what
was typed. The splash switches to the alternate screen (where Textual draws too), hides the
cursor, stops key echo, and prints a line saying what is loading. ``hand_over`` gives the terminal
to Textual as it was found, minus the blank. ``close`` undoes it all. It is called before any
error is printed, so a one-line error lands on the normal screen.

Imports nothing heavy: it runs before torch and Textual are loaded.
"""

from __future__ import annotations

import os
import sys
from typing import ClassVar, TextIO

ENTER = "\x1b[?1049h\x1b[?25l\x1b[2J"  # alternate screen, hidden cursor, cleared
LEAVE = "\x1b[?25h\x1b[?1049l"  # cursor back, normal screen


class Splash:
    """The loading screen of this process; at most one at a time (``active``)."""

    active: ClassVar[Splash | None] = None

    def __init__(self, stream: TextIO, lines: list[str]):
        self.stream = stream
        self._termios = None  # the terminal's attributes before echo was turned off
        self._paint(lines)
        self._silence_keys()
        Splash.active = self

    @classmethod
    def show(cls, lines: list[str], stream: TextIO | None = None) -> Splash | None:
        """Paint ``lines`` centred on a terminal. Returns None, painting nothing, where there is
        no terminal to paint on: output piped, a dumb terminal, or a Textual driver chosen from
        outside, such as ``sgdtui serve``'s browser sessions."""
        stream = stream or sys.stdout
        try:
            interactive = stream.isatty()
        except (AttributeError, ValueError):
            interactive = False
        if not interactive or os.environ.get("TERM", "") in ("", "dumb") or os.environ.get("TEXTUAL_DRIVER"):
            return None
        return cls(stream, lines)

    def _paint(self, lines: list[str]) -> None:
        try:
            columns, rows = os.get_terminal_size(self.stream.fileno())
        except (OSError, ValueError):
            columns, rows = 0, 0
        if columns <= 0 or rows <= 0:  # a terminal that does not know its size
            columns, rows = 80, 24
        top = max(1, (rows - len(lines)) // 2)
        out = [ENTER]
        for k, line in enumerate(lines):
            line = line[: max(1, columns - 2)]
            out.append(f"\x1b[{top + k};{max(1, (columns - len(line)) // 2 + 1)}H")
            out.append(f"\x1b[1m{line}\x1b[0m" if k == 0 else f"\x1b[2m{line}\x1b[0m")
        self._write("".join(out))

    def _silence_keys(self) -> None:
        """Keys typed while loading are kept for the app, not echoed onto the splash."""
        try:
            import termios

            fd = self.stream.fileno()
            self._termios = termios.tcgetattr(fd)
            quiet = termios.tcgetattr(fd)
            quiet[3] &= ~termios.ECHO
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
        except (ImportError, OSError, ValueError):
            self._termios = None

    def _restore_keys(self) -> None:
        if self._termios is None:
            return
        try:
            import termios

            termios.tcsetattr(self.stream.fileno(), termios.TCSANOW, self._termios)
        except (OSError, ValueError):
            pass
        self._termios = None

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def hand_over(self) -> None:
        """Textual takes the terminal from here. It saves the attributes it finds and restores them
        at exit, so echo is back on first. The screen stays on the alternate buffer, where Textual
        paints."""
        self._restore_keys()
        if Splash.active is self:
            Splash.active = None

    def close(self) -> None:
        """Back to the terminal as it was (idempotent)."""
        if Splash.active is not self and self._termios is None:
            return
        self._restore_keys()
        self._write(LEAVE)
        if Splash.active is self:
            Splash.active = None

    @classmethod
    def close_active(cls) -> None:
        """Close the splash, if one is up, before anything is printed to the normal screen."""
        if cls.active is not None:
            cls.active.close()


def loading_lines(args) -> list[str]:
    """What the splash says: the program and what it is loading for this command line."""
    script = getattr(args, "script", None)
    if getattr(args, "mode", None) == "mlp" or getattr(args, "command", None) == "mlp":
        what = f"MLP mode ({getattr(args, 'dataset', None) or 'moons'})"
    elif script:
        what = f"the script {script}" if isinstance(script, (str, os.PathLike)) else "the shared script"
    elif getattr(args, "expr", None):
        what = f"the surface {args.expr}"
    else:
        what = f"the {getattr(args, 'surface', None) or 'default'} race"
    return ["sgdtui", f"loading torch and {what} …", "(keys typed now are kept)"]
