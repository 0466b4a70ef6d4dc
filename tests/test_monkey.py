"""A monkey at the keyboard: random presses of every binding and of random keys, with random
resizes from 20x8 to 250x80, in surface and in MLP mode (fixed seeds). The app must never raise,
and no press may take more than 5 s to be handled (the UI never waits on the session)."""

from __future__ import annotations

import argparse
import random
import time

import pytest
from textual import events

from sgdtui.ui.app import BINDINGS, PlaygroundApp
from sgdtui.ui.launch import build_session

# q (and Textual's ctrl+q / ctrl+c) would end the run; everything else is fair game, modal
# screens included (the random keys include escape and enter to get out of them, or not).
# m (a mode switch) is left out so each run stays in its mode (test_app covers switching).
QUITS = {"q", "ctrl+q", "ctrl+c", "m"}
BOUND = sorted({key for binding in BINDINGS for key in binding.key.split(",")} - QUITS)
RANDOM_KEYS = (list("abcdefghijklmnoprstuvwxyzABCDEFGHIJKLMNOPRSTUVWXYZ0123456789")
               + ["escape", "enter", "tab", "shift+tab", "up", "down", "left", "right", "space",
                  "backspace", "plus", "minus", "full_stop", "comma", "less_than_sign",
                  "greater_than_sign", "question_mark", "colon", "slash", "home", "end", "pageup"])
CHARACTERS = {"space": " ", "plus": "+", "minus": "-", "full_stop": ".", "comma": ",", "less_than_sign": "<",
              "greater_than_sign": ">", "question_mark": "?", "colon": ":", "slash": "/"}
SLOWEST_PRESS = 5.0


def send_burst(app: PlaygroundApp, keys) -> None:
    """The keys as a typist's (or an SSH session's) arrive: no wait for the screen in between."""
    for key in keys:
        app._driver.send_message(events.Key(key, CHARACTERS.get(key, key if len(key) == 1 else None)))


async def monkey(app: PlaygroundApp, seed: int, presses: int, burst: int = 25) -> float:
    """Presses in bursts (the pilot waits for the screen after each burst, as after a quick
    typist's keys); a burst must be handled within ``burst`` x 5 s, and none may stall."""
    rng = random.Random(seed)
    slowest = 0.0
    async with app.run_test(size=(120, 40)) as pilot:
        for k in range(0, presses, burst):
            if rng.random() < 0.25:
                await pilot.resize_terminal(rng.randint(20, 250), rng.randint(8, 80))
            keys = [rng.choice(BOUND) if rng.random() < 0.6 else rng.choice(RANDOM_KEYS) for _ in range(burst)]
            keys = ["escape" if key == "P" and rng.random() < 0.8 else key for key in keys]  # a sweep now and then
            started = time.monotonic()
            send_burst(app, keys)
            await pilot.pause()
            took = (time.monotonic() - started) / burst
            slowest = max(slowest, took)
            assert took < SLOWEST_PRESS, f"presses {k}..{k + burst} ({keys}) took {took:.1f} s each"
            app._tick()  # the frame timer's work, in order with the presses
        await pilot.pause(0.1)
    assert app.return_code in (None, 0)
    return slowest


@pytest.mark.parametrize("mode, seed", [("surface", 1), ("mlp", 2)])
async def test_a_thousand_random_presses_and_resizes_raise_nothing(tmp_path, monkeypatch, mode, seed):
    monkeypatch.chdir(tmp_path)  # w writes scripts to the current folder
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    session, factory = build_session(argparse.Namespace(mode=mode, device="cpu", seed=0))
    app = PlaygroundApp(session, factory, live_rates=False, worker_kind="thread")
    slowest = await monkey(app, seed, 1000)
    assert slowest < SLOWEST_PRESS


@pytest.mark.parametrize("opener", ["colon", "a", "S", "question_mark"])
async def test_a_burst_of_enters_and_escapes_closes_a_modal_screen_once(tmp_path, monkeypatch, opener):
    """The keys the monkey found: a second dismissal in the same burst (the palette's enter,
    a picker's enter, escape) used to pop the main screen too and raise ScreenStackError."""
    monkeypatch.chdir(tmp_path)
    session, factory = build_session(argparse.Namespace(seed=0))
    app = PlaygroundApp(session, factory, live_rates=False, worker_kind="thread")
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.screen
        for keys in ([opener, "enter", "enter", "escape"], [opener, "escape", "escape", "enter"],
                     [opener, "down", "enter", "enter", "enter"], [opener, "x", "enter", "enter", "escape"]):
            send_burst(app, keys)
            await pilot.pause()
            await pilot.pause()
            for _ in range(4):  # close whatever the burst left open
                if app.screen is main:
                    break
                await pilot.press("escape")
            assert app.screen is main and len(app.screen_stack) == 1
        await pilot.press("full_stop")  # still alive, still stepping
        await pilot.pause()
        assert app.worker.latest.snapshot.clock >= 1


async def test_a_palette_search_that_ends_after_escape_draws_nothing(tmp_path, monkeypatch):
    """Another of the monkey's: typing in the palette then escape at once; the search worker
    finished after the palette had closed, filled its (removed) list, and the NoMatches ended the
    app. The search's last step is replayed here on the closed palette."""
    from textual.command import CommandList

    monkeypatch.chdir(tmp_path)
    session, factory = build_session(argparse.Namespace(seed=0))
    app = PlaygroundApp(session, factory, live_rates=False, worker_kind="thread")
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.screen
        await pilot.press("colon", "c")
        palette = app.screen
        assert palette is not main
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is main
        await palette.remove_children()  # as a closed screen's widgets go
        palette._refresh_command_list(CommandList(), [], True)  # the late search result
        palette._list_visible = True
        await pilot.pause()
        await pilot.press("full_stop")
        await pilot.pause()
        assert app.screen is main and app.worker.latest.snapshot.clock >= 1


@pytest.mark.parametrize("action", ["page_up", "page_down"])
async def test_a_page_key_before_the_palettes_list_is_laid_out_is_harmless(tmp_path, monkeypatch, action):
    """The monkey's third: a page key reaching the palette's list between its new options and
    their layout (no height yet) raised KeyError in Textual's OptionList and ended the app. The
    state is made here by giving the list no room to lay lines out in."""
    from textual.command import CommandList
    from textual.geometry import Region

    monkeypatch.chdir(tmp_path)
    session, factory = build_session(argparse.Namespace(seed=0))
    app = PlaygroundApp(session, factory, live_rates=False, worker_kind="thread")
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.screen
        await pilot.press("colon", "c", "o")
        await pilot.pause(0.3)
        palette = app.screen
        command_list = palette.query_one(CommandList)
        assert command_list.option_count > 0
        monkeypatch.setattr(CommandList, "scrollable_content_region", property(lambda self: Region(0, 0, 0, 0)))
        command_list._line_cache.clear()  # new options, not laid out
        palette._action_command_list(action)  # what pageup / pagedown do
        monkeypatch.undo()
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is main
