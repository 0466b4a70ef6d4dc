"""The playground's modal screens (pickers, expression input, help, phase diagram, share).

Each is a ``Modal``: a ModalScreen dismissed once only. Keys arrive in bursts over SSH (and from
a fast typist): two enters, or enter and escape, reach a screen before its first dismissal has
taken effect, and a second dismissal would pop the screen beneath it (or raise
ScreenStackError with only the main screen left)."""

from __future__ import annotations

from typing import TypeVar

from textual.await_complete import AwaitComplete
from textual.screen import ModalScreen

ResultType = TypeVar("ResultType")


async def _nothing() -> None:
    return None


def dismissed_already(screen) -> bool:
    return screen.app.screen is not screen


class Modal(ModalScreen[ResultType]):
    def dismiss(self, result: ResultType | None = None) -> AwaitComplete:
        if dismissed_already(self):
            return AwaitComplete(_nothing())
        return super().dismiss(result)
