"""Reading an LR range test: which learning rate the loss-against-lr curve suggests.

The curve is first smoothed by a bias-corrected exponential moving average (the window grows with
the curve's length, SMOOTH_FRACTION of it, at least MIN_WINDOW steps) and cut at the first
non-finite loss. Three rules read it:

- ``floor`` (the default, the course tutorial's): the largest lr before the smoothed loss leaves
  its floor, i.e. the last lr before the curve first rises, after its minimum, above
  floor + FLOOR_TOL x (its starting value - floor).
- ``steepest``: the lr where the smoothed loss falls fastest against log lr, before its minimum.
- ``valley``: fastai's rule: the longest stretch over which the smoothed loss keeps decreasing,
  and the lr two thirds of the way along it.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

RULES = ("floor", "steepest", "valley")
DEFAULT_RULE = "floor"
SMOOTH_FRACTION = 0.02
MIN_WINDOW = 5
FLOOR_TOL = 0.02
VALLEY_POINTS = 5000  # longer curves are thinned before the valley search


@dataclass(frozen=True)
class RangeTestReading:
    suggestions: dict[str, float | None]  # by rule
    rule: str

    @property
    def suggested_lr(self) -> float | None:
        return self.suggestions.get(self.rule)


def smoothed(losses: np.ndarray, window: float | None = None) -> np.ndarray:
    """Bias-corrected EMA of ``losses`` with a window of ``window`` steps (beta = 1 - 1/window)."""
    n = len(losses)
    window = window or max(MIN_WINDOW, SMOOTH_FRACTION * n)
    beta = 1.0 - 1.0 / window
    out = np.empty(n)
    average = 0.0
    for k, value in enumerate(losses):
        average = beta * average + (1.0 - beta) * value
        out[k] = average / (1.0 - beta ** (k + 1))
    return out


def _usable(lrs: np.ndarray, losses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lrs = np.asarray(lrs, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    n = min(len(lrs), len(losses))
    lrs, losses = lrs[:n], losses[:n]
    bad = ~(np.isfinite(losses) & np.isfinite(lrs) & (lrs > 0))
    if bad.any():
        cut = int(np.argmax(bad))
        lrs, losses = lrs[:cut], losses[:cut]
    return lrs, losses


def floor_rule(lrs: np.ndarray, smooth: np.ndarray) -> float | None:
    if len(smooth) < 2:
        return None
    low = int(np.argmin(smooth))
    floor = smooth[low]
    rise = smooth[0] - floor
    threshold = floor + FLOOR_TOL * (rise if rise > 0 else max(abs(floor), 1e-12))
    above = np.flatnonzero(smooth[low:] > threshold)
    leave = low + int(above[0]) if len(above) else len(smooth)
    return float(lrs[max(leave - 1, 0)])


def steepest_rule(lrs: np.ndarray, smooth: np.ndarray) -> float | None:
    low = int(np.argmin(smooth))
    if low < 2:
        return None
    log_lr = np.log(lrs[: low + 1])
    dx = np.diff(log_lr)
    rising = dx > 0  # a ramp held at its end repeats an lr: no slope there
    if not rising.any():
        return None
    slope = np.diff(smooth[: low + 1])[rising] / dx[rising]
    return float(lrs[1:low + 1][rising][int(np.argmin(slope))])


def valley_rule(lrs: np.ndarray, smooth: np.ndarray) -> float | None:
    n = len(smooth)
    if n < 3:
        return None
    stride = max(1, math.ceil(n / VALLEY_POINTS))
    values, rates = smooth[::stride], lrs[::stride]
    m = len(values)
    # The longest strictly decreasing subsequence ending at each point (patience sorting on -values).
    tails: list[float] = []
    best_end, best_start, best_length = 0, 0, 1
    for i, value in enumerate(-values):
        k = bisect.bisect_left(tails, value)
        if k == len(tails):
            tails.append(value)
        else:
            tails[k] = value
        if k + 1 > best_length:
            best_end, best_length = i, k + 1
            best_start = best_end - best_length
    sections = (best_end - best_start) / 3
    index = best_start + int(sections) + int(sections / 2)
    return float(rates[min(max(index, 0), m - 1)])


def read_range_test(lrs, losses, rule: str = DEFAULT_RULE) -> RangeTestReading:
    """Suggestions by every rule for one lane's (lr, loss) curve; ``rule`` picks the headline."""
    if rule not in RULES:
        raise ValueError(f"unknown range-test rule {rule!r} (choose from {', '.join(RULES)})")
    lrs, losses = _usable(lrs, losses)
    if len(losses) < 3:
        return RangeTestReading({name: None for name in RULES}, rule)
    smooth = smoothed(losses)
    return RangeTestReading({"floor": floor_rule(lrs, smooth), "steepest": steepest_rule(lrs, smooth),
                             "valley": valley_rule(lrs, smooth)}, rule)
