"""Helpers for the tests of `sgdtui serve`: a server in its own process group on a free local port,
and a terminal session over its websocket (textual-serve's protocol: JSON text frames in, the
terminal's bytes out)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
ANSI = re.compile(rb"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[()][0-9A-B]|[=>78M])")
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(*arguments: str):
    """``sgdtui serve`` on 127.0.0.1:<free port>; yields its base URL; stops it and its sessions."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SGDTUI_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "sgdtui", "serve", "--port", str(port), *arguments],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
                               start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                    raise RuntimeError(f"sgdtui serve did not start: {output[-2000:]}") from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # the server and the session processes it started
            process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def screen_text(data: bytes) -> str:
    """The text a terminal stream writes, escape sequences removed."""
    return ANSI.sub(b"", data).decode("utf-8", "replace")


class TerminalSession:
    """One browser tab's websocket, without the browser."""

    def __init__(self, client: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.client, self.ws = client, ws
        self.received = b""
        self.closed = False

    @classmethod
    async def open(cls, base: str, path: str = "/ws", width: int = 120, height: int = 36) -> "TerminalSession":
        client = aiohttp.ClientSession()
        ws = await client.ws_connect(f"{base}{path}?width={width}&height={height}")
        await ws.send_str(json.dumps(["resize", {"width": width, "height": height}]))
        return cls(client, ws)

    async def read_until(self, text: str, timeout: float = START_TIMEOUT) -> bool:
        """True once ``text`` is on the screen stream since the last ``mark``; False on close or timeout."""
        deadline = time.monotonic() + timeout
        while text not in screen_text(self.received):
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return False
            try:
                message = await self.ws.receive(timeout=min(left, 1.0))
            except asyncio.TimeoutError:
                continue
            if message.type == aiohttp.WSMsgType.BINARY:
                self.received += message.data
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                self.closed = True
        return True

    async def wait_closed(self, timeout: float = 20.0) -> bool:
        await self.read_until("\x00never\x00", timeout)
        return self.closed

    def mark(self) -> None:
        self.received = b""

    async def press(self, keys: str) -> None:
        await self.ws.send_str(json.dumps(["stdin", keys]))

    async def close(self) -> None:
        await self.ws.close()
        await self.client.close()
