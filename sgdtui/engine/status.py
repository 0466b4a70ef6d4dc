"""What a trajectory is doing, in one word, from the tail of its history.

ready (no step yet) · running · converged (at the surface's known minimum, or at rest where the
surface has none) · stalled (no longer getting anywhere: resting at a point that is not the
minimum, or creeping across a plateau) · oscillating (moving, but round in a cycle: a limit cycle
or a bounce across a valley that does not shrink) · diverged at k (the lane's code says so).

The tests read the last WINDOW exact rows of the history (the newest rows are never decimated),
so detection costs nothing per step.
"""

from __future__ import annotations

import numpy as np

WINDOW = 64  # steps the detectors look back over
CONVERGED_TOL = 1e-3  # within this of the known minimum value counts as converged
REST_GRAD = 1e-8  # a gradient norm below this is a resting point
CREEP = 1e-7  # relative loss change over the window below this: no progress
CYCLE_RATIO = 0.05  # net displacement / path length below this while moving: going round


def trajectory_status(t: int, positions: np.ndarray, losses: np.ndarray, grad_norm: float,
                      min_value: float | None) -> str:
    """``positions`` (k, 2) and ``losses`` (k,): the last k <= WINDOW rows of one trajectory;
    ``grad_norm`` is its gradient norm now."""
    if t == 0:
        return "ready"
    loss = float(losses[-1])
    if min_value is not None and loss - min_value < CONVERGED_TOL:
        return "converged"
    if grad_norm < REST_GRAD:
        return "converged" if min_value is None else "stalled"
    if len(losses) < WINDOW:
        return "running"
    moves = np.diff(positions, axis=0)
    path = float(np.linalg.norm(moves, axis=1).sum())
    net = float(np.linalg.norm(positions[-1] - positions[0]))
    change = abs(float(losses[-1] - losses[0]))
    scale = max(abs(float(losses[0])), abs(loss), 1e-12)
    no_progress = float(losses[-1]) >= float(losses[0]) - 1e-9 * scale or change < 1e-3 * scale
    if path > 0 and net < CYCLE_RATIO * path and no_progress:
        return "oscillating"
    if change < CREEP * scale:
        return "stalled"
    return "running"
