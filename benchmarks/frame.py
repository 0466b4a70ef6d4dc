"""Frame time of the contour pane: ContourPlot versus a naive full plotext replot.

A frame is ``show(...)`` plus ``render()`` (render is where plotext builds the
figure), measured headlessly inside ``App.run_test`` at a 160x48 terminal with
the plot filling the screen. Data: the pathological surface
``tanh(x)**2 + 0.01*|y| + sigmoid(y)`` and 4 synthetic lanes spiralling into
points, one of them diverging. Each timed frame shows histories one step longer
than the last, as during a run.

The naive baseline hands plotext every level-line vertex and every history
point each frame (``plt.plot`` with braille markers, no caching, no decimation),
which is what a straightforward widget would do.

Run: ``python benchmarks/frame.py [--frames 50] [--steps 1000 10000 100000]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from textual.app import App, ComposeResult
from textual_plotext import PlotextPlot

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sgdtui.engine.contours import level_lines  # noqa: E402
from sgdtui.ui.widgets.contour import ContourPlot, TrajectoryView  # noqa: E402

SIZE = (160, 48)
XLIM, YLIM = (-4.0, 4.0), (-4.0, 4.0)
LANE_COLOURS = ("red+", "green+", "cyan+", "magenta+")


def pathological_loss(w: torch.Tensor) -> torch.Tensor:
    """tanh(x)^2 + 0.01|y| + sigmoid(y): a flat plateau, a steep valley, a slow slope."""
    x, y = w[:, 0], w[:, 1]
    return torch.tanh(x) ** 2 + 0.01 * y.abs() + torch.sigmoid(y)


def synthetic_lanes(steps: int) -> list[np.ndarray]:
    """Four (steps, 2) histories: noisy spirals into different points; the last one diverges."""
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    lanes = []
    for index in range(4):
        target = np.array([[-2.0 + 1.3 * index, -1.0 + 0.6 * index]])
        radius = 3.0 * (1.0 - t) ** 2
        angle = (8 + 3 * index) * np.pi * t
        path = target + radius * np.hstack([np.cos(angle), np.sin(angle)])
        path = path + rng.normal(scale=0.02, size=path.shape)
        lanes.append(path)
    blowup = lanes[3]
    half = steps // 2
    blowup[half:] = blowup[half:] * np.geomspace(1.0, 1e30, steps - half)[:, None]
    blowup[int(steps * 0.9):] = np.nan
    return lanes


def views_at(lanes: list[np.ndarray], length: int, selected: int = 0) -> list[TrajectoryView]:
    views = []
    for index, lane in enumerate(lanes):
        path = lane[:length]
        finite = np.isfinite(path).all(axis=1)
        views.append(
            TrajectoryView(
                name=f"lane{index}",
                color=LANE_COLOURS[index],
                paths=(path,),
                current=path[-1:],
                diverged=np.array([not finite[-1]]),
                selected=index == selected,
            )
        )
    return views


class NaivePlot(PlotextPlot):
    """Every level vertex and history point handed to plotext each frame."""

    def draw(self, levels, lanes: list[np.ndarray], length: int) -> int:
        plt = self.plt
        plt.clear_data()
        plt.xlim(*XLIM)
        plt.ylim(*YLIM)
        points = 0
        for line in levels:
            for segment in line.segments:
                plt.plot(segment[:, 0].tolist(), segment[:, 1].tolist(), marker="braille", color=244)
                points += len(segment)
        for index, lane in enumerate(lanes):
            path = lane[:length]
            # Even a naive widget must drop NaN/inf and clip, or plotext raises / never finishes.
            path = path[np.isfinite(path).all(axis=1)]
            path = np.clip(path, -8.0, 8.0)
            plt.plot(path[:, 0].tolist(), path[:, 1].tolist(), marker="braille", color=LANE_COLOURS[index])
            plt.scatter(path[-1:, 0].tolist(), path[-1:, 1].tolist(), marker="●", color=LANE_COLOURS[index])
            points += len(path) + 1
        self.refresh()
        return points


class BenchApp(App):
    def compose(self) -> ComposeResult:
        yield ContourPlot(id="ours")
        yield NaivePlot(id="naive")


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


async def measure(frames: int, step_counts: list[int], naive_frames: int) -> list[dict]:
    levels = level_lines(pathological_loss, XLIM, YLIM, resolution=120, n_levels=12)
    results = []
    app = BenchApp()
    async with app.run_test(size=SIZE) as pilot:
        ours = app.query_one(ContourPlot)
        naive = app.query_one(NaivePlot)
        ours.styles.height = "100%"
        naive.styles.display = "none"
        await pilot.pause()
        ours.set_levels(("pathological", XLIM, YLIM), levels, XLIM, YLIM, minima=np.array([[0.0, -4.0]]))
        for steps in step_counts:
            lanes = synthetic_lanes(steps + frames)
            times = []
            for frame in range(frames):
                trajectories = views_at(lanes, steps + frame)
                start = time.perf_counter()
                ours.show(trajectories, title=f"{steps} steps")
                ours.render()
                times.append(time.perf_counter() - start)
            results.append(
                {"widget": "ContourPlot", "steps": steps, "frames": frames, "times": times,
                 "points": ours.last_frame_points}
            )
        # Same pane, same data, naive redraw.
        ours.styles.display = "none"
        naive.styles.display = "block"
        naive.styles.height = "100%"
        await pilot.pause()
        for steps in step_counts:
            lanes = synthetic_lanes(steps + naive_frames)
            times = []
            points = 0
            for frame in range(naive_frames):
                start = time.perf_counter()
                points = naive.draw(levels, lanes, steps + frame)
                naive.render()
                times.append(time.perf_counter() - start)
            results.append(
                {"widget": "naive plotext", "steps": steps, "frames": naive_frames, "times": times, "points": points}
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=50, help="timed frames per case for ContourPlot")
    parser.add_argument("--naive-frames", type=int, default=3, help="timed frames per case for the naive replot")
    parser.add_argument("--steps", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = asyncio.run(measure(args.frames, args.steps, args.naive_frames))
    print(f"Contour pane frame time at {SIZE[0]}x{SIZE[1]}, 4 lanes, 12 level lines (show + render)")
    print("(first frame of a case is cold: it rasterises the whole history once; 'drawn' counts the braille cells")
    print(" ContourPlot paints, or the points the naive replot hands plotext)")
    header = f"{'widget':<15}{'steps/lane':>11}{'frames':>8}{'cold ms':>9}{'median ms':>11}{'p90 ms':>9}{'drawn':>10}"
    print(header)
    print("-" * len(header))
    for row in results:
        ms = [t * 1e3 for t in row["times"]]
        print(
            f"{row['widget']:<15}{row['steps']:>11,}{row['frames']:>8}{ms[0]:>9.1f}{statistics.median(ms):>11.1f}"
            f"{percentile(ms, 90):>9.1f}{row['points']:>10,}"
        )
    ours = {r["steps"]: statistics.median(r["times"]) * 1e3 for r in results if r["widget"] == "ContourPlot"}
    verdict = "meets" if max(ours.values()) < 16.0 else "misses"
    print(f"\nContourPlot median is {min(ours.values()):.1f}-{max(ours.values()):.1f} ms across "
          f"{min(ours):,}-{max(ours):,} steps ({verdict} the 16 ms target): cost tracks the pane, not the run length.")


if __name__ == "__main__":
    main()
