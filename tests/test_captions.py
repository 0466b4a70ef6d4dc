"""Lesson captions: script events that say what to watch, and pause the app where they ask."""

from __future__ import annotations

import argparse
import re
import json
import time

import pytest

from sgdtui.engine.commands import Caption
from sgdtui.engine.replay import run_replay
from sgdtui.engine.script import ScriptError, load_script
from sgdtui.engine.session import Session
from sgdtui.ui.worker import SPEED_LEVELS, SessionWorker

LESSON = '''version = 1
steps = 60
[problem]
surface = "booth"
[[lanes]]
name = "a"
optimizer = "sgd"
lr = 0.05
[[events]]
step = 0
caption = "Watch the lane slide into the valley."
[[events]]
step = 20
lane = "a"
set = { lr = 0.01 }
caption = "A smaller lr: it slows down."
pause = true
[[events]]
step = 40
pause = true
'''


def write(tmp_path, text=LESSON):
    path = tmp_path / "lesson.toml"
    path.write_text(text)
    return path


def wait_until(predicate, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_captions_parse_alone_or_with_an_action(tmp_path):
    script = load_script(write(tmp_path))
    assert [(step, type(cmd).__name__) for step, cmd in script.events] == [
        (0, "Caption"), (20, "SetLane"), (20, "Caption"), (40, "Caption")]
    assert script.events[2][1] == Caption("A smaller lr: it slows down.", True)


@pytest.mark.parametrize("line, message, where", [
    ('caption = 3', "events[0].caption: must be a string", 11),
    ('caption = "x"\npause = "yes"', "events[0].pause: must be true or false", 12),
    ('captoin = "x"', "did you mean 'caption'", 11),
])
def test_bad_captions_name_the_line_and_key(tmp_path, line, message, where):
    text = LESSON.split("[[events]]")[0] + f"[[events]]\nstep = 0\n{line}\n"
    with pytest.raises(ScriptError, match=re.escape(message)) as info:
        load_script(write(tmp_path, text))
    assert f"lesson.toml:{where}:" in str(info.value)


def test_a_replay_keeps_its_captions_and_a_recording_replays_them(tmp_path):
    session = Session.from_script(write(tmp_path))
    session.run(60)
    assert session.captions == [(0, "Watch the lane slide into the valley."), (20, "A smaller lr: it slows down.")]
    again = load_script(write(tmp_path, session.to_toml()))
    assert [cmd for _, cmd in again.events if isinstance(cmd, Caption)] == [
        Caption("Watch the lane slide into the valley."), Caption("A smaller lr: it slows down.", True),
        Caption("", True)]
    summary = run_replay(load_script(write(tmp_path)), tmp_path / "out")
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["captions"][1] == {
        "step": 20, "text": "A smaller lr: it slows down."}
    assert summary["steps"] == 60  # a headless replay does not stop at pauses


def test_the_worker_pauses_exactly_at_a_pausing_caption(tmp_path):
    worker = SessionWorker(Session.from_script(write(tmp_path)))
    worker.start()
    try:
        worker.set_speed(SPEED_LEVELS.index(None))  # flat out: the pause must still land exactly
        worker.set_running(True)
        assert wait_until(lambda: not worker.latest.running and worker.latest.snapshot.clock == 20)
        assert worker.latest.snapshot.caption == (20, "A smaller lr: it slows down.")
        notes = [e.message for e in worker.take_errors()]
        assert any("paused at step 20: A smaller lr" in m for m in notes)
        worker.set_running(True)
        assert wait_until(lambda: not worker.latest.running and worker.latest.snapshot.clock == 40)
        worker.set_running(True)
        assert wait_until(lambda: not worker.latest.running and worker.latest.script_end == 60)
    finally:
        worker.stop()


async def test_the_app_shows_the_caption_and_pauses_there(tmp_path):
    from sgdtui.ui.app import PlaygroundApp
    from sgdtui.ui.launch import build_session
    from sgdtui.ui.widgets.status import CaptionLine

    args = argparse.Namespace(script=str(write(tmp_path)), device="cpu")
    session, factory = build_session(args)
    app = PlaygroundApp(session, factory, live_rates=False, worker_kind="thread", costly_period=0.0)
    async with app.run_test(size=(120, 40)) as pilot:
        caption = app.query_one(CaptionLine)
        app.worker.set_speed(SPEED_LEVELS.index(None))
        await pilot.press("space")
        assert wait_until(lambda: not app.worker.latest.running and app.worker.latest.snapshot.clock == 20)
        await pilot.pause()
        app._tick()
        await pilot.pause()
        assert caption.display and "step 20: A smaller lr: it slows down." in str(caption.render())
        assert not app.running
