"""Pictures from headless runs: the playground's final view of a replayed script as Textual's SVG
screenshot (``sgdtui replay SCRIPT --svg FILE``), drawn without a terminal.

The App runs headless (``App.run_test``) on the replayed session, paused, with every read-out of
the selected lane computed (level lines, Hessian, decision boundary) before the picture is taken;
the wall-clock rates are left out, so the same script gives the same picture.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sgdtui.engine.script import Script
from sgdtui.engine.session import Session
from sgdtui.ui.sessions import HISTORY_CAPACITY, SessionFactory

SETTLE_TIMEOUT = 60.0  # seconds the background read-outs may take before the picture is taken anyway


def replayed_session(script: Script, steps: int | None = None) -> Session:
    """The script's session stepped to its end (or ``steps``), with the playground's history bound."""
    session = Session.from_script(script, history_capacity=HISTORY_CAPACITY)
    session.run(steps)
    return session


async def screenshot_svg(session: Session, size: tuple[int, int], title: str | None = None) -> str:
    """The SVG of the playground showing ``session`` at ``size`` (columns, rows)."""
    from sgdtui.ui.app import PlaygroundApp

    factory = SessionFactory(session._registry(), seed=session.seed)
    # A thread worker: the session is already stepped, and the picture needs no second process.
    app = PlaygroundApp(session, factory, live_rates=False, worker_kind="thread", costly_period=0.0)
    async with app.run_test(size=size) as pilot:
        await _settle(app, pilot)
        return app.export_screenshot(title=title)


async def _settle(app, pilot) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SETTLE_TIMEOUT
    app.worker.refresh()  # a snapshot with the selected lane's costly read-outs
    await asyncio.to_thread(app.worker.wait_idle, SETTLE_TIMEOUT)
    while loop.time() < deadline:
        await pilot.pause(0.02)
        await app.workers.wait_for_complete()  # level lines, drawn in Textual workers
        app._tick()
        if getattr(app.view, "levels_ready", True) and not app.workers:
            break
    await pilot.pause()
    app._tick()
    await pilot.pause()


def write_svg(script: Script, path: str | Path, size: tuple[int, int] = (160, 48), *,
              steps: int | None = None) -> Path:
    """Replay ``script`` and write its final view to ``path`` as SVG; returns the path."""
    session = replayed_session(script, steps)
    title = f"sgdtui: {Path(script.path).name}, step {session.clock}"
    svg = asyncio.run(screenshot_svg(session, size, title=title))
    path = Path(path)
    path.write_text(svg, encoding="utf-8")
    return path
