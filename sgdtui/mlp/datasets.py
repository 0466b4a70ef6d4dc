"""Seeded synthetic datasets for the MLP problems (no downloads, no global RNG).

Every generator draws from one explicit ``torch.Generator`` seeded with ``seed``, so the same
arguments give bit-identical tensors on CPU. Classification sets have (nearly) equal class
counts by construction; the train/val split is a seeded permutation, and inputs are
standardized per feature with the *train* split's mean and standard deviation, which puts
them at roughly unit scale.

Conventions
-----------
- classification: ``y`` is int64 class indices of shape ``(n,)``; ``n_classes >= 2``.
- regression: ``y`` is float32 of shape ``(n, 1)``; ``n_classes == 0``.
- ``noise`` is the standard deviation of the Gaussian noise added to the clean generator, in
  the generator's own (unstandardized) coordinates: to the inputs for classification sets, to
  the target for ``sine``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import torch
from torch import Tensor

from sgdtui.engine.checks import did_you_mean

__all__ = ["DATASETS", "Dataset", "DatasetError", "make_dataset"]

Task = Literal["classification", "regression"]


class DatasetError(ValueError):
    """A dataset name or argument is invalid."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A generated dataset, already split and standardized (tensors on CPU)."""

    name: str
    task: Task
    n_classes: int
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    noise: float
    seed: int

    @property
    def in_dim(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def out_dim(self) -> int:
        """Network output width: one logit per class, or one regression output."""
        return self.n_classes if self.task == "classification" else int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_val(self) -> int:
        return int(self.x_val.shape[0])


# --------------------------------------------------------------------------------------------
# Clean generators: (n, n_classes, noise, generator) -> (x float32 [n, d], y)
# --------------------------------------------------------------------------------------------


def _class_counts(n: int, n_classes: int) -> list[int]:
    """Split ``n`` into ``n_classes`` counts differing by at most one (earlier classes larger)."""
    base, extra = divmod(n, n_classes)
    return [base + (1 if c < extra else 0) for c in range(n_classes)]


def _labels(counts: list[int]) -> Tensor:
    return torch.cat([torch.full((c,), k, dtype=torch.int64) for k, c in enumerate(counts)])


def _gaussian(shape: tuple[int, ...], g: torch.Generator) -> Tensor:
    return torch.randn(shape, generator=g, dtype=torch.float32)


def _uniform(shape: tuple[int, ...], g: torch.Generator, low: float, high: float) -> Tensor:
    return low + (high - low) * torch.rand(shape, generator=g, dtype=torch.float32)


def _moons(n: int, n_classes: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    upper, lower = _class_counts(n, 2)
    t_upper = _uniform((upper,), g, 0.0, math.pi)
    t_lower = _uniform((lower,), g, 0.0, math.pi)
    x_upper = torch.stack([torch.cos(t_upper), torch.sin(t_upper)], dim=1)
    x_lower = torch.stack([1.0 - torch.cos(t_lower), 0.5 - torch.sin(t_lower)], dim=1)
    x = torch.cat([x_upper, x_lower]) + noise * _gaussian((n, 2), g)
    return x, _labels([upper, lower])


def _circles(n: int, n_classes: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    outer, inner = _class_counts(n, 2)
    t_outer = _uniform((outer,), g, 0.0, 2 * math.pi)
    t_inner = _uniform((inner,), g, 0.0, 2 * math.pi)
    x_outer = torch.stack([torch.cos(t_outer), torch.sin(t_outer)], dim=1)
    x_inner = 0.5 * torch.stack([torch.cos(t_inner), torch.sin(t_inner)], dim=1)
    x = torch.cat([x_outer, x_inner]) + noise * _gaussian((n, 2), g)
    return x, _labels([outer, inner])


_SPIRAL_TURNS = 1.5  # arms wind 1.5 times: hard for a linear model, learnable by a (32, 32) MLP


def _spirals(n: int, n_classes: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    counts = _class_counts(n, n_classes)
    arms = []
    for arm, count in enumerate(counts):
        radius = _uniform((count,), g, 0.05, 1.0)
        angle = 2 * math.pi * (_SPIRAL_TURNS * radius + arm / n_classes)
        arms.append(radius[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1))
    x = torch.cat(arms) + noise * _gaussian((n, 2), g)
    return x, _labels(counts)


def _xor(n: int, n_classes: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    # Class 1: both coordinates share a sign (quadrants I, III); class 0: opposite signs.
    opposite, same = _class_counts(n, 2)
    parts = []
    for count, flip in ((opposite, -1.0), (same, 1.0)):
        magnitude = _uniform((count, 2), g, 0.0, 1.0)
        sign = torch.where(torch.rand((count,), generator=g) < 0.5, -1.0, 1.0)
        parts.append(torch.stack([sign * magnitude[:, 0], flip * sign * magnitude[:, 1]], dim=1))
    x = torch.cat(parts) + noise * _gaussian((n, 2), g)
    return x, _labels([opposite, same])


def _blobs(n: int, n_classes: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    # Centers evenly spaced on the unit circle, so the blobs' overlap is set by ``noise`` alone.
    counts = _class_counts(n, n_classes)
    parts = []
    for k, count in enumerate(counts):
        angle = 2 * math.pi * k / n_classes
        center = torch.tensor([math.cos(angle), math.sin(angle)], dtype=torch.float32)
        parts.append(center + noise * _gaussian((count, 2), g))
    return torch.cat(parts), _labels(counts)


def _sine(n: int, n_classes: int, noise: float, g: torch.Generator) -> tuple[Tensor, Tensor]:
    x = _uniform((n, 1), g, -math.pi, math.pi)
    y = torch.sin(x) + noise * _gaussian((n, 1), g)
    return x, y


@dataclass(frozen=True)
class _Spec:
    make: Callable[[int, int, float, torch.Generator], tuple[Tensor, Tensor]]
    task: Task
    description: str
    default_classes: int
    fixed_classes: bool  # True: n_classes may not be changed


_SPECS: dict[str, _Spec] = {
    "moons": _Spec(_moons, "classification", "two interleaving half circles", 2, True),
    "circles": _Spec(_circles, "classification", "a small circle inside a large one", 2, True),
    "spirals": _Spec(_spirals, "classification", "k interleaved spiral arms (k = n_classes, default 2)", 2, False),
    "xor": _Spec(_xor, "classification", "four quadrants, label = sign(x1 * x2)", 2, True),
    "blobs": _Spec(_blobs, "classification", "gaussian blobs on the unit circle (n_classes, default 3)", 3, False),
    "sine": _Spec(_sine, "regression", "1-D regression y = sin(x) + noise, x in [-pi, pi]", 0, True),
}

DATASETS: dict[str, str] = {name: spec.description for name, spec in _SPECS.items()}
"""Registry: dataset name -> one-line description."""


def _unknown_name(name: str) -> DatasetError:
    return DatasetError(f"unknown dataset {name!r}{did_you_mean(name, _SPECS)} (choose from {', '.join(_SPECS)})")


def make_dataset(
    name: str,
    *,
    n: int = 1000,
    noise: float = 0.1,
    seed: int = 0,
    n_classes: int | None = None,
    val_fraction: float = 0.2,
) -> Dataset:
    """Generate dataset ``name`` with ``n`` points, split into train/val and standardized."""
    spec = _SPECS.get(name)
    if spec is None:
        raise _unknown_name(name)
    if isinstance(n, bool) or not isinstance(n, int):
        raise DatasetError(f"n must be an int, got {n!r}")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise >= 0):
        raise DatasetError(f"noise must be a finite number >= 0, got {noise!r}")
    if not (isinstance(val_fraction, (int, float)) and 0.0 < val_fraction < 1.0):
        raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DatasetError(f"seed must be an int, got {seed!r}")

    classes = spec.default_classes if n_classes is None else n_classes
    if spec.fixed_classes and classes != spec.default_classes:
        raise DatasetError(
            f"dataset {name!r} has n_classes={spec.default_classes}; got n_classes={n_classes!r}"
        )
    if spec.task == "classification" and (isinstance(classes, bool) or not isinstance(classes, int) or classes < 2):
        raise DatasetError(f"n_classes must be an int >= 2 for {name!r}, got {n_classes!r}")

    n_val = int(round(n * val_fraction))
    minimum = max(2, classes)
    if n < minimum or n_val < 1 or n - n_val < 1:
        raise DatasetError(
            f"n={n} is too small for dataset {name!r} with val_fraction={val_fraction} "
            f"(need at least {minimum} points and one in each split)"
        )

    generator = torch.Generator(device="cpu").manual_seed(seed)
    x, y = spec.make(n, classes, float(noise), generator)
    order = torch.randperm(n, generator=generator)
    val_idx, train_idx = order[:n_val], order[n_val:]
    x_train, x_val = x[train_idx], x[val_idx]

    mean = x_train.mean(dim=0, keepdim=True)
    std = x_train.std(dim=0, keepdim=True).clamp_min(1e-6)
    x_train = ((x_train - mean) / std).contiguous()
    x_val = ((x_val - mean) / std).contiguous()

    return Dataset(
        name=name,
        task=spec.task,
        n_classes=classes,
        x_train=x_train,
        y_train=y[train_idx].contiguous(),
        x_val=x_val,
        y_val=y[val_idx].contiguous(),
        noise=float(noise),
        seed=seed,
    )
