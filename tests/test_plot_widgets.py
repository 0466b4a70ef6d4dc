"""ContourPlot and LossPlot mounted in a real (headless) Textual app."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from textual.app import App, ComposeResult
from textual.containers import Horizontal

from sgdtui.engine.contours import level_lines
from sgdtui.ui.widgets.contour import (
    CURRENT_MARKER,
    DIVERGED_MARKER,
    MINIMUM_MARKER,
    ContourPlot,
    TrajectoryView,
)
from sgdtui.ui.widgets.loss import LossPlot, LossSeries
from sgdtui.ui.widgets.plotting import PlotDataError

VIEW = ((-3.0, 3.0), (-3.0, 3.0))
BRAILLE = {chr(code) for code in range(0x2801, 0x2900)}


def bowl(w: torch.Tensor) -> torch.Tensor:
    return w[:, 0] ** 2 + 0.5 * w[:, 1] ** 2


LEVELS = level_lines(bowl, *VIEW, n_levels=8)


def spiral(steps: int, centre=(0.0, 0.0)) -> np.ndarray:
    t = np.linspace(0, 1, steps)[:, None]
    return np.array(centre) + 2.5 * (1 - t) * np.hstack([np.cos(25 * t), np.sin(25 * t)])


def lanes(steps: int = 2000) -> list[TrajectoryView]:
    calm = spiral(steps)
    blown = spiral(steps, (0.5, -0.5))
    blown[steps // 2 :] *= np.geomspace(1, 1e30, steps - steps // 2)[:, None]
    blown[-10:] = np.nan
    return [
        TrajectoryView("calm", "green+", (calm,), calm[-1:], np.array([False]), selected=True),
        TrajectoryView("blown", "red+", (blown,), blown[-1:], np.array([True])),
    ]


class PlotsApp(App):
    def compose(self) -> ComposeResult:
        with Horizontal():
            yield ContourPlot(id="contour")
            yield LossPlot(id="loss")


def plain(widget) -> str:
    return widget.render().plain


@pytest.mark.parametrize("size", [(80, 24), (40, 12)])
async def test_both_widgets_draw_diverged_and_empty_data(size):
    app = PlotsApp()
    async with app.run_test(size=size) as pilot:
        contour, loss = app.query_one(ContourPlot), app.query_one(LossPlot)
        contour.set_levels("bowl", LEVELS, *VIEW, minima=np.zeros((1, 2)))
        contour.show(lanes(), title="race")
        steps = np.arange(2000)
        values = np.exp(-steps / 500.0)
        values[100] = -1.0  # non-positive on a log scale
        values[200] = np.nan
        loss.show(
            [LossSeries("calm", "green+", steps, values, True), LossSeries("blown", "red+", steps, values * 10, False)],
            log_scale=True,
        )
        await pilot.pause()
        contour_text, loss_text = plain(contour), plain(loss)
        assert BRAILLE & set(contour_text)
        assert DIVERGED_MARKER in contour_text
        assert CURRENT_MARKER in contour_text  # the selected lane's marker (drawn reversed)
        assert BRAILLE & set(loss_text)
        assert "loss (log)" in loss_text
        assert app.export_screenshot()  # the whole screen renders too

        contour.show([])
        loss.show([], log_scale=False)
        await pilot.pause()
        assert plain(contour).strip() and plain(loss).strip()  # axes, no data, no error
        assert DIVERGED_MARKER not in plain(contour)
        # All-NaN data draw an empty frame as well.
        nan_lane = TrajectoryView("nan", "cyan", (np.full((5, 2), np.nan),), np.full((1, 2), np.nan), np.array([True]))
        contour.show([nan_lane])
        loss.show([LossSeries("nan", "cyan", np.arange(5), np.full(5, np.nan))], log_scale=True)
        await pilot.pause()
        assert plain(contour).strip() and plain(loss).strip()


async def test_level_lines_are_rasterised_once_per_key_and_pane_size():
    app = PlotsApp()
    async with app.run_test(size=(80, 24)) as pilot:
        contour = app.query_one(ContourPlot)
        contour.set_levels("bowl", LEVELS, *VIEW)
        contour.show(lanes())
        await pilot.pause()
        first_text = plain(contour)
        baseline = contour.level_point_builds  # once per pane size seen while the layout settled
        assert baseline >= 1
        for length in (500, 1000, 1500):
            contour.show(lanes(length))
            contour.render()
        contour.set_levels("bowl", LEVELS, *VIEW)
        contour.render()
        assert contour.level_point_builds == baseline
        contour.set_levels("other", LEVELS[:2], *VIEW)
        contour.render()
        assert contour.level_point_builds == baseline + 1
        # Back to the first key: served from the cache again.
        contour.set_levels("bowl", LEVELS, *VIEW)
        contour.show(lanes())
        assert plain(contour) == first_text
        assert contour.level_point_builds == baseline + 1


async def test_render_rebuilds_only_after_a_change():
    app = PlotsApp()
    async with app.run_test(size=(80, 24)) as pilot:
        contour = app.query_one(ContourPlot)
        contour.set_levels("bowl", LEVELS, *VIEW)
        await pilot.pause()
        contour.render()
        before = contour.draw_count
        contour.render()
        contour.render()
        assert contour.draw_count == before
        contour.show(lanes())
        contour.render()
        assert contour.draw_count == before + 1


async def test_frame_points_are_bounded_by_the_pane_not_the_run_length():
    app = PlotsApp()
    async with app.run_test(size=(80, 24)) as pilot:
        contour = app.query_one(ContourPlot)
        contour.set_levels("bowl", LEVELS, *VIEW)
        await pilot.pause()
        counts = []
        for steps in (1_000, 100_000):
            contour.show(lanes(steps))
            contour.render()
            counts.append(contour.last_frame_points)
        width, height = contour.size
        layers = 1 + 2 + 2 * 2 + 1  # levels, two lanes' paths, their markers, minima
        assert counts[1] <= width * height * layers
        assert counts[1] <= 1.5 * counts[0]


async def test_growing_history_draws_the_same_as_drawing_it_at_once():
    app = PlotsApp()
    async with app.run_test(size=(80, 24)) as pilot:
        contour = app.query_one(ContourPlot)
        contour.set_levels("bowl", LEVELS, *VIEW)
        await pilot.pause()
        full = lanes(3000)
        contour.show(full)
        reference = plain(contour)
        fresh = lanes(3000)
        for length in (10, 700, 2999, 3000):
            grown = [
                TrajectoryView(v.name, v.color, (v.paths[0][:length],), v.paths[0][length - 1 : length], v.diverged, v.selected)
                for v in fresh
            ]
            contour.show(grown)
            contour.render()
        assert plain(contour) == reference
        # A rewritten history (same lane name, different points) is redrawn from scratch.
        shifted = [TrajectoryView(v.name, v.color, (v.paths[0] + 0.7,), v.current, v.diverged, v.selected) for v in full]
        contour.show(shifted)
        changed = plain(contour)
        other = PlotsApp()
        async with other.run_test(size=(80, 24)) as other_pilot:
            clean = other.query_one(ContourPlot)
            clean.set_levels("bowl", LEVELS, *VIEW)
            clean.show(shifted)
            await other_pilot.pause()
            assert plain(clean) == changed


async def test_markers_for_minima_and_unselected_current_points():
    app = PlotsApp()
    async with app.run_test(size=(80, 24)) as pilot:
        contour = app.query_one(ContourPlot)
        contour.set_levels("bowl", LEVELS, *VIEW, minima=np.array([[2.0, 2.0]]))
        path = spiral(100, (-1.0, -1.0))
        contour.show([TrajectoryView("a", "blue+", (path,), path[-1:], np.array([False]))])
        await pilot.pause()
        text = plain(contour)
        assert MINIMUM_MARKER in text and CURRENT_MARKER in text
        with pytest.raises(PlotDataError, match="diverged"):
            contour.show([TrajectoryView("a", "blue+", (path,), path[-2:], np.array([False]))])
        with pytest.raises(ValueError, match="xlim"):
            contour.set_view((1.0, 1.0), (0.0, 1.0))


async def test_tiny_pane_draws_nothing_without_error():
    app = PlotsApp()
    async with app.run_test(size=(12, 4)) as pilot:
        contour, loss = app.query_one(ContourPlot), app.query_one(LossPlot)
        contour.set_levels("bowl", LEVELS, *VIEW)
        contour.show(lanes())
        loss.show([LossSeries("a", "red", np.arange(3), np.ones(3))], log_scale=False)
        await pilot.pause()
        assert contour.size.width < ContourPlot.MIN_WIDTH or contour.size.height < ContourPlot.MIN_HEIGHT
        assert plain(contour) == ""
        assert plain(loss) == ""


async def test_loss_plot_linear_scale_labels_and_legend():
    app = PlotsApp()
    async with app.run_test(size=(120, 30)) as pilot:
        loss = app.query_one(LossPlot)
        loss.show_legend = True  # in the canvas (the playground puts its legend beside the pane)
        steps = np.arange(50_000)
        loss.show(
            [
                LossSeries("train", "blue+", steps, 1.0 / (1 + steps / 1000.0)),
                LossSeries("val", "orange+", steps, 1.2 / (1 + steps / 1000.0), selected=True),
            ],
            log_scale=False,
            title="mlp",
            y_label="accuracy",
        )
        await pilot.pause()
        text = plain(loss)
        assert "mlp · accuracy" in text
        assert "▬ train" in text and "▬ val" in text
        width, height = loss.size
        assert 0 < loss.last_frame_points <= 2 * width * height
        with pytest.raises(PlotDataError, match="train"):
            loss.show([LossSeries("train", "blue", np.arange(3), np.ones(4))], log_scale=False)
