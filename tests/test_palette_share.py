"""The palette's share and export commands, and the palette's own key (':', for browsers that keep
ctrl+p): the share string is the session's, the exported program steps the selected lane."""

from __future__ import annotations

import argparse
import runpy

import numpy as np

from sgdtui.engine.commands import Nudge, ScriptText, Step
from sgdtui.engine.session import Session
from sgdtui.engine.share import decode_table, load_share
from sgdtui.ui.app import PlaygroundApp
from sgdtui.ui.launch import build_session
from sgdtui.ui.palette import export_selected_lane
from sgdtui.ui.screens.share import ShareScreen

SIZE = (110, 34)


def make_app() -> PlaygroundApp:
    ns = argparse.Namespace(surface=None, expr=None, surfaces=[], script=None, record=None, seed=0)
    session, factory = build_session(ns)
    return PlaygroundApp(session, factory, live_rates=False, worker_kind="thread")


async def settle(app, pilot) -> None:
    assert app.worker.wait_idle()
    await pilot.pause()
    app._tick()
    await pilot.pause()


async def run_palette_command(app, pilot, title: str) -> None:
    await pilot.press("colon")  # the palette's own key
    await pilot.pause()
    assert app.screen.id == "--command-palette"
    await pilot.press(*title)
    await pilot.pause(0.3)
    await pilot.press("enter")
    for _ in range(50):
        await pilot.pause(0.05)
        if not app.workers:
            break
    await pilot.pause()


async def test_share_string_command_shows_the_sessions_string():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.worker.submit(Step(30))
        app.worker.submit(Nudge("adam", "lr", +1))
        app.worker.submit(Step(20))
        await settle(app, pilot)
        await run_palette_command(app, pilot, "Share string")
        screen = app.screen
        assert isinstance(screen, ShareScreen)
        text = app.worker.ask(ScriptText()).result(timeout=5)
        import tomllib

        assert decode_table(screen.share) == tomllib.loads(text)  # the whole session, events included
        shown = screen.query_one("#share-text").text
        assert f"sgdtui --script-string {screen.share}" in shown
        replayed = Session.from_script(load_share(screen.share))
        replayed.run()
        assert replayed.clock == 50 and replayed.race.lane("adam").config.hyper["lr"] > 0.3
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ShareScreen)


async def test_export_command_writes_the_selected_lane(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("tab")  # select ema-momentum
        app.worker.submit(Step(40))
        app.worker.submit(Nudge("ema-momentum", "decay", -1))
        app.worker.submit(Step(40))
        await settle(app, pilot)
        assert app.selected == "ema-momentum"
        await run_palette_command(app, pilot, "Export lane to PyTorch")
        path = tmp_path / "sgdtui-ema-momentum-torch.py"
        assert path.is_file()
        trajectory = app.worker.ask(__import__("sgdtui.engine.commands", fromlist=["Trajectories"]).Trajectories()
                                    ).result(timeout=5)["ema-momentum"]
    rows = runpy.run_path(str(path), run_name="exported")["run"]()
    positions = np.array([[x, y] for _, _, x, y, _, _ in rows])
    assert np.array_equal(positions, trajectory["pos"][:, 0, :])  # to the bit, the steered β included


async def test_export_needs_a_lane(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        app.selected = None
        assert await export_selected_lane(app) is None
        await pilot.pause()
        assert not list(tmp_path.iterdir())


async def test_the_palette_key_is_in_help_and_not_listed_in_the_palette():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        assert (":", "command palette: every action, surface and optimizer (as ^p)") in app.help_bindings()
        assert ("^p", "palette") in app.help_bindings()
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Share string" in titles and "Export lane to PyTorch" in titles
        assert not any(title.startswith("command palette") for title in titles)


async def test_ctrl_p_still_opens_the_palette():
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p")
        await pilot.pause()
        assert app.screen.id == "--command-palette"
