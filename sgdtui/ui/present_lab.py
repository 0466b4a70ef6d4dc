"""The Lab's read-outs as text: the selected lane's temperatures, the Robbins-Monro partial sums,
a sparkline of its lr (past | scheduled future), and a third status row with the stationary
statistics, the range test's suggestion, SWA and warnings (plain functions of a snapshot)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from sgdtui.engine.snapshot import LaneSnapshot
from sgdtui.ui.formatting import fmt

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 10  # characters for the past and for the future each


def sparkline(values: Sequence[float], width: int = SPARK_WIDTH, low: float | None = None,
              high: float | None = None) -> str:
    """``values`` thinned to ``width`` characters, on a log scale when they span > 1 decade."""
    values = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if not values.size:
        return ""
    if len(values) > width:
        values = values[np.linspace(0, len(values) - 1, width).round().astype(int)]
    low = float(values.min()) if low is None else low
    high = float(values.max()) if high is None else high
    if low > 0 and high / low > 10:
        values, low, high = np.log10(values), math.log10(low), math.log10(high)
    if high <= low:
        return SPARK[len(SPARK) // 2] * len(values)
    index = np.clip(((values - low) / (high - low) * (len(SPARK) - 1)).round().astype(int), 0, len(SPARK) - 1)
    return "".join(SPARK[i] for i in index)


def lr_preview(lane: LaneSnapshot) -> str:
    """lr ▁▂▄▆█│▇▅▃▂▁: the lr of the past updates | the schedule's next ones (a plateau's future is
    not known in advance: only its past is drawn)."""
    past = np.asarray(lane.lrs[1:], dtype=np.float64) if len(lane.lrs) > 1 else np.empty(0)
    future = np.asarray(lane.lr_future, dtype=np.float64)
    both = np.concatenate([past, future]) if past.size or future.size else np.empty(0)
    finite = both[np.isfinite(both)]
    if finite.size < 2 or float(finite.min()) == float(finite.max()):
        return ""
    low, high = float(finite.min()), float(finite.max())
    return f"lr {sparkline(past, low=low, high=high)}│{sparkline(future, low=low, high=high)}"


def temperature_text(lane: LaneSnapshot) -> str:
    """T 0.01 · T_G 0.005: '-' where a temperature is not defined."""
    return f"T {fmt(lane.temperature)} · T_G {fmt(lane.gibbs_temperature)}"


def sums_text(lane: LaneSnapshot) -> str:
    return f"Σlr {fmt(lane.sum_lr)} · Σlr² {fmt(lane.sum_lr2)}"


def stationary_text(stationary: Any) -> str:
    """⟨L⟩ = m ± se (Gibbs p) after K · TV d (c×c) · basins measured/gibbs."""
    if stationary is None:
        return ""
    if not stationary.steps:
        return f"stationary: burning in ({stationary.burn_in} steps)"
    mean = f"⟨L⟩ {fmt(stationary.mean_loss)}"
    if stationary.mean_loss_se is not None:
        mean += f" ± {fmt(stationary.mean_loss_se, 2)}"
    if stationary.predicted_mean_loss is not None:
        mean += f" (Gibbs {fmt(stationary.predicted_mean_loss)})"
    parts = [f"{mean} over {stationary.steps} steps"]
    if stationary.tv is not None:
        parts.append(f"TV {stationary.tv:.3f} ({stationary.tv_cells}×{stationary.tv_cells})")
    if stationary.basins:
        measured = "/".join(f"{m:.2f}" for m, _ in stationary.basins)
        gibbs = "/".join("-" if g is None else f"{g:.2f}" for _, g in stationary.basins)
        parts.append(f"basins {measured} vs Gibbs {gibbs}")
    return " · ".join(parts)


def range_test_text(reading: Any) -> str:
    if reading is None or reading.suggested_lr is None:
        return "range test: not enough steps yet" if reading is not None else ""
    others = " · ".join(f"{rule} {fmt(value)}" for rule, value in reading.suggestions.items()
                        if rule != reading.rule and value is not None)
    return f"range test: lr {fmt(reading.suggested_lr)} ({reading.rule}) · {others} · R sets it on the other lanes"


def swa_text(lane: LaneSnapshot) -> str:
    if lane.swa_loss is None or not len(lane.swa_loss):
        return ""
    return f"SWA loss {fmt(float(lane.swa_loss[-1]))}"


def lab_row(lane: LaneSnapshot) -> str:
    """The third status row: what the Lab measures for the selected lane (empty: no row)."""
    parts = [range_test_text(lane.range_test), stationary_text(getattr(lane, "stationary", None)), swa_text(lane)]
    parts += [f"⚠ {w}" for w in lane.warnings]
    return " · ".join(p for p in parts if p)
