"""The decision-boundary pane (MLP mode): the selected lane's prediction over the training data.

Classification: every canvas cell gets a faint ``·`` in the colour of the class the network
predicts at the cell's centre (looked up in the snapshot's probability grid), and the training
points are painted on top as braille dots, one bright colour per class. Regression (1-D
inputs): the points as braille dots and the network's fit as a braille curve.

The data points never change during a run, so their braille cells are cached per
(data key, canvas grid); a frame then costs one argmax over the prediction grid plus painting
O(pane cells), whatever the dataset size.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

import numpy as np

from sgdtui.ui.widgets.plot_base import BraillePlot, CellLayer, PlotColor, cells_layer
from sgdtui.ui.widgets.plotting import (
    CanvasGrid,
    PlotDataError,
    braille_cells,
    check_limits,
    rasterize_points,
    rasterize_polyline,
)

# (region colour, point colour) per class: xterm-256 colours, dim for regions and bright for points.
CLASS_COLOURS: tuple[tuple[int, int], ...] = (
    (24, 51), (94, 214), (22, 46), (90, 201), (100, 226), (18, 33), (88, 196), (240, 255),
)
REGION_GLYPH = "·"
POINT_COLOUR = 250  # regression data points
FIT_COLOUR = "cyan+"


def class_colours(index: int) -> tuple[int, int]:
    return CLASS_COLOURS[index % len(CLASS_COLOURS)]


class DecisionBoundaryPlot(BraillePlot):
    """Predicted class regions (or a regression fit) of one lane, with the data points on top."""

    POINT_CACHE_SIZE = 8

    def __init__(self, *, name: str | None = None, id: str | None = None,  # noqa: A002 - Textual's name
                 classes: str | None = None, disabled: bool = False) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.point_layer_builds = 0  # data-point rasterisations (cache misses)
        self._kind = "classification"
        self._title = ""
        self._xlim: tuple[float, float] = (-1.0, 1.0)
        self._ylim: tuple[float, float] = (-1.0, 1.0)
        self._grid: np.ndarray | None = None
        self._points = np.empty((0, 2))
        self._labels = np.empty(0, dtype=np.int64)
        self._data_key: Hashable = None
        self._fit_colour: PlotColor = FIT_COLOUR
        self._point_cache: OrderedDict[tuple, list[CellLayer]] = OrderedDict()

    def show_classes(self, probabilities: np.ndarray | None, xlim, ylim, points: np.ndarray, labels: np.ndarray,
                     *, data_key: Hashable, title: str = "") -> None:
        """Class regions from ``probabilities[res_y, res_x, C]`` over ``xlim x ylim``, points coloured by label.

        ``data_key`` names the data set: the points' braille cells are cached under it.
        """
        if probabilities is not None and np.ndim(probabilities) != 3:
            raise PlotDataError(f"probabilities must have shape (res, res, classes), got {np.shape(probabilities)}")
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
            raise PlotDataError(f"points must be (n, 2) with one label each, got {points.shape} and {np.shape(labels)}")
        self._kind = "classification"
        self._set_common(xlim, ylim, points, data_key, title)
        self._labels = np.asarray(labels, dtype=np.int64).ravel()
        self._grid = None if probabilities is None else np.asarray(probabilities)
        self._data_changed()

    def show_fit(self, fit: np.ndarray | None, xlim, ylim, x: np.ndarray, y: np.ndarray, *, data_key: Hashable,
                 title: str = "", colour: PlotColor = FIT_COLOUR) -> None:
        """A 1-D regression: ``fit[res]`` at ``linspace(*xlim, res)`` over the points (x, y)."""
        x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise PlotDataError(f"x and y must have the same length, got {x.shape} and {y.shape}")
        if fit is not None and np.ndim(fit) != 1:
            raise PlotDataError(f"fit must have shape (res,), got {np.shape(fit)}")
        self._kind = "regression"
        self._set_common(xlim, ylim, np.stack([x, y], axis=1), data_key, title)
        self._grid = None if fit is None else np.asarray(fit, dtype=np.float64)
        self._fit_colour = colour
        self._data_changed()

    def _set_common(self, xlim, ylim, points: np.ndarray, data_key: Hashable, title: str) -> None:
        self._xlim, self._ylim = check_limits("xlim", xlim), check_limits("ylim", ylim)
        self._points, self._title = points, title
        if data_key != self._data_key:
            self._data_key = data_key
            self._point_cache.clear()

    def _prepare_axes(self, width: int, height: int) -> tuple[tuple[float, float], tuple[float, float]]:
        self._set_axes(width, height, self._xlim, self._ylim, self._title)
        return self._xlim, self._ylim

    def _layers(self, grid: CanvasGrid) -> list[CellLayer]:
        if self._kind == "regression":
            layers = list(self._point_layers(grid))
            if self._grid is not None and len(self._grid) >= 2:
                xs = np.linspace(*self._xlim, len(self._grid))
                curve = rasterize_polyline(np.stack([xs, self._grid], axis=1), grid)
                layers.append(cells_layer(braille_cells(curve, grid), self._fit_colour, "bold"))
            return layers
        return [self._region_layer(grid), *self._point_layers(grid)]

    def _region_layer(self, grid: CanvasGrid) -> CellLayer:
        """One dim ``·`` per canvas cell in the colour of the class predicted at its centre."""
        probabilities = self._grid
        empty = np.empty(0, dtype=np.int64)
        if probabilities is None or probabilities.size == 0:
            return CellLayer(empty, empty, REGION_GLYPH, 0)
        cols, rows = np.meshgrid(np.arange(grid.cols), np.arange(grid.rows), indexing="ij")
        cols, rows = cols.ravel(), rows.ravel()
        xs, ys = grid.cell_centres(cols, rows)
        res_y, res_x = probabilities.shape[:2]
        # Nearest prediction-grid node; cells outside the prediction grid are left blank.
        fx = (xs - self._xlim[0]) / (self._xlim[1] - self._xlim[0]) * (res_x - 1)
        fy = (ys - self._ylim[0]) / (self._ylim[1] - self._ylim[0]) * (res_y - 1)
        inside = (fx > -0.5) & (fx < res_x - 0.5) & (fy > -0.5) & (fy < res_y - 0.5)
        ix = np.clip(np.rint(fx[inside]), 0, res_x - 1).astype(np.int64)
        iy = np.clip(np.rint(fy[inside]), 0, res_y - 1).astype(np.int64)
        predicted = np.argmax(probabilities[iy, ix], axis=1)
        colours = [class_colours(int(c))[0] for c in predicted]
        return CellLayer(cols[inside], rows[inside], REGION_GLYPH, colours)

    def _point_layers(self, grid: CanvasGrid) -> list[CellLayer]:
        key = (grid,)
        cached = self._point_cache.get(key)
        if cached is not None:
            self._point_cache.move_to_end(key)
            return cached
        self.point_layer_builds += 1
        layers = []
        if self._kind == "regression":
            dots = rasterize_points(self._points, grid)
            layers.append(cells_layer(braille_cells(dots, grid), POINT_COLOUR))
        else:
            for label in np.unique(self._labels):
                dots = rasterize_points(self._points[self._labels == label], grid)
                layers.append(cells_layer(braille_cells(dots, grid), class_colours(int(label))[1], "bold"))
        self._point_cache[key] = layers
        while len(self._point_cache) > self.POINT_CACHE_SIZE:
            self._point_cache.popitem(last=False)
        return layers
