"""Loss surfaces: a batch of points w (N, 2) -> losses (N,).

Two kinds share one interface:

- ``ExpressionSurface``: an analytic formula in x, y (built-ins, user TOML files, ``--expr``).
  Gradient noise is additive Gaussian with standard deviation ``noise / sqrt(B)``, so batch
  size means something on every surface.
- ``DataSurface``: a 2-parameter model fitted to seeded data (linear regression, logistic
  regression, perceptron). A batch of size B samples B data points per trajectory per step;
  B >= n means the full data set (plain GD).

Built-in surfaces are TOML files in the top-level ``surfaces/`` folder (shipped as the package
``sgdtui.surfaces``); users add their own in ``$XDG_CONFIG_HOME/sgdtui/surfaces/`` or a folder
given with ``--surfaces DIR``.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable

import torch

from sgdtui.engine.checks import did_you_mean
from sgdtui.engine.expr import ExprError, compile_expr
from sgdtui.engine.lane import LaneConfig, unique_name
from sgdtui.engine.params import SettingError

DTYPE = torch.float64
DEFAULT_BOUND = 1e6
DEFAULT_VIEW = (-5.0, 5.0)


class SurfaceError(ValueError):
    """A surface definition or name is invalid (message is one line, names the file and key)."""


@dataclass(eq=False)
class Surface:
    """Common description of a 2-D loss surface. Subclasses provide the loss and its gradient."""

    name: str
    description: str
    xlim: tuple[float, float] = DEFAULT_VIEW
    ylim: tuple[float, float] = DEFAULT_VIEW
    minima: tuple[tuple[float, float], ...] = ()
    min_value: float | None = None
    starts: tuple[tuple[float, float], ...] = ((-4.0, 4.0),)
    log_levels: bool = False
    bound: float = DEFAULT_BOUND
    origin: str = "built-in"
    race: tuple[dict, ...] = ()  # lane tables of the surface's default race ([[lanes]] in its TOML)
    data_driven: bool = field(default=False, init=False)

    # --- to be provided by subclasses -------------------------------------------------
    def loss(self, w: torch.Tensor) -> torch.Tensor:
        """Full (noise-free, full-data) loss at each row of w (N, 2)."""
        raise NotImplementedError

    def value_and_grad(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Full loss (N,) and its exact gradient (N, 2)."""
        wg = w.detach().requires_grad_(True)
        with torch.enable_grad():
            loss = self.loss(wg)
            (grad,) = torch.autograd.grad(loss.sum(), wg)
        return loss.detach(), grad

    def stochastic_grad(
        self, w: torch.Tensor, batch: int, noise: float, generator: torch.Generator
    ) -> torch.Tensor:
        """The minibatch gradient estimate g_hat (N, 2) one optimizer step sees."""
        _, grad = self.value_and_grad(w)
        return _add_noise(grad, batch, noise, generator)

    # --- shared ----------------------------------------------------------------------
    def hessian(self, w: torch.Tensor) -> torch.Tensor:
        """Hessian (N, 2, 2) of the full loss at each row of w: central differences of the exact
        gradient, step h = 1e-5 * max(1, |w|) per coordinate (relative error ~1e-10 for a smooth
        loss). Not autograd's double backward: some ops' second derivatives import torch._dynamo
        (over a second at start-up) and the read-out needs no more digits than this."""
        w = w.detach().to(DTYPE).reshape(-1, 2)
        n = w.shape[0]
        h = 1e-5 * torch.clamp(w.abs(), min=1.0)  # (N, 2)
        points = w.repeat(4, 1)  # x+, x-, y+, y- blocks of N rows
        points[:n, 0] += h[:, 0]
        points[n:2 * n, 0] -= h[:, 0]
        points[2 * n:3 * n, 1] += h[:, 1]
        points[3 * n:, 1] -= h[:, 1]
        _, grad = self.value_and_grad(points)
        grad = grad.reshape(4, n, 2)
        dx = (grad[0] - grad[1]) / (2 * h[:, 0:1])  # row i: d(grad)/dx
        dy = (grad[2] - grad[3]) / (2 * h[:, 1:2])
        hess = torch.stack([dx, dy], dim=1)  # [i, j] = d grad_j / d w_i
        return 0.5 * (hess + hess.transpose(1, 2))

    def hessian_autograd(self, w: torch.Tensor) -> torch.Tensor:
        """Hessian (N, 2, 2) by double backward (tests compare ``hessian`` with it)."""
        wg = w.detach().to(DTYPE).requires_grad_(True)
        with torch.enable_grad():
            loss = self.loss(wg)
            (grad,) = torch.autograd.grad(loss.sum(), wg, create_graph=True)
            rows = []
            for i in range(2):
                if grad.requires_grad:
                    (row,) = torch.autograd.grad(
                        grad[:, i].sum(), wg, retain_graph=True, allow_unused=True
                    )
                else:  # piecewise-linear surfaces: the gradient does not depend on w
                    row = None
                rows.append(torch.zeros_like(wg) if row is None else row)
        return torch.stack(rows, dim=1).detach()

    def start_tensor(self) -> torch.Tensor:
        return torch.tensor(self.starts, dtype=DTYPE)



def _add_noise(grad: torch.Tensor, batch: int, noise: float, generator: torch.Generator) -> torch.Tensor:
    """Additive Gaussian gradient noise with variance noise^2 / B per coordinate."""
    if noise <= 0.0:
        return grad
    xi = torch.randn(grad.shape, generator=generator, dtype=grad.dtype)
    return grad + (noise / math.sqrt(batch)) * xi


@dataclass(eq=False)
class ExpressionSurface(Surface):
    """A surface given by a formula in x and y (compiled by the safe expression parser)."""

    expr: str = ""

    def __post_init__(self) -> None:
        self._compile()

    def _compile(self) -> None:
        self._fn = compile_expr(self.expr)
        self._value_and_grad_fn = self._fn.value_and_grad
        self._scalar_fn = self._fn.scalar_value_and_grad

    # The compiled closures do not pickle: a surface crosses to a session process as its fields
    # and is compiled again there (compiling is deterministic).
    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_fn", "_value_and_grad_fn", "_scalar_fn")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._compile()

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        out = self._fn(w[:, 0], w[:, 1])
        if out.dim() == 0:  # a constant expression
            out = out.expand(w.shape[0])
        return out

    def value_and_grad_at(self, x: float, y: float) -> tuple[float, float, float]:
        """The loss and both partials at one point, as floats: the numbers ``value_and_grad``
        gives for a one-row ``w`` (a lane of one trajectory reads them without making tensors)."""
        return self._scalar_fn(x, y)

    def value_and_grad(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if w.shape[0] == 1:
            # One trajectory (the common case): float arithmetic beats launching tiny tensor ops
            # (and gives torch's inf/nan where floats would raise).
            x, y = w[0].tolist()
            value, gx, gy = self._scalar_fn(x, y)
            return torch.tensor([value], dtype=w.dtype), torch.tensor([[gx, gy]], dtype=w.dtype)
        # Forward-mode symbolic gradient: no autograd graph, ~3x cheaper than autograd.
        value, gx, gy = self._value_and_grad_fn(w[:, 0], w[:, 1])
        return value, torch.stack((gx, gy), dim=1)


# --- data-driven surfaces -------------------------------------------------------------


@dataclass(eq=False)
class DataSurface(Surface):
    """A two-parameter model on seeded data; w = (w0, w1) are the model's parameters.

    ``inputs`` is (n, 2): each row is the feature vector the parameters multiply.
    """

    kind: str = "linear-regression"
    n: int = 1000
    data_seed: int = 0
    data_noise: float = 0.05

    def __post_init__(self) -> None:
        self.data_driven = True
        self.inputs, self.targets = make_surface_data(self.kind, self.n, self.data_seed, self.data_noise)
        if not self.minima and self.kind == "linear-regression":
            # The least-squares solution of this very data set is the known minimum.
            sol = torch.linalg.lstsq(self.inputs, self.targets.unsqueeze(1)).solution.squeeze(1)
            self.minima = ((float(sol[0]), float(sol[1])),)
        elif not self.minima and self.kind == "logistic-regression":
            self.minima = (_newton_logistic(self.inputs, self.targets),)
        if self.minima and self.min_value is None:
            self.min_value = float(self.loss(torch.tensor(self.minima, dtype=DTYPE)).min())

    # per-sample loss pieces, batched over trajectories: scores s = <w, x>
    def _loss_from_scores(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.kind == "linear-regression":
            return (scores - targets).square().mean(-1)
        if self.kind == "logistic-regression":
            return torch.nn.functional.softplus(-targets * scores).mean(-1)
        return torch.relu(-targets * scores).mean(-1)  # perceptron

    def _dloss_dscores(self, scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        m = scores.shape[-1]
        if self.kind == "linear-regression":
            return 2.0 * (scores - targets) / m
        if self.kind == "logistic-regression":
            return -targets * torch.sigmoid(-targets * scores) / m
        return torch.where(targets * scores < 0, -targets, torch.zeros_like(scores)) / m

    def loss(self, w: torch.Tensor) -> torch.Tensor:
        scores = w @ self.inputs.T  # (N, n)
        return self._loss_from_scores(scores, self.targets)

    def value_and_grad(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = w @ self.inputs.T
        loss = self._loss_from_scores(scores, self.targets)
        grad = self._dloss_dscores(scores, self.targets) @ self.inputs
        return loss, grad

    def stochastic_grad(
        self, w: torch.Tensor, batch: int, noise: float, generator: torch.Generator
    ) -> torch.Tensor:
        if batch >= self.n:
            _, grad = self.value_and_grad(w)
        else:
            # Each trajectory draws its own B samples (with replacement) from the lane's RNG.
            idx = torch.randint(self.n, (w.shape[0], batch), generator=generator)
            x = self.inputs[idx]  # (N, B, 2)
            t = self.targets[idx]  # (N, B)
            scores = torch.einsum("nbk,nk->nb", x, w)
            grad = torch.einsum("nb,nbk->nk", self._dloss_dscores(scores, t), x)
        return _add_noise(grad, batch, noise, generator)


DATA_KINDS = ("linear-regression", "logistic-regression", "perceptron")


def make_surface_data(kind: str, n: int, seed: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded data for the data-driven surfaces, generated in code (nothing downloaded)."""
    gen = torch.Generator().manual_seed(seed)
    if kind == "linear-regression":
        # The course tutorial's set-up: y = -1 + 3x + 0.05 eps, x ~ U(-1, 1), features (1, x).
        x = torch.rand(n, generator=gen, dtype=DTYPE) * 2 - 1
        y = -1.0 + 3.0 * x + noise * torch.randn(n, generator=gen, dtype=DTYPE)
        return torch.stack((torch.ones_like(x), x), dim=1), y
    if kind in ("logistic-regression", "perceptron"):
        # Two Gaussian classes on either side of the line through the origin at 60 degrees.
        labels = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0).to(DTYPE)
        direction = torch.tensor([math.cos(math.pi / 3), math.sin(math.pi / 3)], dtype=DTYPE)
        spread = noise if kind == "logistic-regression" else noise / 4
        points = labels[:, None] * direction + spread * torch.randn(n, 2, generator=gen, dtype=DTYPE)
        if kind == "perceptron":
            # Keep a clean margin so the separating cone is non-empty and loss 0 is reachable.
            margin = labels * (points @ direction)
            points = points + labels[:, None] * direction * torch.clamp(0.2 - margin, min=0)[:, None]
        return points, labels
    raise SurfaceError(f"unknown data surface kind {kind!r} (choose from {', '.join(DATA_KINDS)})")


def _newton_logistic(x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    w = torch.zeros(2, dtype=DTYPE)
    for _ in range(50):
        s = torch.sigmoid(-y * (x @ w))
        grad = -(y * s) @ x / len(y)
        hess = (x.T * (s * (1 - s))) @ x / len(y)
        step = torch.linalg.solve(hess, grad)
        w = w - step
        if float(step.abs().max()) < 1e-14:
            break
    return (float(w[0]), float(w[1]))


# --- TOML loading ----------------------------------------------------------------------

_SURFACE_KEYS = {
    "name", "description", "expr", "kind", "xlim", "ylim", "minima", "min_value", "starts",
    "log_levels", "bound", "data", "lanes",
}
_DATA_KEYS = {"n", "seed", "noise"}


def _pair(value, key: str, where: str) -> tuple[float, float]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise SurfaceError(f"{where}: key '{key}' must be a pair of finite numbers, got {value!r}")
    return (float(value[0]), float(value[1]))


def surface_from_dict(spec: dict, where: str, origin: str = "built-in") -> Surface:
    """Build a surface from a parsed TOML table; ``where`` names the file in error messages.
    An expression that is not finite at any of the surface's start points is refused."""
    surface = _surface_from_spec(spec, where, origin)
    if isinstance(surface, ExpressionSurface):
        problem = start_point_problem(surface)
        if problem:
            key = "starts" if "starts" in spec else "expr"
            raise SurfaceError(f"{where}: key '{key}': {problem}: no trajectory can start there")
    return surface


def start_point_problem(surface: Surface) -> str | None:
    """Why no trajectory can start on ``surface`` (its loss or gradient is inf or nan at every
    one of its start points), naming the first point; None if one can. A trajectory that runs
    into such a point later is marked diverged; a surface where all of them start there is
    refused, so that switching to it changes nothing."""
    loss, grad = surface.value_and_grad(surface.start_tensor())
    if bool((torch.isfinite(loss) & torch.isfinite(grad).all(dim=1)).any()):
        return None
    x, y = surface.starts[0]
    value, (gx, gy) = float(loss[0]), grad[0].tolist()
    what = f"is {value!r}" if not math.isfinite(value) else f"has gradient ({gx!r}, {gy!r})"
    at = "its start point" if len(surface.starts) == 1 else f"each of its {len(surface.starts)} start points, e.g."
    return f"{what} at {at} ({x:g}, {y:g})"


def _surface_from_spec(spec: dict, where: str, origin: str) -> Surface:
    unknown = set(spec) - _SURFACE_KEYS
    if unknown:
        key = sorted(unknown)[0]
        raise SurfaceError(f"{where}: unknown key '{key}'{did_you_mean(key, sorted(_SURFACE_KEYS))}"
                           f" (valid keys: {', '.join(sorted(_SURFACE_KEYS))})")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise SurfaceError(f"{where}: key 'name' must be a non-empty string")
    common: dict = {"name": name, "description": str(spec.get("description", "")), "origin": origin}
    for key in ("xlim", "ylim"):
        if key in spec:
            lo, hi = _pair(spec[key], key, where)
            if not lo < hi or max(abs(lo), abs(hi)) > DEFAULT_BOUND:
                raise SurfaceError(f"{where}: key '{key}' must be [low, high] with low < high, within"
                                   f" ±{DEFAULT_BOUND:g}")
            common[key] = (lo, hi)
    for key in ("minima", "starts"):
        if key in spec:
            if not isinstance(spec[key], list):
                raise SurfaceError(f"{where}: key '{key}' must be a list of [x, y] pairs")
            common[key] = tuple(_pair(p, key, where) for p in spec[key])
    if "starts" in common and not common["starts"]:
        raise SurfaceError(f"{where}: key 'starts' needs at least one [x, y] point")
    if "min_value" in spec:
        if not isinstance(spec["min_value"], (int, float)) or isinstance(spec["min_value"], bool):
            raise SurfaceError(f"{where}: key 'min_value' must be a number")
        common["min_value"] = float(spec["min_value"])
    if "log_levels" in spec:
        if not isinstance(spec["log_levels"], bool):
            raise SurfaceError(f"{where}: key 'log_levels' must be true or false")
        common["log_levels"] = spec["log_levels"]
    if "lanes" in spec:
        common["race"] = _check_race(spec["lanes"], where)
    if "bound" in spec:
        bound = spec["bound"]
        if not isinstance(bound, (int, float)) or isinstance(bound, bool) or not bound > 0:
            raise SurfaceError(f"{where}: key 'bound' must be a positive number")
        common["bound"] = float(bound)
    if "kind" in spec and spec["kind"] != "expression":
        kind = spec["kind"]
        if kind not in DATA_KINDS:
            raise SurfaceError(
                f"{where}: key 'kind': unknown kind {kind!r} (choose from expression, {', '.join(DATA_KINDS)})"
            )
        data = spec.get("data", {})
        if not isinstance(data, dict) or set(data) - _DATA_KEYS:
            raise SurfaceError(f"{where}: key 'data' must be a table with keys {', '.join(sorted(_DATA_KEYS))}")
        n = data.get("n", 1000)
        if not isinstance(n, int) or isinstance(n, bool) or not 2 <= n <= 1_000_000:
            raise SurfaceError(f"{where}: key 'data.n' must be an integer in [2, 1000000]")
        seed = data.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise SurfaceError(f"{where}: key 'data.seed' must be an integer")
        noise = data.get("noise", 0.05)
        if not isinstance(noise, (int, float)) or isinstance(noise, bool) or noise < 0:
            raise SurfaceError(f"{where}: key 'data.noise' must be a number >= 0")
        return DataSurface(kind=kind, n=n, data_seed=seed, data_noise=float(noise), **common)
    expr = spec.get("expr")
    if not isinstance(expr, str):
        raise SurfaceError(f"{where}: key 'expr' is required (a formula in x and y)")
    try:
        surface = ExpressionSurface(expr=expr, **common)
    except ExprError as exc:
        raise SurfaceError(f"{where}: key 'expr': {exc}") from None
    if surface.minima and surface.min_value is None:
        surface.min_value = float(surface.loss(torch.tensor(surface.minima, dtype=DTYPE)).min())
    return surface


def _check_race(lanes, where: str) -> tuple[dict, ...]:
    """The [[lanes]] of a surface file: lane tables exactly as a script's (validated the same way)."""
    if not isinstance(lanes, list) or not lanes or not all(isinstance(t, dict) for t in lanes):
        raise SurfaceError(f"{where}: key 'lanes' must be one or more [[lanes]] tables")
    names: list[str] = []
    tables = []
    for i, table in enumerate(lanes):
        try:
            name = table.get("name") or unique_name(str(table.get("optimizer")), names)
            if name in names:
                raise SettingError("name", f"duplicate lane name {name!r}")
            LaneConfig.from_table(table, name)
        except SettingError as exc:
            raise SurfaceError(f"{where}: lanes[{i}].{exc.key}: {exc.reason}" if exc.key
                               else f"{where}: lanes[{i}]: {exc.reason}") from None
        names.append(name)
        tables.append({"name": name, **{k: v for k, v in table.items() if k != "name"}})
    return tuple(tables)


def load_surface_file(path: Path | str, origin: str | None = None) -> Surface:
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            spec = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SurfaceError(f"{path}: {exc}") from None
    except OSError as exc:
        raise SurfaceError(f"{path}: cannot read ({exc.strerror})") from None
    return surface_from_dict(spec, str(path), origin or str(path))


def surface_from_expr(
    expr: str,
    *,
    name: str | None = None,
    xlim: Iterable[float] | None = None,
    ylim: Iterable[float] | None = None,
    starts: Iterable[Iterable[float]] | None = None,
) -> ExpressionSurface:
    """A user surface from a bare expression (``--expr``, the TUI's ``e`` key, a script's expr).
    A bad expression raises SurfaceError with the parser's one-line message (naming the token).
    Without ``starts`` it starts at the upper left of the view, or where that is not finite at
    the nearest tenth of the view that is; an expression finite at none of them (or at none of
    the given ``starts``) is refused, naming the point."""
    try:
        compile_expr(expr)
    except ExprError as exc:
        raise SurfaceError(str(exc)) from None
    spec: dict = {"name": name or "expr", "description": f"user expression {expr}", "expr": expr}
    if xlim is not None:
        spec["xlim"] = list(xlim)
    if ylim is not None:
        spec["ylim"] = list(ylim)
    lo_x, hi_x = spec.get("xlim", DEFAULT_VIEW)
    lo_y, hi_y = spec.get("ylim", DEFAULT_VIEW)
    if starts is not None:
        spec["starts"] = [list(p) for p in starts]
    else:
        # Start in the upper-left part of the view, where most textbook races begin.
        spec["starts"] = [[lo_x + 0.1 * (hi_x - lo_x), lo_y + 0.9 * (hi_y - lo_y)]]
    surface = _surface_from_spec(spec, "expression", origin="expression")
    assert isinstance(surface, ExpressionSurface)
    problem = start_point_problem(surface)
    if problem and starts is None:
        # Not finite there (log(x) at x < 0): start at the nearest point of a grid over the view
        # where it is, so the surface is refused only where it is nowhere to be found.
        found = _nearest_finite_grid_point(surface, (lo_x, hi_x), (lo_y, hi_y))
        if found is not None:
            surface.starts = (found,)
            return surface
        problem += " and at every tenth of the view: give xlim/ylim where it is defined"
    if problem:
        raise SurfaceError(f"{expr} {problem}" + ("" if starts is None else ": no trajectory can start there"))
    return surface


def _nearest_finite_grid_point(surface: Surface, xlim: tuple[float, float],
                               ylim: tuple[float, float]) -> tuple[float, float] | None:
    """Of the points at tenths of the view, the one nearest its upper-left tenth where the loss
    and gradient are finite (ties: the leftmost, then the highest); None if there is none."""
    tenths = [(i, j) for i in range(1, 10) for j in range(1, 10)]
    tenths.sort(key=lambda ij: ((ij[0] - 1) ** 2 + (ij[1] - 9) ** 2, ij[0], -ij[1]))
    points = [(xlim[0] + i / 10 * (xlim[1] - xlim[0]), ylim[0] + j / 10 * (ylim[1] - ylim[0])) for i, j in tenths]
    loss, grad = surface.value_and_grad(torch.tensor(points, dtype=DTYPE))
    finite = (torch.isfinite(loss) & torch.isfinite(grad).all(dim=1)).tolist()
    return next((point for point, ok in zip(points, finite) if ok), None)


def user_surface_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "sgdtui" / "surfaces"


class SurfaceRegistry:
    """Surfaces by name: built-ins first, then the user's config folder, then ``--surfaces DIR``."""

    def __init__(self, extra_dirs: Iterable[Path | str] = (), include_user_dir: bool = True):
        self._surfaces: dict[str, Surface] = {}
        self.errors: list[str] = []  # bad user files are reported, never fatal
        for entry in sorted(resources.files("sgdtui.surfaces").iterdir(), key=lambda p: p.name):
            if entry.name.endswith(".toml"):
                with resources.as_file(entry) as path:
                    surface = load_surface_file(path, origin="built-in")
                self._surfaces[surface.name] = surface
        dirs = [user_surface_dir()] if include_user_dir else []
        dirs += [Path(d) for d in extra_dirs]
        for directory in dirs:
            own = include_user_dir and directory == dirs[0]
            try:
                if not directory.is_dir():
                    if not own:
                        raise SurfaceError(f"{directory}: surfaces folder does not exist")
                    continue
                paths = sorted(directory.glob("*.toml"))
            except OSError as exc:  # an unreadable config folder: a warning, never a failure
                if not own:
                    raise SurfaceError(f"{directory}: cannot read the surfaces folder ({exc.strerror or exc})") from None
                self.errors.append(f"{directory}: cannot read your surfaces folder ({exc.strerror or exc}); skipped")
                continue
            for path in paths:
                try:
                    surface = load_surface_file(path)
                except SurfaceError as exc:
                    self.errors.append(str(exc))
                    continue
                self._surfaces[surface.name] = surface

    def names(self) -> list[str]:
        return list(self._surfaces)

    def __contains__(self, name: str) -> bool:
        return name in self._surfaces

    def __iter__(self):
        return iter(self._surfaces.values())

    def add(self, surface: Surface) -> None:
        self._surfaces[surface.name] = surface

    def get(self, name: str) -> Surface:
        try:
            return self._surfaces[name]
        except KeyError:
            raise SurfaceError(
                f"unknown surface {name!r}{did_you_mean(name, self.names())} (choose from {', '.join(self.names())})"
            ) from None


DEFAULT_SURFACE = "pathological"
