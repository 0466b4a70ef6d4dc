"""The decision-boundary pane (MLP mode): the selected lane's prediction over the data.

Classification: every canvas cell's background is shaded by the predicted class probabilities at
its centre (the classes' colours mixed by probability, stronger where the network is sure), so the
boundary is where the shading changes hue; the training points are braille dots in their class's
bright colour and the validation points ``+`` marks, so the two are told apart. Regression (1-D
inputs): the points (training dots, validation ``+``) and the network's fit as a braille curve.

The data points never change during a run, so their cells are cached per (data key, canvas grid,
theme); a frame then costs one pass over the prediction grid plus painting O(pane cells).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Hashable

import numpy as np
from textual.color import Color

from sgdtui.ui.widgets.plot_base import BraillePlot, CellLayer, PlotColor, cells_layer, marker_layer
from sgdtui.ui.widgets.plotting import (
    OKABE_ITO,
    CanvasGrid,
    PlotDataError,
    braille_cells,
    check_limits,
    rasterize_points,
    rasterize_polyline,
)

CLASS_COLOURS = OKABE_ITO  # (on dark, on light) per class, colour-blind safe
VALIDATION_MARKER = "+"
# Shading opacity: a sure prediction shows its class clearly, an unsure one fades to the background.
SURE, UNSURE = 0.42, 0.08


def class_colour(index: int, dark: bool) -> tuple[int, int, int]:
    on_dark, on_light = CLASS_COLOURS[index % len(CLASS_COLOURS)]
    return on_dark if dark else on_light


class DecisionBoundaryPlot(BraillePlot):
    """Predicted class probabilities (or a regression fit) of one lane, with the data points on top."""

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
        self._val_points = np.empty((0, 2))
        self._val_labels = np.empty(0, dtype=np.int64)
        self._data_key: Hashable = None
        self._fit_colour: PlotColor = (86, 180, 233)
        self._point_cache: OrderedDict[tuple, list[CellLayer]] = OrderedDict()

    def show_classes(self, probabilities: np.ndarray | None, xlim, ylim, points: np.ndarray, labels: np.ndarray,
                     *, data_key: Hashable, title: str = "", val_points: np.ndarray | None = None,
                     val_labels: np.ndarray | None = None) -> None:
        """Class probabilities ``probabilities[res_y, res_x, C]`` over ``xlim x ylim`` as shading,
        training points (and validation points) coloured by label.

        ``data_key`` names the data set: the points' cells are cached under it.
        """
        if probabilities is not None and np.ndim(probabilities) != 3:
            raise PlotDataError(f"probabilities must have shape (res, res, classes), got {np.shape(probabilities)}")
        points = np.asarray(points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
            raise PlotDataError(f"points must be (n, 2) with one label each, got {points.shape} and {np.shape(labels)}")
        self._kind = "classification"
        val = np.empty((0, 2)) if val_points is None else np.asarray(val_points, dtype=np.float64).reshape(-1, 2)
        self._set_common(xlim, ylim, points, val, data_key, title)
        self._labels = np.asarray(labels, dtype=np.int64).ravel()
        self._val_labels = np.empty(0, dtype=np.int64) if val_labels is None else np.asarray(val_labels, np.int64).ravel()
        self._grid = None if probabilities is None else np.asarray(probabilities)
        self._data_changed()

    def show_fit(self, fit: np.ndarray | None, xlim, ylim, x: np.ndarray, y: np.ndarray, *, data_key: Hashable,
                 title: str = "", colour: PlotColor = (86, 180, 233), val_x: np.ndarray | None = None,
                 val_y: np.ndarray | None = None) -> None:
        """A 1-D regression: ``fit[res]`` at ``linspace(*xlim, res)`` over the points (x, y)."""
        x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
        if x.shape != y.shape:
            raise PlotDataError(f"x and y must have the same length, got {x.shape} and {y.shape}")
        if fit is not None and np.ndim(fit) != 1:
            raise PlotDataError(f"fit must have shape (res,), got {np.shape(fit)}")
        self._kind = "regression"
        val = np.empty((0, 2)) if val_x is None else np.stack([np.ravel(val_x), np.ravel(val_y)], axis=1)
        self._set_common(xlim, ylim, np.stack([x, y], axis=1), val, data_key, title)
        self._grid = None if fit is None else np.asarray(fit, dtype=np.float64)
        self._fit_colour = colour
        self._data_changed()

    def _set_common(self, xlim, ylim, points: np.ndarray, val_points: np.ndarray, data_key: Hashable,
                    title: str) -> None:
        self._xlim, self._ylim = check_limits("xlim", xlim), check_limits("ylim", ylim)
        self._points, self._val_points, self._title = points, val_points, title
        if data_key != self._data_key:
            self._data_key = data_key
            self._point_cache.clear()

    def _dark(self) -> bool:
        return bool(self.app.current_theme.dark)

    def _background(self) -> tuple[int, int, int]:
        return Color.parse(self.app.current_theme.background or ("#1e1e1e" if self._dark() else "#ffffff")).rgb

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
        """Each canvas cell's background: the class colours mixed by the predicted probabilities at
        its centre, over the theme's background, more opaque the surer the prediction."""
        probabilities = self._grid
        empty = np.empty(0, dtype=np.int64)
        if probabilities is None or probabilities.size == 0:
            return CellLayer(empty, empty, None, None, backgrounds=[])
        cols, rows = np.meshgrid(np.arange(grid.cols), np.arange(grid.rows), indexing="ij")
        cols, rows = cols.ravel(), rows.ravel()
        xs, ys = grid.cell_centres(cols, rows)
        res_y, res_x, n_classes = probabilities.shape
        # Nearest prediction-grid node; cells outside the prediction grid are left unshaded.
        fx = (xs - self._xlim[0]) / (self._xlim[1] - self._xlim[0]) * (res_x - 1)
        fy = (ys - self._ylim[0]) / (self._ylim[1] - self._ylim[0]) * (res_y - 1)
        inside = (fx > -0.5) & (fx < res_x - 0.5) & (fy > -0.5) & (fy < res_y - 0.5)
        ix = np.clip(np.rint(fx[inside]), 0, res_x - 1).astype(np.int64)
        iy = np.clip(np.rint(fy[inside]), 0, res_y - 1).astype(np.int64)
        p = probabilities[iy, ix]  # (cells, C)
        dark = self._dark()
        palette = np.array([class_colour(k, dark) for k in range(n_classes)], dtype=np.float64)
        mixed = p @ palette  # the expected colour under the predicted distribution
        # How sure: 0 at uniform, 1 at one class (normalised so it reads the same for any C).
        sure = (p.max(axis=1) - 1.0 / n_classes) / (1.0 - 1.0 / n_classes) if n_classes > 1 else np.ones(len(p))
        strength = UNSURE + (SURE - UNSURE) * np.clip(sure, 0.0, 1.0)
        bg = np.asarray(self._background(), dtype=np.float64)
        # plotting.blend for every cell at once (the same float64 steps, rounded half to even too)
        backgrounds = np.rint(bg + strength[:, None] * (np.rint(mixed) - bg)).astype(np.int64)
        return CellLayer(cols[inside], rows[inside], None, None, backgrounds=backgrounds)

    def _point_layers(self, grid: CanvasGrid) -> list[CellLayer]:
        dark = self._dark()
        key = (grid, dark)
        cached = self._point_cache.get(key)
        if cached is not None:
            self._point_cache.move_to_end(key)
            return cached
        self.point_layer_builds += 1
        layers = []
        grey = (200, 200, 200) if dark else (70, 70, 70)
        if self._kind == "regression":
            layers.append(cells_layer(braille_cells(rasterize_points(self._points, grid), grid), grey))
            layers.append(marker_layer(self._val_points, grid, VALIDATION_MARKER, grey))
        else:
            for label in np.unique(self._labels):
                dots = rasterize_points(self._points[self._labels == label], grid)
                layers.append(cells_layer(braille_cells(dots, grid), class_colour(int(label), dark), "bold"))
            for label in np.unique(self._val_labels):
                layers.append(marker_layer(self._val_points[self._val_labels == label], grid, VALIDATION_MARKER,
                                           class_colour(int(label), dark), "bold"))
        self._point_cache[key] = layers
        while len(self._point_cache) > self.POINT_CACHE_SIZE:
            self._point_cache.popitem(last=False)
        return layers
