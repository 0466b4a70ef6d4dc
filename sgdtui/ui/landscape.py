"""Loss-landscape slices for the MLP screen, computed in the session worker (no Textual here).

``compute_slice`` runs ``mlp.landscape.loss_slice`` for one lane (through ``worker.call``, so
it sees the lane between two steps) and traces level lines of the slice with
``engine.contours.level_lines`` on a bilinear interpolation of the Z grid, so the ContourPlot
that draws surfaces draws the slice the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sgdtui.engine.contours import LevelLine, level_lines
from sgdtui.engine.session import CommandError, Session

DIRECTIONS = ("random", "pca")
SLICE_RES = 25
LINE_RES = 80


@dataclass(frozen=True)
class LandscapeSlice:
    lane: str
    directions: str
    clock: int  # session step at which the slice was taken
    alphas: np.ndarray  # (res,)
    betas: np.ndarray  # (res,)
    z: np.ndarray  # (res, res): z[j, i] = loss at (alphas[i], betas[j])
    path: np.ndarray  # (T, 2) the lane's recorded weights projected on the plane
    lines: list[LevelLine]

    @property
    def xlim(self) -> tuple[float, float]:
        return float(self.alphas[0]), float(self.alphas[-1])

    @property
    def ylim(self) -> tuple[float, float]:
        return float(self.betas[0]), float(self.betas[-1])


def bilinear(alphas: np.ndarray, betas: np.ndarray, z: np.ndarray):
    """A batched loss_fn(w[N, 2]) -> [N] interpolating ``z`` bilinearly (clamped at the edges)."""
    alphas, betas = np.asarray(alphas, np.float64), np.asarray(betas, np.float64)
    z = np.asarray(z, np.float64)

    def loss_fn(w: torch.Tensor) -> torch.Tensor:
        points = w.detach().cpu().numpy().astype(np.float64)
        fx = np.clip(np.interp(points[:, 0], alphas, np.arange(len(alphas))), 0, len(alphas) - 1)
        fy = np.clip(np.interp(points[:, 1], betas, np.arange(len(betas))), 0, len(betas) - 1)
        i0 = np.minimum(np.floor(fx).astype(np.int64), len(alphas) - 2)
        j0 = np.minimum(np.floor(fy).astype(np.int64), len(betas) - 2)
        tx, ty = fx - i0, fy - j0
        top = z[j0, i0] * (1 - tx) + z[j0, i0 + 1] * tx
        bottom = z[j0 + 1, i0] * (1 - tx) + z[j0 + 1, i0 + 1] * tx
        return torch.from_numpy(top * (1 - ty) + bottom * ty)

    return loss_fn


def compute_slice(session: Session, lane: str, directions: str, *, res: int = SLICE_RES) -> LandscapeSlice:
    """The loss over a plane through lane ``lane``'s current weights (call in the worker thread)."""
    from sgdtui.mlp.landscape import loss_slice

    if session.mode != "mlp":
        raise CommandError("loss-landscape slices exist in MLP mode only")
    race = session.race
    race.flush()
    try:
        target = race.lane(lane)
    except KeyError as exc:
        raise CommandError(exc.args[0]) from None
    trajectory = list(target.weights_path)
    alphas, betas, z, path = loss_slice(race.trainer, target.index, directions, res=res, span=1.0,
                                        trajectory=trajectory or None)
    z = np.asarray(z, dtype=np.float64)
    finite = z[np.isfinite(z)]
    lines = []
    if finite.size and finite.max() > finite.min():
        lines = level_lines(bilinear(alphas, betas, z), (float(alphas[0]), float(alphas[-1])),
                            (float(betas[0]), float(betas[-1])), resolution=LINE_RES, log_levels=True,
                            min_value=float(finite.min()))
    return LandscapeSlice(lane, directions, session.clock, np.asarray(alphas, np.float64),
                          np.asarray(betas, np.float64), z, np.asarray(path, np.float64).reshape(-1, 2), lines)
