"""``sgdtui serve``: the playground in a web browser, through textual-serve.

Each browser tab that connects gets a playground process of its own (textual-serve runs the app
with its web driver and relays the terminal over a websocket); an MLP session adds a second
process while it runs. ``max_sessions`` caps the tabs served at once: past it, the page says the
server is full instead of starting another process.

What differs from textual-serve's defaults:

* nothing is loaded from outside this machine: its page links a web font from a CDN; ours
  serves the same font (textual-serve ships it) from /static;
* ``/?script=S`` opens a share string's session (checked here first: a bad string gets a page
  with the one-line reason, not a dead terminal);
* optimizers by import path are switched off in the sessions unless ``allow_imports``: a share
  string or the add-lane picker would otherwise make this machine import any module a visitor
  names.
"""

from __future__ import annotations

import asyncio
import html
import logging
import os
import shlex
import sys
from pathlib import Path

import aiohttp_jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from sgdtui.engine.optimizers import NO_IMPORTS_ENV
from sgdtui.ui.screens.share import SERVE_URL_ENV

TEMPLATES = Path(__file__).parent / "serve_templates"
SCRIPT_ROUTE = "/ws/s/{script}"
log = logging.getLogger("sgdtui-serve")


class PlaygroundServer(Server):
    """textual-serve's server with a session cap, share strings and a page that stays local."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8000, *, max_sessions: int = 4,
                 surfaces: list[str] = (), allow_imports: bool = False, public_url: str | None = None):
        from sgdtui.engine.surfaces import SurfaceRegistry

        self.registry = SurfaceRegistry(extra_dirs=surfaces)  # what the sessions know, to check ?script= with
        self.app_arguments = [item for folder in surfaces for item in ("--surfaces", str(folder))]
        self.fixed_url = public_url  # None: each page's links follow the address the browser used
        super().__init__(self.command_for(None), host=host, port=port, title="sgdtui", public_url=public_url,
                         templates_path=TEMPLATES)
        self.max_sessions = max_sessions
        self.active_sessions = 0
        self.sessions_started = 0
        self.allow_imports = allow_imports

    def command_for(self, script: str | None) -> str:
        """The shell command of one session's process (textual-serve runs it through the shell)."""
        argv = [sys.executable, "-m", "sgdtui", "tui", *self.app_arguments]
        if script is not None:
            argv += ["--script-string", script]
        return shlex.join(argv)

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.router.add_get(SCRIPT_ROUTE, self.handle_websocket, name="script-websocket")
        return app

    async def on_startup(self, app: web.Application) -> None:
        if not self.allow_imports:
            os.environ[NO_IMPORTS_ENV] = "1"  # inherited by every session process
        self.console.print(f"sgdtui: serving the playground on {self.public_url} "
                           f"(at most {self.max_sessions} sessions at once; Ctrl+C stops)", highlight=False)

    @property
    def full(self) -> bool:
        return self.active_sessions >= self.max_sessions

    async def handle_index(self, request: web.Request) -> web.StreamResponse:
        if self.full:
            return message_page(f"sgdtui is busy: all {self.max_sessions} sessions are in use.",
                                "Close a tab that plays it, or try again in a little while.", status=503,
                                retry=True)
        script = request.query.get("script")
        if script is not None:
            problem = check_share_string(script, self.registry)
            if problem is not None:
                return message_page("This link's script cannot be opened.", problem, status=400)
        router = request.app.router
        route = router["websocket"].url_for() if script is None else router["script-websocket"].url_for(script=script)
        base = self.fixed_url or f"{request.scheme}://{request.host}"  # served on 0.0.0.0, reached by name
        scheme = "wss" if base.startswith("https") else "ws"
        context = {  # what textual-serve's own page gets, the websocket naming the script's session
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"{scheme}:{base.split(':', 1)[1]}{route}",
            "config": {"static": {"url": f"{base}{router['static'].url_for(filename='/')}".rstrip("/") + "/"}},
            "application": {"name": "sgdtui"},
        }
        return aiohttp_jinja2.render_template("app_index.html", request, context)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """One session: its own playground process, its terminal relayed over this websocket
        (textual-serve's handler, with the session's command and the cap)."""
        websocket = web.WebSocketResponse(heartbeat=15)
        await websocket.prepare(request)
        script = request.match_info.get("script")
        refusal = (f"all {self.max_sessions} sessions are in use; try again later" if self.full
                   else check_share_string(script, self.registry) if script is not None else None)
        if refusal is not None:
            await websocket.send_bytes(f"\r\n  sgdtui: {refusal}\r\n".encode())
            await websocket.close()
            return websocket
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        self.active_sessions += 1
        self.sessions_started += 1
        app_service = SessionService(self.command_for(script), write_bytes=websocket.send_bytes,
                                     write_str=websocket.send_str, close=websocket.close,
                                     download_manager=self.download_manager, debug=self.debug)
        app_service.extra_environment[SERVE_URL_ENV] = self.fixed_url or f"{request.scheme}://{request.host}"
        try:
            await app_service.start(width, height)
            await self._process_messages(websocket, app_service)
        except asyncio.CancelledError:
            await websocket.close()
        except Exception as error:  # noqa: BLE001 - one session's failure never stops the server
            log.exception(error)
        finally:
            self.active_sessions -= 1
            await app_service.stop()
        return websocket


class SessionService(AppService):
    """textual-serve's session process, with a few variables of ours in its environment."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.extra_environment: dict[str, str] = {}

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        return {**super()._build_environment(width, height), **self.extra_environment}


def check_share_string(script: str, registry=None) -> str | None:
    """None if ``script`` is a share string of a valid script, else the one-line reason."""
    from sgdtui.engine.share import load_share

    try:
        load_share(script, registry=registry)
    except (ValueError, RecursionError) as exc:
        return " ".join(str(exc).split())
    return None


def message_page(title: str, detail: str, *, status: int, retry: bool = False) -> web.Response:
    """A plain page in the playground's colours, with nothing loaded from elsewhere."""
    again = '<p><a href="">Try again</a></p>' if retry else '<p><a href="/">Open the default playground</a></p>'
    body = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>sgdtui</title>
<style>
  body {{ background: #0c181f; color: rgba(255, 255, 255, 0.95); font-family: menlo, monospace;
         display: flex; align-items: center; justify-content: center; height: 100vh; margin: 0; }}
  main {{ background: #12232d; padding: 32px 48px; max-width: 720px; }}
  a {{ color: #ac5af4; }}
</style></head>
<body><main><h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p>{again}</main></body></html>
"""
    headers = {"Retry-After": "30"} if retry else None
    return web.Response(text=body, content_type="text/html", status=status, headers=headers)


def serve(host: str = "127.0.0.1", port: int = 8000, *, max_sessions: int = 4, surfaces: list[str] = (),
          allow_imports: bool = False) -> int:
    """Run the server until Ctrl+C."""
    server = PlaygroundServer(host, port, max_sessions=max_sessions, surfaces=list(surfaces),
                              allow_imports=allow_imports)
    server.serve()
    return 0
