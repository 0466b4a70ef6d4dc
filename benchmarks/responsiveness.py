"""How the playground feels, measured from outside in a pseudo-terminal, next to a bare Textual app.

Each figure is the median of ``--repeats`` runs (5 by default), all in one run of this script:

* first paint: from spawning the process until something is on screen (sgdtui's loading screen,
  painted before torch is imported; the bare app's first frame);
* first race frame: until the race itself is drawn (the status line's "step 0"; next to a bare
  Textual app that also imports torch, the floor any torch app pays);
* key to screen while running: a key press until the screen shows its effect (sgdtui: ``+`` on
  the selected lane, until the new lr is drawn; the bare app: a key that bumps a counter), p50/p95;
* frames/s while running, at 120x40 and 200x60 (screen updates the app writes per second, a
  burst of output each; the bare app redraws a full screen of text as fast as it can);
* quit: from ``q`` until the process has exited;
* MLP mode: key to screen (``+``, until the new lr is drawn) and frames/s while it trains; the
  running app's lane-steps/s (its own status line) next to a bare PyTorch training loop of the
  same model (``mlp_baseline.py``), one lane and four.

    .venv/bin/python benchmarks/responsiveness.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import re
import select
import signal
import statistics
import struct
import sys
import tempfile
import termios
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
FRAME_GAP = 0.004  # output chunks closer than this belong to one frame (a frame is written in one go)


class Terminal:
    """A child process on a pseudo-terminal of a given size; its output is collected with times."""

    def __init__(self, argv: list[str], size: tuple[int, int], env: dict | None = None):
        self.started = time.perf_counter()
        pid, fd = pty.fork()
        if pid == 0:  # the child
            os.environ.update(env or {})
            os.environ["TERM"] = "xterm-256color"
            os.execv(argv[0], argv)
        self.pid, self.fd = pid, fd
        cols, rows = size
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.chunks: list[tuple[float, bytes]] = []
        self.lock = threading.Lock()
        self.exited_at: float | None = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.5)
                if not ready:
                    if self._child_gone():
                        return
                    continue
                data = os.read(self.fd, 65536)
            except OSError:
                self._child_gone()
                return
            if not data:
                return
            with self.lock:
                self.chunks.append((time.perf_counter(), data))

    def _child_gone(self) -> bool:
        if self.exited_at is not None:
            return True
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid = self.pid
        if pid:
            self.exited_at = time.perf_counter()
            return True
        return False

    def text_since(self, t0: float) -> bytes:
        with self.lock:
            return b"".join(data for t, data in self.chunks if t >= t0)

    def wait_for(self, pattern: bytes, since: float, timeout: float = 30.0) -> float | None:
        """The time at which ``pattern`` first shows in the output after ``since``."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            with self.lock:
                seen = b""
                for t, data in self.chunks:
                    if t < since:
                        continue
                    seen += data
                    if pattern in seen:
                        return t
            time.sleep(0.002)
        return None

    def frames_between(self, t0: float, t1: float) -> int:
        """Screen updates written between t0 and t1: bursts of output separated by idle gaps."""
        with self.lock:
            times = [t for t, _ in self.chunks if t0 <= t <= t1]
        return sum(1 for k, t in enumerate(times) if k == 0 or t - times[k - 1] > FRAME_GAP)

    def send(self, keys: bytes) -> float:
        now = time.perf_counter()
        os.write(self.fd, keys)
        return now

    def wait_exit(self, timeout: float = 10.0) -> float | None:
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self._child_gone():
                return self.exited_at
            time.sleep(0.002)
        return None

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass


BARE_APP = textwrap.dedent('''
    import sys, time
    import torch  # a torch app pays this import too
    from textual.app import App
    from textual.widgets import Static

    class Bare(App):
        BINDINGS = [("plus", "bump"), ("q", "quit")]
        count = 0
        def compose(self):
            yield Static("bare count 0", id="count")
            yield Static("", id="fill")
        def on_mount(self):
            if "--flat-out" in sys.argv:
                self.set_interval(1 / 200, self.redraw)
        def action_bump(self):
            self.count += 1
            self.query_one("#count").update(f"bare count {self.count}")
        def redraw(self):
            # a full screen of changing text, like a plot pane
            w, h = self.size
            t = time.perf_counter()
            self.query_one("#fill").update("\\n".join(f"{t:.6f} " * (w // 10) for _ in range(h - 2)))

    Bare().run()
''')


def sgdtui_argv(*args: str) -> list[str]:
    return [PYTHON, "-m", "sgdtui", *args]


def bare_argv(path: Path, *args: str) -> list[str]:
    return [PYTHON, str(path), *args]


def first_frame(argv: list[str], marker: bytes, size=(120, 40)) -> float:
    term = Terminal(argv, size)
    try:
        t = term.wait_for(marker, term.started, timeout=60)
        if t is None:
            raise RuntimeError(f"{argv}: no first frame with {marker!r}")
        return t - term.started
    finally:
        term.kill()


def quit_time(argv: list[str], marker: bytes, size=(120, 40)) -> float:
    term = Terminal(argv, size)
    try:
        if term.wait_for(marker, term.started, timeout=60) is None:
            raise RuntimeError("no first frame")
        time.sleep(0.5)
        sent = term.send(b"q")
        exited = term.wait_exit(20)
        if exited is None:
            raise RuntimeError("did not quit within 20 s")
        return exited - sent
    finally:
        term.kill()


def lr_key_latencies(argv: list[str], lr: float, settle: float = 0.0, size=(120, 40),
                     presses: int = 12) -> list[float]:
    """``+`` on the selected lane (at ``lr``) while it runs: the time until the new lr is drawn.
    ``settle``: seconds to wait after the first frame (a session process still starting)."""
    term = Terminal(argv, size)
    try:
        if term.wait_for(b"step 0", term.started, timeout=60) is None:
            raise RuntimeError("no first frame")
        time.sleep(settle)
        term.send(b" ")  # run
        time.sleep(1.0)
        latencies = []
        for _ in range(presses):
            lr *= 10 ** 0.25
            shown = f"{lr:.3g}".encode()
            sent = term.send(b"+")
            seen = term.wait_for(shown, sent, timeout=10)
            if seen is None:
                raise RuntimeError(f"lr {shown!r} never drawn")
            latencies.append(seen - sent)
            time.sleep(0.15)
        return latencies
    finally:
        term.kill()


def sgdtui_key_latencies(size=(120, 40), presses: int = 12) -> list[float]:
    """The default race's selected lane (sgd, lr 1)."""
    return lr_key_latencies(sgdtui_argv(), 1.0, size=size, presses=presses)


def mlp_script(lanes: int) -> Path:
    """An MLP session of ``lanes`` adam lanes at lr 0.01 (moons, 32-32, batch 64, CPU)."""
    script = Path(tempfile.mkdtemp()) / "mlp.toml"
    body = "".join(f'[[lanes]]\nname = "adam-{k}"\noptimizer = "adam"\nlr = 0.01\nbatch = 64\n' for k in range(lanes))
    script.write_text('version = 1\n[problem]\nmlp = { dataset = "moons", hidden = [32, 32] }\ndevice = "cpu"\n' + body)
    return script


def mlp_key_latencies(size=(120, 40), presses: int = 12) -> list[float]:
    """MLP mode: the selected lane (adam, lr 0.01) while it trains; the session process first
    imports torch and rebuilds the session."""
    return lr_key_latencies(sgdtui_argv("--script", str(mlp_script(1))), 0.01, settle=4.0, size=size,
                            presses=presses)


def mlp_fps(size: tuple[int, int], flat_out: bool, seconds: float = 3.0) -> float:
    return frames_per_second(sgdtui_argv("--script", str(mlp_script(1))), b"step 0", size,
                             (b">" * 8 if flat_out else b"") + b" ", seconds, settle=5.0)


def bare_key_latencies(path: Path, size=(120, 40), presses: int = 12) -> list[float]:
    term = Terminal(bare_argv(path), size)
    try:
        if term.wait_for(b"bare count 0", term.started, timeout=60) is None:
            raise RuntimeError("no first frame")
        latencies = []
        for k in range(1, presses + 1):
            sent = term.send(b"+")
            seen = term.wait_for(f"bare count {k}".encode(), sent, timeout=10)
            latencies.append(seen - sent)
            time.sleep(0.05)
        return latencies
    finally:
        term.kill()


def frames_per_second(argv: list[str], marker: bytes, size: tuple[int, int], keys: bytes = b"",
                      seconds: float = 3.0, settle: float = 0.0) -> float:
    """Screen updates per second after the first frame (``marker``), ``settle`` seconds and
    ``keys``, once settled."""
    term = Terminal(argv, size)
    try:
        if term.wait_for(marker, term.started, timeout=60) is None:
            raise RuntimeError("no first frame")
        time.sleep(settle)
        if keys:
            term.send(keys)
        time.sleep(1.0)
        t0 = time.perf_counter()
        time.sleep(seconds)
        return term.frames_between(t0, time.perf_counter()) / seconds
    finally:
        term.kill()


def sgdtui_fps(size: tuple[int, int], flat_out: bool, seconds: float = 3.0) -> float:
    return frames_per_second(sgdtui_argv(), b"step 0", size, (b">" * 8 if flat_out else b"") + b" ", seconds)


def bare_fps(path: Path, size: tuple[int, int], seconds: float = 3.0) -> float:
    return frames_per_second(bare_argv(path, "--flat-out"), b"bare count 0", size, seconds=seconds)


def mlp_lane_steps(lanes: int, seconds: float = 6.0, size=(120, 40)) -> float:
    """The running MLP app's own steps/s (status line) x lanes, flat out, at batch 64."""
    term = Terminal(sgdtui_argv("--script", str(mlp_script(lanes))), size)
    try:
        if term.wait_for(b"step 0", term.started, timeout=60) is None:
            raise RuntimeError("no first frame")
        time.sleep(4.0)  # the session process imports torch and rebuilds the session
        term.send(b">" * 8 + b" ")
        time.sleep(2.0)
        t0 = time.perf_counter()
        time.sleep(seconds)
        text = term.text_since(t0).decode("utf-8", "replace")
        rates = [float(m.replace(",", "")) for m in re.findall(r"([\d,]+) steps/s", text)]
        rates = [r for r in rates if r > 0]
        if not rates:
            raise RuntimeError("no steps/s read-out")
        return statistics.median(rates[len(rates) // 2:]) * lanes  # the settled half
    finally:
        term.kill()


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    low, high = int(k), min(int(k) + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (k - low)


def median_of(repeats: int, fn, *args) -> float:
    return statistics.median(fn(*args) for _ in range(repeats))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="one repeat, shorter runs (a smoke test)")
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    bare = Path(tempfile.mkdtemp()) / "bare.py"
    bare.write_text(BARE_APP)
    sys.path.insert(0, str(ROOT / "benchmarks"))

    print(f"pseudo-terminal, median of {repeats}; machine load shows in every row alike")
    rows = []
    paint = median_of(repeats, first_frame, sgdtui_argv(), b"loading torch")
    ff = median_of(repeats, first_frame, sgdtui_argv(), b"step 0")
    ff_bare = median_of(repeats, first_frame, bare_argv(bare), b"bare count 0")
    rows.append(("first paint (s)", paint, ff_bare, "<= 2"))
    rows.append(("first race frame (s)", ff, ff_bare, ""))
    keys = [k for _ in range(repeats) for k in sgdtui_key_latencies()]
    keys_bare = [k for _ in range(repeats) for k in bare_key_latencies(bare)]
    rows.append(("key to screen p50 (ms)", 1000 * percentile(keys, 0.5), 1000 * percentile(keys_bare, 0.5), ""))
    rows.append(("key to screen p95 (ms)", 1000 * percentile(keys, 0.95), 1000 * percentile(keys_bare, 0.95), "<= 50"))
    for size in ((120, 40), (200, 60)):
        fps = median_of(repeats, sgdtui_fps, size, True)
        fps_default = median_of(repeats, sgdtui_fps, size, False)
        fps_bare = median_of(repeats, bare_fps, bare, size)
        rows.append((f"frames/s {size[0]}x{size[1]} flat out", fps, fps_bare, ">= 25"))
        rows.append((f"frames/s {size[0]}x{size[1]} default speed", fps_default, fps_bare, ">= 25"))
    mlp_keys = [k for _ in range(repeats) for k in mlp_key_latencies()]
    rows.append(("MLP mode: key to screen p50 (ms)", 1000 * percentile(mlp_keys, 0.5),
                 1000 * percentile(keys_bare, 0.5), ""))
    rows.append(("MLP mode: key to screen p95 (ms)", 1000 * percentile(mlp_keys, 0.95),
                 1000 * percentile(keys_bare, 0.95), "<= 50"))
    for size in ((120, 40), (200, 60)):
        rows.append((f"MLP mode: frames/s {size[0]}x{size[1]} flat out", median_of(repeats, mlp_fps, size, True),
                     median_of(repeats, bare_fps, bare, size), ">= 25"))
    q = median_of(repeats, quit_time, sgdtui_argv(), b"step 0")
    q_mlp = median_of(repeats, quit_time, sgdtui_argv("mlp", "--device", "cpu"), b"step 0")
    q_bare = median_of(repeats, quit_time, bare_argv(bare), b"bare count 0")
    rows.append(("quit, surface mode (s)", q, q_bare, "<= 0.5"))
    rows.append(("quit, MLP mode (s)", q_mlp, q_bare, "<= 0.5"))
    print(f"{'':34} {'sgdtui':>10} {'bare app':>10}  goal")
    for name, ours, theirs, goal in rows:
        print(f"{name:34} {ours:10.3g} {theirs:10.3g}  {goal}")

    import torch
    from mlp_baseline import bare_loop_steps_per_s
    from sgdtui.mlp.datasets import make_dataset
    from sgdtui.mlp.model import MLPConfig

    torch.set_num_threads(1)
    dataset = make_dataset("moons", n=1000, noise=0.1, seed=0)
    config = MLPConfig.for_dataset(dataset, hidden=(32, 32))
    print("\nMLP mode (moons, 32-32, adam, batch 64, CPU), lane-steps/s in the running app vs a bare loop;")
    print("this machine's speed drifts by tens of percent within a minute, so the loop runs right before")
    print("and after each app run and each ratio is against the mean of the two:")
    for lanes in (1, 4):
        ratios, apps, loops = [], [], []
        for _ in range(repeats):
            before = bare_loop_steps_per_s(dataset, config, 64, 1500, "cpu", "adam")
            app = mlp_lane_steps(lanes, 3.0 if args.quick else 6.0)
            after = bare_loop_steps_per_s(dataset, config, 64, 1500, "cpu", "adam")
            apps.append(app)
            loops += [before, after]
            ratios.append(app / ((before + after) / 2))
        print(f"  {lanes} lane{'s' if lanes > 1 else ' '}: {statistics.median(apps):10,.0f} lane-steps/s, bare loop "
              f"{statistics.median(loops):,.0f}/s: {statistics.median(ratios):.2f}x (runs: "
              f"{', '.join(f'{r:.2f}' for r in ratios)}; goal >= 0.9x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
