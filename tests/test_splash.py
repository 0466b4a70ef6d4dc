"""The loading screen painted before torch is imported: only on a terminal, keys not echoed while
it is up, the terminal handed to Textual as it was found, and errors printed on the normal screen."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import termios
import time
from argparse import Namespace
from pathlib import Path

from sgdtui.ui.splash import ENTER, LEAVE, Splash, loading_lines

ROOT = Path(__file__).resolve().parents[1]


def read_all(fd: int, timeout: float = 0.2) -> bytes:
    out = b""
    while select.select([fd], [], [], timeout)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out


def echo_on(fd: int) -> bool:
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)


def test_no_splash_without_a_terminal(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)
    assert Splash.show(["sgdtui"], stream=io.StringIO()) is None
    assert Splash.active is None


def test_splash_on_a_terminal_silences_keys_and_hands_over_or_closes(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.delenv("TEXTUAL_DRIVER", raising=False)
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "w")
    try:
        assert echo_on(slave)
        splash = Splash.show(["sgdtui", "loading torch and the default race …"], stream=stream)
        assert splash is not None and Splash.active is splash
        painted = read_all(master).decode()
        assert painted.startswith(ENTER) and "loading torch and the default race" in painted
        assert not echo_on(slave)  # typed keys wait for the app instead of landing on the splash
        splash.hand_over()
        assert echo_on(slave) and Splash.active is None  # Textual saves and restores what it finds
        splash.close()  # after the hand-over the screen is Textual's: nothing is written
        assert read_all(master) == b""

        again = Splash.show(["sgdtui"], stream=stream)
        read_all(master)
        Splash.close_active()  # an error before the app: back to the normal screen, echo on
        assert read_all(master).decode() == LEAVE and echo_on(slave) and Splash.active is None
    finally:
        stream.close()
        os.close(master)


def test_a_textual_driver_from_outside_gets_no_splash(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setenv("TEXTUAL_DRIVER", "textual.drivers.web_driver:WebDriver")  # sgdtui serve's sessions
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "w")
    try:
        assert Splash.show(["sgdtui"], stream=stream) is None
        assert read_all(master) == b""
    finally:
        stream.close()
        os.close(master)


def test_loading_lines_name_what_loads():
    assert "the default race" in loading_lines(Namespace(command="tui"))[1]
    assert "the rosenbrock race" in loading_lines(Namespace(command="tui", surface="rosenbrock"))[1]
    assert "the surface x**2 + y**2" in loading_lines(Namespace(command="tui", expr="x**2 + y**2"))[1]
    assert "MLP mode (spirals)" in loading_lines(Namespace(command="mlp", dataset="spirals"))[1]
    assert "the script race.toml" in loading_lines(Namespace(command="tui", script="race.toml"))[1]


def test_a_bad_surface_on_a_terminal_prints_its_error_after_leaving_the_splash():
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("TEXTUAL_DRIVER", None)
    process = subprocess.Popen([sys.executable, "-m", "sgdtui", "--surface", "no-such-surface"], cwd=ROOT,
                               stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        output += read_all(master, 0.1)
    output += read_all(master, 0.1)
    os.close(master)
    text = output.decode("utf-8", "replace")
    assert process.returncode == 2
    assert ENTER in text and "loading torch" in text
    leave, error = text.index(LEAVE), text.index("sgdtui: error:")
    assert leave < error and "no-such-surface" in text[error:]
