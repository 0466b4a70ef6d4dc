"""The frame caches of the plot panes and the surface view give the picture a fresh widget would
give, whenever what they cache changes (levels, view, size, theme), and the loss pane's capped
redraw while running never leaves old data on screen."""

from __future__ import annotations

import numpy as np
import torch
from textual.app import App, ComposeResult
from textual.containers import Horizontal

from sgdtui.engine.commands import Step
from sgdtui.engine.contours import contour_map
from sgdtui.ui.surface_panes import CURVES_FLUSH
from sgdtui.ui.view_base import ViewContext
from sgdtui.ui.widgets.contour import ContourPlot, Shading, TrajectoryView
from sgdtui.ui.widgets.loss import LossPlot

from tests.test_app import make_app, settle


def bowl(w: torch.Tensor) -> torch.Tensor:
    return w[:, 0] ** 2 + 0.5 * w[:, 1] ** 2


def saddle(w: torch.Tensor) -> torch.Tensor:
    return w[:, 0] ** 2 - w[:, 1] ** 2 + 3.0


def levels_of(loss, xlim, ylim):
    levels = contour_map(loss, xlim, ylim)
    shading = Shading(levels.xs, levels.ys, levels.band_index(levels.values), len(levels.bands) + 1)
    return levels.lines, shading


class TwinPlots(App):
    """Two contour panes of the same size: one keeps its caches, the other is fed afresh."""

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield ContourPlot(id="cached")
            yield ContourPlot(id="fresh")


def lane(steps: int) -> TrajectoryView:
    t = np.linspace(0, 1, steps)[:, None]
    path = 2.5 * (1 - t) * np.hstack([np.cos(20 * t), np.sin(20 * t)])
    return TrajectoryView("a", (230, 159, 0), (path,), path[-1:], np.array([False]), selected=True)


def picture(plot: ContourPlot):
    text = plot.render()
    strips = [[(segment.text, segment.style) for segment in plot.render_line(y)] for y in range(plot.size.height)]
    return text.plain, [(span.start, span.end, str(span.style)) for span in text.spans], strips


async def test_contour_caches_follow_levels_view_size_and_theme():
    app = TwinPlots()
    async with app.run_test(size=(120, 36)) as pilot:
        cached = app.query_one("#cached", ContourPlot)
        await pilot.pause()

        def feed(plot, key, loss, view, steps, title):
            lines, shading = levels_of(loss, *view)
            plot.set_levels(key, lines, *view, minima=np.zeros((1, 2)), shading=shading)
            plot.show([lane(steps)], title=title)

        async def same_as_fresh(key, loss, view, steps, title="t"):
            feed(cached, key, loss, view, steps, title)
            await app.query_one("#fresh").remove()
            fresh = ContourPlot(id="fresh")
            await app.query_one(Horizontal).mount(fresh)
            await pilot.pause()
            feed(fresh, key, loss, view, steps, title)
            await pilot.pause()
            cached.redraw_paths()  # paths drawn whole in both, so only the caches differ
            assert picture(cached) == picture(fresh)
            return picture(cached)

        bowl_view = ((-3.0, 3.0), (-3.0, 3.0))
        first = await same_as_fresh(("bowl", bowl_view), bowl, bowl_view, 200)
        await same_as_fresh(("bowl", bowl_view), bowl, bowl_view, 260)  # the path grew
        await same_as_fresh(("bowl", bowl_view), bowl, bowl_view, 260, title="a new title")  # new axes
        switched = await same_as_fresh(("saddle", bowl_view), saddle, bowl_view, 260)  # a surface switch
        assert switched[0] != first[0]
        zoomed = ((-1.5, 1.5), (-1.5, 1.5))
        await same_as_fresh(("saddle", zoomed), saddle, zoomed, 260)  # a view change
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        await same_as_fresh(("saddle", zoomed), saddle, zoomed, 260)
        dark = picture(cached)
        app.theme = "textual-light"
        await pilot.pause()
        light = await same_as_fresh(("saddle", zoomed), saddle, zoomed, 260)
        assert light[2] != dark[2]  # the theme's colours, not the cached dark ones


async def test_loss_pane_capped_while_running_still_shows_the_latest_data():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        view, loss = app.view, app.query_one("#loss", LossPlot)
        running = ViewContext(app.colours, app.selected, app.log_scale, True)

        def snapshot_after(steps: int):
            app.worker.submit(Step(steps))
            assert app.worker.wait_idle()
            return app.worker.latest.snapshot

        def steps_shown() -> int:
            return max(int(series.steps[-1]) for series in loss._series)

        view.show_snapshot(snapshot_after(3), running)
        drawn = steps_shown()
        later = snapshot_after(3)
        view.show_snapshot(later, running)  # within the cap: the pane waits for its slot
        assert steps_shown() == drawn
        app._frame_seq, app._dirty = app.worker.latest.seq, False  # the App's own ticks draw nothing new
        await pilot.pause(CURVES_FLUSH + 0.2)  # no frame came: the timer draws what waited
        assert steps_shown() == later.clock

        view.show_snapshot(snapshot_after(3), running)
        paused = snapshot_after(3)
        view.show_snapshot(paused, ViewContext(app.colours, app.selected, app.log_scale, False))
        assert steps_shown() == paused.clock  # paused: drawn at once

        view.show_snapshot(snapshot_after(3), running)
        other = next(name for name in paused.lane_names() if name != app.selected)
        selected = snapshot_after(3)
        view.show_snapshot(selected, ViewContext(app.colours, other, app.log_scale, True))
        assert steps_shown() == selected.clock  # a new selection: drawn at once, in bold
        assert next(series for series in loss._series if series.selected).name == other


class BoundaryPane(App):
    def compose(self) -> ComposeResult:
        from sgdtui.ui.widgets.boundary import DecisionBoundaryPlot

        yield DecisionBoundaryPlot(id="boundary")


async def test_the_boundary_shading_in_one_array_is_the_per_cell_blend():
    from sgdtui.ui.widgets.boundary import SURE, UNSURE, DecisionBoundaryPlot, class_colour
    from sgdtui.ui.widgets.plot_base import BraillePlot
    from sgdtui.ui.widgets.plotting import blend

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 40, 3)) * 3
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=2, keepdims=True)
    probabilities[0, 0] = (0.5, 0.25, 0.25)  # half-way values: rounding half to even must match
    points, labels = rng.uniform(-2, 2, size=(30, 2)), rng.integers(0, 3, size=30)
    app = BoundaryPane()
    async with app.run_test(size=(90, 30)) as pilot:
        plot = app.query_one(DecisionBoundaryPlot)
        plot.show_classes(probabilities, (-2.0, 2.0), (-2.0, 2.0), points, labels, data_key="d")
        await pilot.pause()
        plot.render_line(0)  # the frame is built: its canvas grid is known
        grid = plot.canvas[0]
        layer = plot._region_layer(grid)
        cols, rows = layer.cols, layer.rows
        assert len(cols) > 500
        # The reference: plotting.blend cell by cell, as the pane used to.
        xs, ys = grid.cell_centres(cols, rows)
        fx = (xs + 2.0) / 4.0 * 39
        fy = (ys + 2.0) / 4.0 * 39
        p = probabilities[np.clip(np.rint(fy), 0, 39).astype(int), np.clip(np.rint(fx), 0, 39).astype(int)]
        dark = plot._dark()
        palette = np.array([class_colour(k, dark) for k in range(3)], dtype=np.float64)
        strength = UNSURE + (SURE - UNSURE) * np.clip((p.max(axis=1) - 1 / 3) / (2 / 3), 0.0, 1.0)
        expected = [blend(tuple(int(round(v)) for v in colour), plot._background(), float(a))
                    for colour, a in zip(p @ palette, strength)]
        assert [tuple(row) for row in layer.backgrounds.tolist()] == expected
        # Painting the array gives the cells the ids the list of tuples gives.
        assert (BraillePlot._ids(plot, layer.backgrounds, len(expected))
                == BraillePlot._ids(plot, expected, len(expected))).all()
