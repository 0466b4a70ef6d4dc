"""`sgdtui serve` over textual-serve's websocket: the first frame is drawn, keys reach the app, `q`
ends the session; the session cap, ?script= share strings, and a page that loads nothing from
elsewhere."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sgdtui.cli import main
from sgdtui.engine.share import encode_table, encode_text
from tests.serving import TerminalSession, running_server

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.timeout(240)


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    surfaces = tmp_path_factory.mktemp("surfaces")
    (surfaces / "bowl.toml").write_text('name = "served-bowl"\nexpr = "x**2 + 3*y**2"\n')
    with running_server("--max-sessions", "1", "--surfaces", str(surfaces)) as base:
        yield base


def test_a_share_string_on_a_surface_of_the_servers_folder_is_accepted(server):
    share = encode_table({"version": 1, "problem": {"surface": "served-bowl"}, "lanes": [{"optimizer": "adam"}]})
    status, page = get(f"{server}/?script={share}")
    assert status == 200 and f"/ws/s/{share}" in page


async def test_first_frame_a_key_steps_q_ends_the_session_and_a_full_server_says_so(server):
    status, page = get(server + "/")
    assert status == 200 and f'data-session-websocket-url="ws://127.0.0.1:{server.rsplit(":", 1)[1]}/ws"' in page
    session = await TerminalSession.open(server)
    try:
        assert await session.read_until("pathological")  # the first frame: contour pane and status line
        assert await session.read_until("step 0")
        status, page = get(server + "/")  # the one session allowed is in use
        assert status == 503 and "all 1 sessions are in use" in page
        second = await TerminalSession.open(server)
        try:
            assert await second.read_until("sgdtui: all 1 sessions are in use; try again later", timeout=10)
            assert await second.wait_closed(10)
        finally:
            await second.close()
        session.mark()
        await session.press(".")  # one step
        assert await session.read_until("step 1", timeout=20)
        session.mark()
        await session.press("q")
        assert await session.wait_closed()  # the app quit and the server closed the websocket
    finally:
        await session.close()
    status, _ = get(server + "/")
    assert status == 200  # its slot is free again


async def test_a_share_string_opens_its_session(server):
    share = encode_text((ROOT / "examples" / "rosenbrock-race.toml").read_text())
    status, page = get(f"{server}/?script={share}")
    assert status == 200 and f"/ws/s/{share}\"" in page
    session = await TerminalSession.open(server, f"/ws/s/{share}")
    try:
        assert await session.read_until("rosenbrock")
        assert await session.read_until("nesterov")  # the script's lanes, not the default race
        await session.press("q")
        assert await session.wait_closed()
    finally:
        await session.close()


@pytest.mark.parametrize("share, reason", [
    ("sgd1.garbage", "corrupt share string"),
    ("hello", "not an sgdtui share string"),
    (encode_table({"version": 1, "lanes": [{"optimizer": "tests.custom_optimizers:SignMomentum"}]}),
     "optimizers by import path are switched off here"),
])
async def test_a_bad_share_string_gets_a_page_with_the_reason(server, share, reason):
    status, page = get(f"{server}/?script={share}")
    assert status == 400 and reason in page and "cannot be opened" in page
    session = await TerminalSession.open(server, f"/ws/s/{share}")
    try:
        assert await session.read_until(reason, timeout=10)
        assert await session.wait_closed(10)
    finally:
        await session.close()


def test_the_page_loads_nothing_from_elsewhere(server):
    _, page = get(server + "/")
    addresses = set(re.findall(r"(?:src|href)\s*=\s*\"([^\"]+)\"|url\(\"?([^\")]+)", page))
    urls = {a or b for a, b in addresses}
    assert urls and all(u.startswith(server + "/static/") for u in urls), urls
    assert "googleapis" not in page and "fonts.g" not in page
    status, _ = get(server + "/static/fonts/RobotoMono-VariableFont_wght.ttf")
    assert status == 200  # the terminal's font, served locally


@pytest.mark.parametrize("argv, message", [
    (["serve", "--max-sessions", "0"], "--max-sessions must be >= 1"),
    (["serve", "--port", "70000"], "--port must be in 1..65535"),
    (["serve", "--surfaces", "/no/such/folder"], "/no/such/folder: surfaces folder does not exist"),
])
def test_bad_serve_arguments_are_one_line_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
