"""Small checks shared by every validator: numbers, and "did you mean" hints for unknown names."""

from __future__ import annotations

import difflib
from typing import Any, Iterable


def is_number(value: Any) -> bool:
    """An int or float, but not a bool (True is an int in Python, never a number here)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def did_you_mean(word: Any, choices: Iterable[str]) -> str:
    """"; did you mean 'adam'?" for the closest choice, or "" when nothing is close."""
    hint = difflib.get_close_matches(str(word), list(choices), n=1)
    return f"; did you mean '{hint[0]}'?" if hint else ""
