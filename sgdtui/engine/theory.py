"""What theory says about a sweep: the lines a phase diagram draws over the measured cells.

* Gradient descent is stable along an eigendirection of the Hessian while lr·λ < 2, so
  ``2/λmax`` at the minimum is its stability edge.
* Heavy-ball momentum in torch's parameterization (buf = μ·buf + g; p -= lr·buf) on a quadratic
  is, per eigenvalue λ, the linear system s' = A s with s = (w, buf) and
  A = [[1 - lr·λ, -lr·μ], [λ, μ]]: it converges iff the spectral radius of A is below 1, which is
  lr·λ < 2(1 + μ) for 0 <= μ < 1, and converges at that rate (the momentum article's phase
  diagram, "Why Momentum Really Works").
* With gradient noise of variance σ²/B per coordinate the same system is driven by
  b = (-lr, 1)·ξ; its stationary covariance solves Σ = AΣAᵀ + bbᵀσ²/B, and the stationary excess
  loss is Σᵢ ½λᵢ·Σ_ww. For small lr this is lr·E‖ξ‖²/(4(1 - μ)): the slope of the stationary loss
  in lr is E‖ĝ - g‖²/4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

HEAVY_BALL = ("sgd", "momentum")  # torch's parameterization: the theory below is theirs


@dataclass(frozen=True)
class Curvature:
    eigenvalues: tuple[float, ...]  # of the Hessian at ``point``
    point: tuple[float, float]
    where: str  # "the minimum" or "the start"
    quadratic: bool  # the Hessian is the same everywhere (checked at several points)

    @property
    def lambda_max(self) -> float:
        return max(self.eigenvalues)

    @property
    def gd_edge(self) -> float | None:
        """2/λmax: gradient descent with a larger lr is unstable along the top direction."""
        return 2.0 / self.lambda_max if self.lambda_max > 0 else None


def curvature(surface, start: tuple[float, float] | None = None) -> Curvature | None:
    """The Hessian's eigenvalues at the surface's (first) known minimum, else at ``start``."""
    if surface.minima:
        point, where = surface.minima[0], "the minimum"
    elif start is not None:
        point, where = start, "the start"
    else:
        return None
    hess = _hessian(surface, [point])
    if hess is None:
        return None
    eig = np.linalg.eigvalsh(hess[0])
    lo, hi = surface.xlim, surface.ylim
    probes = [(lo[0], hi[0]), (lo[1], hi[1]), ((lo[0] + lo[1]) / 2, (hi[0] + hi[1]) / 2), (0.3, -0.7)]
    others = _hessian(surface, probes)
    scale = max(float(np.abs(hess[0]).max()), 1e-12)
    quadratic = others is not None and bool(np.all(np.abs(others - hess[0]) <= 1e-9 * scale))
    return Curvature(tuple(float(e) for e in eig), (float(point[0]), float(point[1])), where, quadratic)


def _hessian(surface, points) -> np.ndarray | None:
    try:
        h = surface.hessian(torch.tensor(points, dtype=torch.float64)).numpy()
    except (RuntimeError, ValueError):
        return None
    h = 0.5 * (h + np.transpose(h, (0, 2, 1)))
    return h if np.isfinite(h).all() else None


def heavy_ball_matrix(lr: float, mu: float, lam: float) -> np.ndarray:
    return np.array([[1.0 - lr * lam, -lr * mu], [lam, mu]])


def heavy_ball_rate(lr: float, mu: float, eigenvalues) -> float:
    """The worst per-step contraction factor over the eigendirections (>= 1: no convergence)."""
    return max(float(np.max(np.abs(np.linalg.eigvals(heavy_ball_matrix(lr, mu, lam))))) for lam in eigenvalues)


def heavy_ball_edge(mu: float, lambda_max: float) -> float:
    """The largest lr at which heavy-ball momentum μ converges: 2(1 + μ)/λmax."""
    return 2.0 * (1.0 + mu) / lambda_max


def stationary_excess_loss(lr: float, mu: float, eigenvalues, noise: float, batch: int) -> float:
    """The stationary E[L] - L* of heavy-ball SGD with gradient noise σ = ``noise`` per example
    on a quadratic with these eigenvalues (inf where it does not converge)."""
    variance = noise * noise / batch
    total = 0.0
    for lam in eigenvalues:
        a = heavy_ball_matrix(lr, mu, lam)
        if float(np.max(np.abs(np.linalg.eigvals(a)))) >= 1.0:
            return math.inf
        b = np.array([-lr, 1.0])
        # vec(Σ) = (I - A⊗A)^-1 vec(b bᵀ) σ²/B
        sigma = np.linalg.solve(np.eye(4) - np.kron(a, a), np.outer(b, b).reshape(-1) * variance).reshape(2, 2)
        total += 0.5 * lam * sigma[0, 0]
    return total


def couple_lr(rule: str, lr: float, batch: int, mu: float) -> float:
    from sgdtui.engine.schedules import couple

    return couple(rule, lr, batch, mu)
