"""A key's answer reaches the screen first: while its command is on the way, frames from before it
are not drawn (never for longer than ECHO_WAIT), the frame that shows it is drawn at once with the
loss pane left for the next frame, and on a tall terminal the status line's third row appears
without resizing the panes."""

from __future__ import annotations

import concurrent.futures
from dataclasses import replace

from sgdtui.engine.commands import Nudge
from sgdtui.ui.app import ECHO_WAIT, TALL_ROWS
from sgdtui.ui.surface_panes import SurfaceView
from sgdtui.ui.view_base import ViewContext
from sgdtui.ui.widgets.status import StatusLine

from tests.test_app import make_app, settle


def spy_renders(app) -> list[bool]:
    """The ``prompt`` flag of every frame the App draws from now on."""
    drawn: list[bool] = []
    original = app.render_frame

    def render_frame(frame, prompt=False):
        drawn.append(prompt)
        return original(frame, prompt=prompt)

    app.render_frame = render_frame
    return drawn


async def test_frames_before_a_key_wait_and_the_frame_showing_it_is_drawn_at_once():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        worker = app.worker
        worker.stop()  # the test publishes the frames itself
        first = worker.latest
        drawn = spy_renders(app)

        def publish(seq: int, running: bool = True) -> None:
            worker.latest = replace(first, seq=seq, running=running)
            app._tick()

        publish(100)
        assert drawn == [False]
        pending: concurrent.futures.Future = concurrent.futures.Future()
        worker.submit = lambda command: pending
        app.submit(Nudge(app.selected, "lr", 1))
        publish(101)  # published before the command was applied: skipped
        assert drawn == [False]
        pending.set_result(None)  # applied: frames published from now on show it
        publish(102)
        assert drawn == [False, True]
        publish(103)  # the key is answered: frames are ordinary again
        assert drawn == [False, True, False]

        stuck: concurrent.futures.Future = concurrent.futures.Future()
        worker.submit = lambda command: stuck
        app.submit(Nudge(app.selected, "lr", 1))
        publish(104)
        assert drawn == [False, True, False]
        app._echo[1] -= ECHO_WAIT  # never answered: the screen does not wait longer than ECHO_WAIT
        publish(105)
        assert drawn == [False, True, False, False]

        app.submit(Nudge(app.selected, "lr", 1))
        publish(106, running=False)  # paused: every published frame is drawn
        assert drawn[-1] is False and len(drawn) == 5


async def test_a_command_applied_at_once_counts_any_later_frame_as_its_answer():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        worker = app.worker
        worker.stop()
        first = worker.latest
        drawn = spy_renders(app)
        done: concurrent.futures.Future = concurrent.futures.Future()
        done.set_result(None)
        worker.submit = lambda command: done
        app.submit(Nudge(app.selected, "lr", 1))
        worker.latest = replace(first, seq=first.seq + 1, running=True)
        app._tick()
        assert drawn == [True]


async def test_the_answer_to_a_key_leaves_the_loss_pane_to_the_next_frame():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        view = app.query_one(SurfaceView)
        snapshot = app.worker.latest.snapshot
        running = ViewContext(app.colours, app.selected, app.log_scale, True)
        view._curves_at = -float("inf")
        view._show_curves(snapshot, running)  # due: drawn now
        assert view._curves_pending is None
        view._curves_at = -float("inf")
        view._show_curves(snapshot, replace(running, prompt=True))  # due, but a key waits on it
        assert view._curves_pending is not None
        view._curves_at = -float("inf")
        view._show_curves(snapshot, running)  # the next frame draws it
        assert view._curves_pending is None


async def test_a_tall_terminal_keeps_the_status_lines_third_row_in_place():
    two_rows, three_rows = "a\nb", "a\nb\n⚠ lr above 2/λmax"
    app = make_app()
    async with app.run_test(size=(120, TALL_ROWS)) as pilot:
        await settle(app, pilot)
        status = app.query_one(StatusLine)
        assert status.rows == 3 and status.size.height == 3
        status.show(three_rows)
        await pilot.pause()
        assert status.rows == 3 and status.size.height == 3
        status.show(two_rows)
        await pilot.pause()
        assert status.size.height == 3
        await pilot.resize_terminal(120, TALL_ROWS - 1)  # shorter: the row goes when the Lab says nothing
        await pilot.pause()
        assert status.rows == 2 and status.size.height == 2
        status.show(three_rows)
        await pilot.pause()
        assert status.rows == 3 and status.size.height == 3


def test_the_playground_asks_textual_for_120_repaints_a_second_unless_told_otherwise(monkeypatch):
    from sgdtui.ui import launch
    from sgdtui.ui.app import PlaygroundApp

    from tests.test_app import args

    monkeypatch.setattr(PlaygroundApp, "run", lambda self, *a, **k: None)
    monkeypatch.delenv("TEXTUAL_FPS", raising=False)
    assert launch.run_tui(args()) == 0
    assert launch.os.environ["TEXTUAL_FPS"] == "120"
    monkeypatch.setenv("TEXTUAL_FPS", "30")  # the user's own choice stands
    assert launch.run_tui(args()) == 0
    assert launch.os.environ["TEXTUAL_FPS"] == "30"
