"""The UI thread's CPU time per frame while the default surface race runs, headless.

Runs the playground in ``App.run_test`` at each size, starts the race (default speed, or flat
out with ``--flat-out``), waits for the level lines, then for ``--seconds`` measures the main
thread's CPU time (``time.thread_time``: the worker thread stepping the session is not counted)
and the frames the App rendered. With ``--profile`` it prints the main thread's cProfile top
entries too (cumulative).

    .venv/bin/python benchmarks/ui_frame.py [--sizes 120x40 200x60] [--seconds 4] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import sys
import time
from pathlib import Path

import torch

SORT = os.environ.get("SORT", "cumulative")  # the cProfile sort key with --profile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sgdtui.engine.surfaces import SurfaceRegistry  # noqa: E402
from sgdtui.ui.app import PlaygroundApp  # noqa: E402
from sgdtui.ui.sessions import SessionFactory  # noqa: E402
from sgdtui.ui.worker import SPEED_LEVELS  # noqa: E402

from method_timing import wrap_methods  # noqa: E402  (benchmarks/, the script's folder)


SPLIT = {}  # part of a frame -> CPU seconds (time.thread_time) spent in it while measuring


def time_parts() -> None:
    """Accumulate the CPU time of the frame's parts: the App's drawing of a snapshot (the view,
    the lanes table, the status line) and Textual's screen update (layout, compositor, output)."""
    from textual.screen import Screen

    from sgdtui.ui.surface_panes import SurfaceView
    from sgdtui.ui.widgets.contour import ContourPlot
    from sgdtui.ui.widgets.lanes import LanesTable
    from sgdtui.ui.widgets.loss import LossPlot
    from sgdtui.ui.widgets.plot_base import BraillePlot

    parts = [(PlaygroundApp, "render_frame", "render_frame"),
             (SurfaceView, "show_snapshot", "  view.show_snapshot"),
             (Screen, "_on_timer_update", "screen update")]
    if os.environ.get("DETAIL"):  # finer parts (each timer costs a little)
        parts += [(ContourPlot, "show", "    contour.show"), (ContourPlot, "_layers", "      contour layers"),
                  (LossPlot, "show", "    loss.show"), (LossPlot, "_layers", "      loss layers"),
                  (BraillePlot, "_runs", "      runs"), (BraillePlot, "_axes_canvas", "      axes"),
                  (BraillePlot, "_lines_to_strips", "    strips"), (LanesTable, "show", "  lanes.show"),
                  (LanesTable, "render_line", "    lanes.render_line")]
    wrap_methods(parts, SPLIT, time.thread_time)  # for the whole run


async def measure(size: tuple[int, int], seconds: float, flat_out: bool, profile: bool) -> dict:
    factory = SessionFactory(SurfaceRegistry())
    app = PlaygroundApp(factory.build("surface"), factory, worker_kind="thread",
                        speed_index=len(SPEED_LEVELS) - 1 if flat_out else 1)
    async with app.run_test(size=size) as pilot:
        await pilot.press("space")
        for _ in range(200):
            if app.view.levels_ready:
                break
            await pilot.pause(0.05)
        await pilot.pause(1.0)
        profiler = cProfile.Profile() if profile else None
        seq0, clock0 = app.worker.latest.seq, app.worker.latest.snapshot.clock
        from sgdtui.ui.widgets.loss import LossPlot
        plots = list(app.query(LossPlot))
        draws0 = sum(p.draw_count for p in plots)
        frames0, cpu0, wall0, all0 = app.frames_rendered, time.thread_time(), time.perf_counter(), time.process_time()
        SPLIT.clear()
        if profiler:
            profiler.enable()
        await pilot.pause(seconds)
        if profiler:
            profiler.disable()
        published = app.worker.latest.seq - seq0
        loss_draws = sum(p.draw_count for p in plots) - draws0
        clock = app.worker.latest.snapshot.clock - clock0
        frames, cpu, wall = app.frames_rendered - frames0, time.thread_time() - cpu0, time.perf_counter() - wall0
        others = time.process_time() - all0 - cpu
        await pilot.press("space")
    result = {"size": size, "frames": frames, "published": published / wall, "loss_draws": loss_draws, "steps_per_s": clock / wall, "fps": frames / wall, "cpu_ms_per_frame": 1e3 * cpu / max(frames, 1),
              "cpu_share": cpu / wall, "others_ms_per_publish": 1e3 * others / max(published, 1), "split": {k: 1e3 * v / max(frames, 1) for k, v in SPLIT.items()}}
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(SORT).print_stats(os.environ.get("FILTER", ""), 45)
        result["profile"] = out.getvalue()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["120x40", "200x60"])
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--flat-out", action="store_true")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    time_parts()
    gc.freeze()  # as sgdtui.ui.launch does before running the App
    for text in args.sizes:
        size = tuple(int(v) for v in text.split("x"))
        result = asyncio.run(measure(size, args.seconds, args.flat_out, args.profile))
        print(f"{text}: {result['frames']} frames, {result['fps']:.1f} frames/s drawn of "
              f"{result['published']:.1f}/s published, UI thread "
              f"{result['cpu_ms_per_frame']:.1f} ms CPU per frame ({100 * result['cpu_share']:.0f}% of a core); "
              f"other threads {result['others_ms_per_publish']:.1f} ms CPU per published frame; "
              f"{result['loss_draws']} loss-pane draws; {result['steps_per_s']:.0f} steps/s")
        for label, ms in result["split"].items():
            print(f"    {label:<22} {ms:6.1f} ms per frame")
        if args.profile:
            print(result["profile"])


if __name__ == "__main__":
    main()
