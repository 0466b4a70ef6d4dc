"""Gradient flow: the path dx/dt = -grad L(x) that gradient descent approximates as its learning
rate goes to 0. A lane's flow reference starts where its trajectories start and is integrated in
the time t = sum of the learning rates used so far, so at step k the flow point and the discrete
point have travelled for the same time; where they part, the learning rate is too large for GD
to be a discretization of the flow.

The integrator is the Dormand-Prince 5(4) embedded Runge-Kutta pair with an adaptive step
(tolerances RTOL, ATOL on the position), shared by all points of a cloud and kept from one
call to the next.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

RTOL = 1e-8
ATOL = 1e-10
MAX_SUBSTEPS = 10_000  # per advance: a stiff or exploding flow stops there rather than hang

GradField = Callable[[np.ndarray], np.ndarray]  # (n, 2) -> (n, 2) gradient of the full loss

# Dormand-Prince coefficients (Hairer, Norsett and Wanner, Solving ODEs I, table 5.2).
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
)
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)


class GradientFlow:
    """Points following dx/dt = -grad L(x); ``advance(dt)`` integrates them forward by dt.

    A point whose flow leaves ``bound`` or stops being finite is frozen where it last was finite
    and marked in ``stopped``.
    """

    def __init__(self, grad: GradField, starts: np.ndarray, bound: float = 1e6):
        self.grad = grad
        self.x = np.array(starts, dtype=np.float64).reshape(-1, 2)
        self.time = 0.0
        self.bound = bound
        self.stopped = ~np.isfinite(self.x).all(axis=1)
        self.h: float | None = None  # the step size the error control last chose
        self.evaluations = 0

    def _field(self, x: np.ndarray) -> np.ndarray:
        self.evaluations += 1
        with np.errstate(all="ignore"):
            return -np.asarray(self.grad(x), dtype=np.float64)

    def advance(self, dt: float) -> np.ndarray:
        """Integrate by ``dt`` (>= 0) and return the positions (n, 2)."""
        if dt <= 0 or self.stopped.all():
            self.time += max(dt, 0.0)
            return self.x
        moving = ~self.stopped
        x = self.x[moving]
        remaining = dt
        h = min(self.h or dt, dt)
        k1 = self._field(x)
        for _ in range(MAX_SUBSTEPS):
            if remaining <= 0:
                break
            h = min(h, remaining)
            stages = [k1]
            for i in range(1, 7):
                y = x + h * sum(a * k for a, k in zip(_A[i], stages))
                stages.append(self._field(y))
            x5 = x + h * sum(b * k for b, k in zip(_B5, stages) if b)
            x4 = x + h * sum(b * k for b, k in zip(_B4, stages) if b)
            with np.errstate(all="ignore"):
                scale = ATOL + RTOL * np.maximum(np.abs(x), np.abs(x5))
                err = float(np.sqrt(np.mean(((x5 - x4) / scale) ** 2))) if x.size else 0.0
            if not np.isfinite(err):
                bad = ~np.isfinite(x5).all(axis=1) | (np.abs(x5) > self.bound).any(axis=1)
                if h > dt * 1e-12 and not bad.all():
                    h *= 0.25
                    continue
                # Every point blows up even on a tiny step: stop the ones that do.
                self._stop(moving, bad)
                moving = ~self.stopped
                x = self.x[moving]
                if not x.size:
                    break
                k1 = self._field(x)
                continue
            if err <= 1.0:
                x = x5
                k1 = stages[6]  # first-same-as-last
                remaining -= h
                out = (np.abs(x) > self.bound).any(axis=1) | ~np.isfinite(x).all(axis=1)
                if out.any():
                    self._stop(moving, out)
                    self.x[moving & ~self.stopped] = x[~out]
                    moving = ~self.stopped
                    x = self.x[moving]
                    k1 = self._field(x) if x.size else k1
            factor = 0.9 * (1.0 / max(err, 1e-10)) ** 0.2
            h = h * min(5.0, max(0.2, factor))
        self.h = h
        self.x[moving] = x
        self.time += dt
        return self.x

    def _stop(self, moving: np.ndarray, which: np.ndarray) -> None:
        index = np.flatnonzero(moving)[which]
        self.stopped[index] = True
