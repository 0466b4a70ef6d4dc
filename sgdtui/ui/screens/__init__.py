"""The playground's modal screens (pickers, expression input, help, phase diagram, share).

Each is a ``Modal``: a ModalScreen dismissed once only (``DismissOnce``, which the command palette
uses too). Keys arrive in bursts over SSH (and from a fast typist): two enters, or enter and
escape, reach a screen before its first dismissal has taken effect, and a second dismissal would
pop the screen beneath it (or raise ScreenStackError with only the main screen left)."""

from __future__ import annotations

from typing import TypeVar

from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")


async def _nothing() -> None:
    return None


def dismissed_already(screen) -> bool:
    return screen.app.screen is not screen


class DismissOnce:
    """A screen mixin: a dismissal of a screen that is no longer on top does nothing."""

    def dismiss(self, result=None) -> AwaitComplete:
        if dismissed_already(self):
            return AwaitComplete(_nothing())
        return super().dismiss(result)


class Modal(DismissOnce, ModalScreen[ResultType]):
    pass
