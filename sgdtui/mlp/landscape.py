"""2-D slices of an MLP lane's loss landscape (Li, Xu, Taylor, Studer & Goldstein 2018).

The plane passes through the lane's current weights ``w0``; a grid point ``(a, b)`` is
``w0 + a * d1 + b * d2``. The loss is the full training-set loss in eval mode (BatchNorm uses
the lane's running stats), evaluated for all grid points at once with ``torch.func.vmap``.

Directions
----------
- ``"random"``: Gaussian directions, *filter-normalized*: for every weight matrix each row
  (one output unit's filter) is rescaled to the norm of the same row of ``w0``; vectors (biases,
  norm-layer scales and shifts) get a zero direction, as in the paper, so ``a = 1`` means "one
  filter's worth of change" whatever the layer's scale.
- ``"pca"``: the top two principal directions of the recorded trajectory's offsets from
  ``w0``, each scaled so the trajectory's farthest projection along it is 1. ``span`` then
  means "multiples of the path's extent".

The trajectory (flattened weight vectors, e.g. from ``MLPTrainer.flat_weights``) is projected
onto the plane by least squares, so the path can be drawn over the contours.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from sgdtui.engine.commands import CommandError
from sgdtui.engine.contours import level_lines
from sgdtui.mlp.model import MLPTrainer
from sgdtui.mlp.snapshot import DIRECTIONS, LandscapeSlice

__all__ = ["LandscapeError", "compute_slice", "loss_slice"]

SLICE_RES = 25
LINE_RES = 80

Directions = Literal["random", "pca"]


class LandscapeError(CommandError):
    """A landscape request is invalid (directions, resolution, trajectory): a command error, so
    the app shows it and keeps running."""


def _filter_normalized_direction(trainer: MLPTrainer, w0: Tensor, generator: torch.Generator) -> Tensor:
    direction = torch.randn(w0.shape, generator=generator, dtype=torch.float32).to(w0.device)
    d_parts, w_parts = trainer.unflatten(direction), trainer.unflatten(w0)
    pieces = []
    for name, d in d_parts.items():
        w = w_parts[name]
        if d.dim() < 2:
            pieces.append(torch.zeros_like(d).reshape(-1))
            continue
        d_rows, w_rows = d.reshape(d.shape[0], -1), w.reshape(w.shape[0], -1)
        scale = w_rows.norm(dim=1, keepdim=True) / d_rows.norm(dim=1, keepdim=True).clamp_min(1e-12)
        pieces.append((d_rows * scale).reshape(-1))
    return torch.cat(pieces)


def _pca_directions(w0: Tensor, trajectory: Tensor) -> tuple[Tensor, Tensor]:
    offsets = trajectory - w0
    if torch.linalg.matrix_rank(offsets).item() < 2:
        raise LandscapeError("pca directions need a trajectory that spans at least two directions")
    _, _, v_t = torch.linalg.svd(offsets, full_matrices=False)
    axes = v_t[:2]  # orthonormal rows
    extent = (offsets @ axes.T).abs().amax(dim=0).clamp_min(1e-12)
    return axes[0] * extent[0], axes[1] * extent[1]


def _project(offsets: Tensor, d1: Tensor, d2: Tensor) -> Tensor:
    """Least-squares plane coordinates of ``offsets[T, P]`` in the basis (d1, d2)."""
    basis = torch.stack([d1, d2], dim=1).double()  # [P, 2]
    gram = basis.T @ basis
    return torch.linalg.solve(gram, basis.T @ offsets.double().T).T.float()


def loss_slice(
    trainer: MLPTrainer,
    lane_index: int,
    directions: Directions,
    *,
    res: int = 25,
    span: float = 1.0,
    trajectory: Sequence[Tensor] | Tensor | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Loss over a ``res x res`` grid ``alphas, betas = linspace(-span, span, res)``.

    Returns ``(alphas[res], betas[res], Z[res, res], path_2d[T, 2])`` with
    ``Z[j, i] = loss(w0 + alphas[i] * d1 + betas[j] * d2)`` (rows follow ``betas``, ready for a
    contour plot) and ``path_2d`` the trajectory's plane coordinates (``(0, 2)`` when no
    trajectory is given). ``seed`` picks the random directions.
    """
    if isinstance(res, bool) or not isinstance(res, int) or res < 2:
        raise LandscapeError(f"res must be an int >= 2, got {res!r}")
    if not (isinstance(span, (int, float)) and span > 0):
        raise LandscapeError(f"span must be a positive number, got {span!r}")
    w0 = trainer.flat_weights(lane_index)

    path: Tensor | None = None
    if trajectory is not None and len(trajectory) > 0:
        path = torch.stack([torch.as_tensor(w).reshape(-1) for w in trajectory]).to(w0.device, torch.float32)
        if path.shape[1] != w0.numel():
            raise LandscapeError(
                f"trajectory vectors have {path.shape[1]} entries, the lane has {w0.numel()} weights"
            )

    if directions == "random":
        generator = torch.Generator(device="cpu").manual_seed(seed)
        d1 = _filter_normalized_direction(trainer, w0, generator)
        d2 = _filter_normalized_direction(trainer, w0, generator)
    elif directions == "pca":
        if path is None or path.shape[0] < 2:
            raise LandscapeError("pca directions need a trajectory of at least two weight vectors")
        d1, d2 = _pca_directions(w0, path)
    else:
        raise LandscapeError(f"unknown directions {directions!r}; use 'random' or 'pca'")

    alphas = torch.linspace(-span, span, res, device=w0.device)
    betas = torch.linspace(-span, span, res, device=w0.device)
    grid_b, grid_a = torch.meshgrid(betas, alphas, indexing="ij")
    points = w0 + grid_a.reshape(-1, 1) * d1 + grid_b.reshape(-1, 1) * d2
    z = trainer.batched_loss(lane_index, points).reshape(res, res)

    path_2d = np.zeros((0, 2), dtype=np.float32) if path is None else _project(path - w0, d1, d2).cpu().numpy()
    return alphas.cpu().numpy(), betas.cpu().numpy(), z.cpu().numpy(), path_2d


def bilinear(alphas: np.ndarray, betas: np.ndarray, z: np.ndarray):
    """A batched loss_fn(w[N, 2]) -> [N] interpolating ``z`` bilinearly (clamped at the edges), so
    the level-line tracer that draws surfaces draws a slice the same way."""
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


def compute_slice(trainer: MLPTrainer, index: int, name: str, directions: str, weights_path: list,
                  *, step: int = 0, res: int = SLICE_RES) -> LandscapeSlice:
    """Lane ``index``'s loss slice with its level lines traced (call between steps)."""
    if directions not in DIRECTIONS:
        raise LandscapeError(f"unknown directions {directions!r}; use {' or '.join(DIRECTIONS)}")
    alphas, betas, z, path = loss_slice(trainer, index, directions, res=res, span=1.0,
                                        trajectory=list(weights_path) or None)
    z = np.asarray(z, dtype=np.float64)
    finite = z[np.isfinite(z)]
    lines = []
    if finite.size and finite.max() > finite.min():
        lines = level_lines(bilinear(alphas, betas, z), (float(alphas[0]), float(alphas[-1])),
                            (float(betas[0]), float(betas[-1])), resolution=LINE_RES, log_levels=True,
                            min_value=float(finite.min()))
    return LandscapeSlice(name, directions, step, np.asarray(alphas, np.float64), np.asarray(betas, np.float64), z,
                          np.asarray(path, np.float64).reshape(-1, 2), lines)
