"""Level lines (engine) and the pure plotting helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgdtui.engine.contours import ContourError, LevelLine, choose_levels, grid_values, level_lines
from sgdtui.ui.widgets.plotting import (
    CanvasGrid,
    PlotDataError,
    braille_cells,
    clip_segments,
    decimate_path,
    decimate_series,
    dot_mask,
    log_safe,
    mask_cells,
    rasterize_polyline,
)


def bowl(w: torch.Tensor) -> torch.Tensor:
    return w[:, 0] ** 2 + w[:, 1] ** 2


def pathological(w: torch.Tensor) -> torch.Tensor:
    return torch.tanh(w[:, 0]) ** 2 + 0.01 * w[:, 1].abs() + torch.sigmoid(w[:, 1])


# ---- level lines -------------------------------------------------------------------------------


def test_circles_of_a_bowl_have_radius_sqrt_level():
    lines = level_lines(bowl, (-2, 2), (-2, 2), resolution=161, n_levels=6)
    assert len(lines) == 6
    assert [line.level for line in lines] == sorted(line.level for line in lines)
    for line in lines:
        assert isinstance(line, LevelLine)
        vertices = np.concatenate(line.segments)
        radii = np.hypot(vertices[:, 0], vertices[:, 1])
        np.testing.assert_allclose(radii, np.sqrt(line.level), atol=2e-3)


def test_grid_is_evaluated_in_one_batched_call_with_float64():
    calls = []

    def counting(w: torch.Tensor) -> torch.Tensor:
        calls.append((tuple(w.shape), w.dtype))
        return bowl(w)

    xs, ys, values = grid_values(counting, (-1, 1), (0, 3), resolution=30)
    assert calls == [((900, 2), torch.float64)]
    assert values.shape == (30, 30)
    # Row index is y, column index is x.
    assert values[0, -1] == pytest.approx(xs[-1] ** 2 + ys[0] ** 2)


def test_log_levels_crowd_towards_the_minimum_and_quantiles_cover_flat_surfaces():
    lines = level_lines(bowl, (-2, 2), (-2, 2), n_levels=8, log_levels=True, min_value=0.0)
    levels = np.array([line.level for line in lines])
    ratios = levels[1:] / levels[:-1]
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)  # geometric spacing above min 0
    flat = level_lines(pathological, (-4, 4), (-4, 4), n_levels=12)
    assert len(flat) >= 10  # nearly flat plateau still shows structure


def test_non_finite_grid_values_are_ignored():
    def holey(w: torch.Tensor) -> torch.Tensor:
        values = bowl(w)
        return torch.where(w[:, 0] > 1.0, torch.full_like(values, float("nan")), values)

    lines = level_lines(holey, (-2, 2), (-2, 2), n_levels=5)
    assert lines
    for line in lines:
        for segment in line.segments:
            assert np.isfinite(segment).all()
            assert segment[:, 0].max() <= 1.0 + 4 / 119


def test_constant_surface_has_no_lines_and_bad_input_is_refused():
    assert level_lines(lambda w: torch.zeros(len(w), dtype=w.dtype), (-1, 1), (-1, 1)) == []
    assert choose_levels(np.array([np.nan, np.inf])).size == 0
    with pytest.raises(ContourError, match="xlim"):
        level_lines(bowl, (1, -1), (-1, 1))
    with pytest.raises(ContourError, match="resolution"):
        level_lines(bowl, (-1, 1), (-1, 1), resolution=1)
    with pytest.raises(ContourError, match="shape"):
        level_lines(lambda w: w, (-1, 1), (-1, 1))
    with pytest.raises(ValueError, match="n_levels"):
        level_lines(bowl, (-1, 1), (-1, 1), n_levels=0)


# ---- decimation --------------------------------------------------------------------------------


def spiral(steps: int) -> np.ndarray:
    t = np.linspace(0, 1, steps)[:, None]
    return np.hstack([np.cos(30 * t), np.sin(30 * t)]) * (1 - t)


def test_decimate_path_keeps_endpoints_and_shrinks_a_long_path():
    path = spiral(100_000)
    kept = decimate_path(path, (-1, 1), (-1, 1), cols=80, rows=24)
    np.testing.assert_array_equal(kept[0], path[0])
    np.testing.assert_array_equal(kept[-1], path[-1])
    assert len(kept) < 5_000
    assert len(kept) <= 80 * 24 * 8
    # Every kept point is a point of the path, in order.
    position = {tuple(row): i for i, row in enumerate(path.tolist())}
    original = [position[tuple(row)] for row in kept.tolist()]
    assert original == sorted(original)


def test_decimate_path_bounds_a_noisy_path_by_the_pane_dot_count():
    rng = np.random.default_rng(0)
    noisy = rng.normal(size=(200_000, 2))  # jumps between dots on every step
    kept = decimate_path(noisy, (-3, 3), (-3, 3), cols=40, rows=12)
    assert len(kept) <= 40 * 12 * 8
    np.testing.assert_array_equal(kept[0], noisy[0])
    np.testing.assert_array_equal(kept[-1], noisy[-1])


def test_decimate_path_handles_nan_inf_and_huge_values():
    path = np.array([[0.0, 0.0], [0.5, 0.5], [np.nan, 1.0], [np.inf, 0.0], [1e30, 1e30], [1e308, -1e308], [0.2, 0.1]])
    kept = decimate_path(path, (-1, 1), (-1, 1), cols=20, rows=10)
    assert np.isfinite(kept).all()
    np.testing.assert_array_equal(kept[0], [0.0, 0.0])
    np.testing.assert_array_equal(kept[-1], [0.2, 0.1])
    assert np.abs(kept).max() <= 1e7  # far points pulled in, direction kept
    far = kept[np.abs(kept).max(axis=1) > 10]
    assert np.allclose(far[0, 0], far[0, 1])  # 1e30,1e30 stays on the diagonal
    assert decimate_path(np.full((5, 2), np.nan), (-1, 1), (-1, 1), 10, 5).shape == (0, 2)
    with pytest.raises(PlotDataError, match="shape"):
        decimate_path(np.zeros((4, 3)), (-1, 1), (-1, 1), 10, 5)


def test_rasterized_line_to_a_diverged_point_is_clipped_and_cheap():
    grid = CanvasGrid((-1, 1), (-1, 1), 40, 20)
    dots = rasterize_polyline(np.array([[0.0, 0.0], [1e30, 0.0]]), grid)
    # A horizontal ray from the centre to the right border: one dot per dot-column, no more.
    assert len(dots) <= grid.dot_cols // 2 + 2
    assert dots[:, 0].max() == grid.dot_cols - 1
    assert len(np.unique(dots[:, 1])) == 1
    assert len(rasterize_polyline(np.array([[5.0, 5.0], [6.0, 7.0]]), grid)) == 0  # fully outside


def test_clip_segments_matches_the_box():
    starts = np.array([[-1.0, 0.5], [0.2, 0.2], [2.0, 2.0]])
    ends = np.array([[2.0, 0.5], [0.8, 0.8], [3.0, 3.0]])
    clipped_starts, clipped_ends, visible = clip_segments(starts, ends, np.zeros(2), np.ones(2))
    assert visible.tolist() == [True, True, False]
    np.testing.assert_allclose(clipped_starts[0], [0.0, 0.5])
    np.testing.assert_allclose(clipped_ends[0], [1.0, 0.5])
    np.testing.assert_allclose(clipped_ends[1], [0.8, 0.8])


def test_braille_cells_and_mask_cells_agree_and_use_one_glyph_per_cell():
    grid = CanvasGrid((-1, 1), (-1, 1), 30, 10)
    dots = rasterize_polyline(spiral(5000), grid)
    cells = braille_cells(dots, grid)
    from_mask = mask_cells(dot_mask(dots, grid), grid)
    assert len(cells) == len(set(zip(cells.cols.tolist(), cells.rows.tolist())))
    assert sorted(zip(cells.cols.tolist(), cells.rows.tolist(), cells.glyphs)) == sorted(
        zip(from_mask.cols.tolist(), from_mask.rows.tolist(), from_mask.glyphs)
    )
    assert len(cells) <= grid.cols * grid.rows
    # Bottom-left dot of cell (0, 0) is braille dot 7; the top-right dot of a cell is dot 4.
    single = braille_cells(np.array([[0, 0], [1, 3]]), grid)
    assert single.glyphs == [chr(0x2800 + 0x40 + 0x08)]


def test_decimate_series_keeps_spikes_endpoints_and_skips_non_finite():
    steps = np.arange(100_000)
    values = np.exp(-steps / 30_000.0)
    values[41_234] = 50.0  # a spike
    values[77_777] = -3.0  # a dip
    values[500] = np.nan
    values[501] = np.inf
    kept_steps, kept_values = decimate_series(steps, values, max_points=300)
    assert len(kept_steps) <= 300
    assert kept_steps[0] == 0 and kept_steps[-1] == 99_999
    assert 50.0 in kept_values and -3.0 in kept_values
    assert np.isfinite(kept_values).all()
    assert np.all(np.diff(kept_steps) > 0)
    short_steps, short_values = decimate_series([0, 1, 2], [1.0, np.nan, 3.0], 10)
    assert short_steps.tolist() == [0, 2] and short_values.tolist() == [1.0, 3.0]
    with pytest.raises(PlotDataError, match="same length"):
        decimate_series([1, 2], [1.0], 10)


def test_log_safe_turns_non_positive_into_nan():
    logged = log_safe(np.array([100.0, 0.0, -1.0, np.inf, 1e-3]))
    assert logged[0] == pytest.approx(2.0) and logged[4] == pytest.approx(-3.0)
    assert np.isnan(logged[1:4]).all()
