"""Where the time goes: wrap methods so that each call adds its duration to a label's total.

    restore = wrap_methods([(SurfaceLane, "_evaluate", "loss and gradient")], spent, time.perf_counter)
    ...  # run the work
    restore()
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any


def wrap_methods(parts: Iterable[tuple[Any, str, str]], spent: dict[str, float],
                 clock: Callable[[], float]) -> Callable[[], None]:
    """Wrap each ``(owner, method name, label)``: its calls add ``clock()`` seconds to
    ``spent[label]``. Returns the function that puts the original methods back."""
    originals = []
    for owner, name, label in parts:
        original = getattr(owner, name)
        originals.append((owner, name, original))

        def timed(*args, _original=original, _label=label, **kwargs):
            started = clock()
            try:
                return _original(*args, **kwargs)
            finally:
                spent[_label] = spent.get(_label, 0.0) + clock() - started

        setattr(owner, name, timed)

    def restore() -> None:
        for owner, name, original in reversed(originals):
            setattr(owner, name, original)

    return restore
