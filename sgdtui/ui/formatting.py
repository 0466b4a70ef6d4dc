"""Numbers as the playground shows them (the table, the status line, the Lab's read-outs)."""

from __future__ import annotations

import math


def fmt(value: float | None, digits: int = 3) -> str:
    """Compact number: 3 significant digits, '—' for none (or a metric that does not apply),
    'inf'/'nan' as such."""
    if value is None:
        return "—"
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def cell(value: float | None, width: int) -> str:
    """A number that fits a table column of ``width``: fewer digits and a short exponent first."""
    for digits in (3, 2, 1):
        text = fmt(value, digits)
        mantissa, _, exponent = text.partition("e")
        if exponent:  # 1.78e-05 -> 1.78e-5, 2e+06 -> 2e6
            text = f"{mantissa}e{int(exponent)}"
        if len(text) <= width:
            return text
    return text
