"""End to end in a real browser: Debian's Chromium, headless, driven by Playwright, plays the served
playground: keys step it, open help and the palette, switch to MLP mode and back, q ends the
session; every request the page makes goes to this machine.

Needs /usr/bin/chromium (`apt-get install chromium`) and the Python playwright package; `.ci/run`
installs both. Elsewhere the test is skipped, saying which is missing.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from sgdtui.engine.script import load_script
from tests.serving import running_server, screen_text

CHROMIUM = os.environ.get("SGDTUI_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the Python playwright package is not installed (pip install playwright)"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


pytestmark = [pytest.mark.skipif(missing() is not None, reason=missing() or ""), pytest.mark.timeout(300)]


class Frames:
    """The terminal bytes the page's websocket receives, as screen text."""

    def __init__(self) -> None:
        self.data = b""

    def on_websocket(self, ws) -> None:
        ws.on("framereceived", self.on_frame)

    def on_frame(self, payload) -> None:
        if isinstance(payload, (bytes, bytearray)):
            self.data += bytes(payload)

    async def wait_for(self, text: str, timeout: float = 60.0) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while text not in screen_text(self.data):
            if loop.time() > deadline:
                return False
            await asyncio.sleep(0.1)
        return True

    def mark(self) -> None:
        self.data = b""


async def test_the_playground_plays_in_headless_chromium(tmp_path):
    from playwright.async_api import async_playwright

    with running_server("--max-sessions", "2") as base:
        async with async_playwright() as playwright:
            # A fresh profile each run (Playwright passes it as --user-data-dir).
            browser = await playwright.chromium.launch_persistent_context(
                str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
                viewport={"width": 1400, "height": 900})
            try:
                page = browser.pages[0] if browser.pages else await browser.new_page()
                requests: list[str] = []
                page.on("request", lambda request: requests.append(request.url))
                frames = Frames()
                page.on("websocket", frames.on_websocket)
                await page.goto(base + "/")
                assert await frames.wait_for("step 0"), "no first frame"
                await page.wait_for_selector("body.-first-byte")
                await page.mouse.click(700, 450)  # keys reach the terminal only once the page has focus

                frames.mark()
                await page.keyboard.press(".")  # one step
                assert await frames.wait_for("step 1", 20)
                await page.keyboard.press("Space")  # run ...
                await asyncio.sleep(1.0)
                await page.keyboard.press("Space")  # ... and pause
                frames.mark()
                await page.keyboard.press("+")  # lr up on the selected lane (sgd: 1 -> 1.78)
                assert await frames.wait_for("1.78", 20)

                frames.mark()
                await page.keyboard.press("?")
                assert await frames.wait_for("help  (escape closes)", 20)  # the help screen
                await page.keyboard.press("Escape")
                await asyncio.sleep(0.5)  # a lone escape: Textual waits to tell it from an escape sequence
                frames.mark()
                await page.keyboard.press(":")  # the palette, without ctrl+p
                assert await frames.wait_for("Search for commands", 20)
                await page.keyboard.type("Share string")
                await asyncio.sleep(0.5)
                await page.keyboard.press("Enter")
                assert await frames.wait_for("Share this session", 20)
                assert await frames.wait_for(f"{base}/?script=sgd1.", 20)  # the link that reopens it
                await page.keyboard.press("Escape")
                await asyncio.sleep(0.5)  # a lone escape: Textual waits to tell it from an escape sequence

                await page.keyboard.press(":")
                assert await frames.wait_for("Search for commands", 20)
                await page.keyboard.type("Export lane to PyTorch")
                await asyncio.sleep(0.5)
                async with page.expect_download(timeout=30_000) as download_info:
                    await page.keyboard.press("Enter")  # the program arrives as a download
                program = tmp_path / "sgd.py"
                await (await download_info.value).save_as(program)
                source = program.read_text()
                assert source.startswith('"""Lane \'sgd\' of a playground session') and "torch.optim.SGD" in source
                compile(source, str(program), "exec")

                async with page.expect_download(timeout=30_000) as download_info:
                    await page.keyboard.press("w")  # the session's script, to the browser's user
                script = tmp_path / "session.toml"
                await (await download_info.value).save_as(script)
                assert load_script(script).lanes[0].name == "sgd"  # a script that replays

                frames.mark()
                await page.keyboard.press("m")  # MLP mode: the session moves to a second process
                assert await frames.wait_for("predicted class", 90)
                await page.screenshot(path=str(tmp_path / "mlp.png"))
                frames.mark()
                await page.keyboard.press(".")  # a step in the session process
                assert await frames.wait_for("step 1", 60)
                frames.mark()
                await page.keyboard.press("m")
                assert await frames.wait_for("pathological", 30)

                await page.keyboard.press("q")
                await page.wait_for_selector("body.-closed", timeout=30_000)  # "Session ended."
                assert requests and all(url.startswith(base) for url in requests), requests
            finally:
                await browser.close()
