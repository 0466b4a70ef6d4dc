"""Surfaces: gradients against finite differences, data surfaces, Hessian read-outs, the registry."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sgdtui.engine.surface_race import hessian_info
from sgdtui.engine.surfaces import (
    DTYPE, DataSurface, ExpressionSurface, SurfaceError, SurfaceRegistry, surface_from_expr, user_surface_dir,
)

REGISTRY = SurfaceRegistry(include_user_dir=False)
ALL_NAMES = REGISTRY.names()


def random_points_in_view(surface, count: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    u = torch.rand(count, 2, generator=gen, dtype=DTYPE)
    (x0, x1), (y0, y1) = surface.xlim, surface.ylim
    return torch.stack((x0 + (x1 - x0) * u[:, 0], y0 + (y1 - y0) * u[:, 1]), dim=1)


def central_differences(surface, w: torch.Tensor, h: float) -> torch.Tensor:
    cols = []
    for i in range(2):
        e = torch.zeros(1, 2, dtype=DTYPE)
        e[0, i] = h
        cols.append((surface.loss(w + e) - surface.loss(w - e)) / (2 * h))
    return torch.stack(cols, dim=1)


def test_registry_has_the_course_surfaces():
    for name in ("pathological", "rosenbrock", "saddle", "ill-conditioned", "linear-regression",
                 "logistic-regression", "perceptron", "himmelblau"):
        assert name in REGISTRY
    assert isinstance(REGISTRY.get("pathological"), ExpressionSurface)
    assert isinstance(REGISTRY.get("linear-regression"), DataSurface)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_gradient_matches_central_differences(name):
    surface = REGISTRY.get(name)
    w = random_points_in_view(surface, 64, seed=hash(name) % 1000)
    value, grad = surface.value_and_grad(w)
    assert value.dtype == DTYPE and grad.shape == (64, 2)
    torch.testing.assert_close(value, surface.loss(w), rtol=1e-12, atol=1e-12)
    span = max(surface.xlim[1] - surface.xlim[0], surface.ylim[1] - surface.ylim[0])
    h = 1e-6 * span
    numeric = central_differences(surface, w, h)
    scale = grad.abs().amax(dim=1) + 1.0
    err = (grad - numeric).abs().amax(dim=1) / scale
    # Kinks (abs, relu): a finite difference straddling one is wrong; allow a few such points.
    bad = (err > 1e-5).sum().item()
    assert bad <= 2, f"{name}: {bad} points disagree, worst {err.max().item():.3g}"


def test_expression_surface_uses_forward_mode_gradient_without_autograd():
    surface = REGISTRY.get("rosenbrock")
    assert surface._value_and_grad_fn is not None
    w = torch.tensor([[1.5, -0.5], [0.0, 0.0]], dtype=DTYPE)
    _, grad = surface.value_and_grad(w)
    assert not grad.requires_grad
    x, y = w[:, 0], w[:, 1]
    expected = torch.stack((-2 * (1 - x) - 400 * x * (y - x**2), 200 * (y - x**2)), dim=1)
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["linear-regression", "logistic-regression", "perceptron"])
def test_data_surface_full_batch_stochastic_grad_is_the_full_gradient(name):
    surface = REGISTRY.get(name)
    w = random_points_in_view(surface, 5, seed=3)
    _, full = surface.value_and_grad(w)
    gen = torch.Generator().manual_seed(0)
    for batch in (surface.n, surface.n + 1, 10**6):
        assert torch.equal(surface.stochastic_grad(w, batch, 0.0, gen), full)


@pytest.mark.parametrize("name", ["linear-regression", "logistic-regression"])
def test_minibatch_gradients_average_to_the_full_gradient(name):
    surface = REGISTRY.get(name)
    w = torch.tensor([[-2.0, 1.0], [0.5, -3.0]], dtype=DTYPE)
    _, full = surface.value_and_grad(w)
    gen = torch.Generator().manual_seed(123)
    draws = torch.stack([surface.stochastic_grad(w, 8, 0.0, gen) for _ in range(4000)])
    mean, std = draws.mean(0), draws.std(0)
    # Each coordinate's sample mean is within 5 standard errors of the full gradient ...
    assert ((mean - full).abs() < 5 * std / math.sqrt(len(draws))).all()
    # ... and a single minibatch gradient really is noisy.
    assert (std > 1e-3).all()


def test_minibatch_gradients_are_seeded():
    surface = REGISTRY.get("linear-regression")
    w = torch.tensor([[0.0, 0.0]], dtype=DTYPE)
    a = surface.stochastic_grad(w, 4, 0.0, torch.Generator().manual_seed(7))
    b = surface.stochastic_grad(w, 4, 0.0, torch.Generator().manual_seed(7))
    c = surface.stochastic_grad(w, 4, 0.0, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_linear_regression_data_is_the_tutorials():
    surface = REGISTRY.get("linear-regression")
    assert surface.n == 1000 and surface.inputs.shape == (1000, 2)
    x = surface.inputs[:, 1]
    assert torch.equal(surface.inputs[:, 0], torch.ones(1000, dtype=DTYPE))
    assert x.min() >= -1 and x.max() <= 1
    residual = surface.targets - (-1.0 + 3.0 * x)
    assert abs(residual.std().item() - 0.05) < 0.005
    assert abs(residual.mean().item()) < 0.01
    (w0, w1), = surface.minima
    assert abs(w0 + 1) < 0.01 and abs(w1 - 3) < 0.02
    # the stated minimum is where the gradient vanishes, and its value is the residual variance
    _, grad = surface.value_and_grad(torch.tensor([[w0, w1]], dtype=DTYPE))
    assert grad.abs().max() < 1e-10
    assert abs(surface.min_value - 0.0025) < 0.0005


def test_hessian_info_saddle():
    info = hessian_info(REGISTRY.get("saddle"), (0.3, -0.7))
    assert info.eigenvalues == pytest.approx((-2.0, 2.0), abs=1e-9)  # central differences of the gradient
    assert info.kind == "saddle"
    assert info.stability_lr == pytest.approx(1.0)


def test_hessian_info_ill_conditioned_has_condition_number_100():
    info = hessian_info(REGISTRY.get("ill-conditioned"), (1.0, 2.0))
    lo, hi = info.eigenvalues
    assert (lo, hi) == pytest.approx((1.0, 100.0), rel=1e-8)
    assert hi / lo == pytest.approx(100.0)
    assert info.kind.startswith("minimum")
    assert info.stability_lr == pytest.approx(0.02)


def test_hessian_info_minimum_maximum_and_flat():
    bowl = hessian_info(surface_from_expr("3*x**2 + y**2"), (0.0, 0.0))
    assert bowl.eigenvalues == pytest.approx((2.0, 6.0)) and bowl.kind.startswith("minimum")
    cap = hessian_info(surface_from_expr("-(x**2 + 2*y**2)"), (1.0, 1.0))
    assert cap.eigenvalues == pytest.approx((-4.0, -2.0)) and cap.kind.startswith("maximum")
    assert cap.stability_lr is None
    flat = hessian_info(surface_from_expr("x**2"), (0.5, 0.5))
    assert flat.kind == "flat direction"


def test_hessian_of_rosenbrock_at_its_minimum():
    info = hessian_info(REGISTRY.get("rosenbrock"), (1.0, 1.0))
    # [[802, -400], [-400, 200]]
    tr, det = 1002.0, 802 * 200 - 400**2
    disc = math.sqrt(tr**2 / 4 - det)
    assert info.eigenvalues == pytest.approx((tr / 2 - disc, tr / 2 + disc), rel=1e-6)


GOOD = 'name = "my-bowl"\ndescription = "a bowl"\nexpr = "x**2 + 2*y**2"\nminima = [[0.0, 0.0]]\n'
BAD = 'name = "broken"\nexpr = "x**2 + foo(y)"\n'


def test_user_surfaces_from_a_surfaces_dir(tmp_path):
    (tmp_path / "bowl.toml").write_text(GOOD)
    (tmp_path / "broken.toml").write_text(BAD)
    (tmp_path / "notes.txt").write_text("not a surface")
    reg = SurfaceRegistry(extra_dirs=[tmp_path], include_user_dir=False)
    bowl = reg.get("my-bowl")
    assert bowl.origin == str(tmp_path / "bowl.toml")
    assert bowl.min_value == 0.0
    assert "broken" not in reg
    assert len(reg.errors) == 1 and "broken.toml" in reg.errors[0] and "foo" in reg.errors[0]
    # built-ins are still there
    assert "pathological" in reg


def test_user_surfaces_from_xdg_config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    folder = tmp_path / "sgdtui" / "surfaces"
    assert user_surface_dir() == folder
    folder.mkdir(parents=True)
    (folder / "bowl.toml").write_text(GOOD)
    (folder / "bad-syntax.toml").write_text("name = \n")
    reg = SurfaceRegistry()
    assert "my-bowl" in reg
    assert len(reg.errors) == 1 and "bad-syntax.toml" in reg.errors[0]
    assert "my-bowl" not in SurfaceRegistry(include_user_dir=False)


def test_missing_user_dir_is_fine_but_missing_extra_dir_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "nowhere"))
    assert "pathological" in SurfaceRegistry()
    with pytest.raises(SurfaceError, match="does not exist"):
        SurfaceRegistry(extra_dirs=[tmp_path / "missing"])


def test_unknown_surface_name_suggests():
    with pytest.raises(SurfaceError, match="did you mean 'rosenbrock'"):
        REGISTRY.get("rosenbrok")


def test_surface_from_expr():
    s = surface_from_expr("(x - 1)**2 + (y + 2)**2", xlim=(-4, 6), ylim=(-10, 0))
    assert isinstance(s, ExpressionSurface)
    assert s.xlim == (-4.0, 6.0) and s.ylim == (-10.0, 0.0)
    assert s.starts == ((-3.0, -1.0),)  # upper-left of the view
    w = torch.tensor([[1.0, -2.0], [0.0, 0.0]], dtype=DTYPE)
    torch.testing.assert_close(s.loss(w), torch.tensor([0.0, 5.0], dtype=DTYPE))
    _, g = s.value_and_grad(w)
    torch.testing.assert_close(g, torch.tensor([[0.0, 0.0], [-2.0, 4.0]], dtype=DTYPE))
    const = surface_from_expr("3")
    assert torch.equal(const.loss(w), torch.tensor([3.0, 3.0], dtype=DTYPE))
    with pytest.raises(SurfaceError, match="foo"):
        surface_from_expr("x + foo")
    with pytest.raises(SurfaceError, match="xlim"):
        surface_from_expr("x", xlim=(1, -1))


def test_noise_variance_scales_as_one_over_batch():
    s = REGISTRY.get("ill-conditioned")
    w = torch.zeros(20000, 2, dtype=DTYPE)
    for batch in (1, 16):
        g = s.stochastic_grad(w, batch, 2.0, torch.Generator().manual_seed(batch))
        var = g.var(0)
        assert np.allclose(var.numpy(), 4.0 / batch, rtol=0.05)
    # noise 0: exact gradient
    assert torch.equal(s.stochastic_grad(w[:3], 4, 0.0, torch.Generator()), torch.zeros(3, 2, dtype=DTYPE))


def test_surface_file_errors_name_file_and_key(tmp_path):
    p = tmp_path / "typo.toml"
    p.write_text('name = "t"\nexpr = "x"\nxlmi = [0, 1]\n')
    reg = SurfaceRegistry(extra_dirs=[tmp_path], include_user_dir=False)
    assert "typo.toml" in reg.errors[0] and "did you mean 'xlim'" in reg.errors[0]


def test_builtin_starts_are_inside_the_view():
    for s in REGISTRY:
        for x, y in s.starts:
            assert s.xlim[0] <= x <= s.xlim[1] and s.ylim[0] <= y <= s.ylim[1], s.name
    assert Path(REGISTRY.get("pathological").origin) == Path("built-in")


def test_the_hessian_read_out_matches_double_backward_on_every_surface():
    from sgdtui.engine.surfaces import SurfaceRegistry

    w = torch.tensor([[0.3, -0.7], [1.2, 2.0], [-4.0, 5.0]], dtype=torch.float64)
    for surface in SurfaceRegistry(include_user_dir=False):
        ours, exact = surface.hessian(w), surface.hessian_autograd(w)
        scale = float(exact.abs().max()) + 1e-12
        assert float((ours - exact).abs().max()) / scale < 1e-6, surface.name
