"""``sgdtui`` (the tui command): build the session and the session factory from the CLI
arguments, then run the App.

Bad input (unknown surface, bad expression, bad script, missing surfaces folder) is reported
as one line on stderr with exit code 2, before the App starts.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys

from sgdtui.engine.session import Session
from sgdtui.engine.surfaces import DEFAULT_SURFACE, SurfaceRegistry
from sgdtui.ui.sessions import HISTORY_CAPACITY, SessionFactory
from sgdtui.ui.splash import Splash

DEFAULT_HIDDEN = (32, 32)


def parse_hidden(text: str | None) -> tuple[int, ...]:
    """"32,32" -> (32, 32); raises ValueError naming --hidden on anything else."""
    if text is None:
        return DEFAULT_HIDDEN
    try:
        widths = tuple(int(part) for part in str(text).split(",") if part.strip())
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated layer widths such as 32,32, got {text!r}") from None
    if not widths or any(w < 1 for w in widths):
        raise ValueError(f"--hidden must be comma-separated positive layer widths such as 32,32, got {text!r}")
    return widths


def factory_from_args(args: argparse.Namespace) -> SessionFactory:
    """The factory of this run: its surfaces, seed, and the problems `--surface`/`--expr` and the
    MLP flags (`--dataset`, `--hidden`, ...) ask for."""
    registry = SurfaceRegistry(getattr(args, "surfaces", None) or ())
    factory = SessionFactory(registry, seed=getattr(args, "seed", 0) or 0)
    expr, surface_name = getattr(args, "expr", None), getattr(args, "surface", None)
    if expr and surface_name:
        raise ValueError("give either --surface or --expr, not both")
    factory.tables["surface"] = {"expr": expr} if expr else {"surface": surface_name or DEFAULT_SURFACE}
    mlp: dict = {"dataset": getattr(args, "dataset", None) or "moons",
                 "hidden": list(parse_hidden(getattr(args, "hidden", None)))}
    for key in ("activation", "norm"):
        if getattr(args, key, None):
            mlp[key] = getattr(args, key)
    factory.tables["mlp"] = {"mlp": mlp, "device": getattr(args, "device", None) or "auto"}
    return factory


def build_session(args: argparse.Namespace) -> tuple[Session, SessionFactory]:
    """The Session the TUI starts with and the factory for later ones; ValueError (one line) on
    bad input. A script opens the mode its [problem] table names; otherwise ``args.mode``
    ("mlp" from `sgdtui mlp`) picks the mode."""
    factory = factory_from_args(args)
    script = getattr(args, "script", None)
    expr, surface_name = getattr(args, "expr", None), getattr(args, "surface", None)
    if script:
        if expr or surface_name:
            raise ValueError("give either --script or --surface/--expr, not both")
        session = Session.from_script(script, registry=factory.registry, history_capacity=HISTORY_CAPACITY)
        return session, factory
    kind = getattr(args, "mode", "surface") or "surface"
    if kind == "mlp" and (expr or surface_name):
        raise ValueError("MLP mode has no surface: drop --surface/--expr")
    return factory.build(kind), factory


def run_tui(args: argparse.Namespace, exit_at_once: bool = False) -> int:
    """Run the playground; the exit code. With ``exit_at_once`` the process ends right after the
    app (``os._exit``, once the outputs are flushed), skipping the interpreter's slow teardown."""
    code, app = _run_tui(args)
    if exit_at_once:
        end_now = getattr(getattr(app, "worker", None), "end_now", None)
        if end_now is not None:  # a session process: ended before we go, never orphaned
            end_now()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run_tui(args: argparse.Namespace) -> tuple[int, object]:
    from sgdtui.ui.session_actions import check_writable

    record = getattr(args, "record", None)
    problem = check_writable(record) if record else None
    if problem:  # found now, not when the session is over
        Splash.close_active()  # errors and warnings go to the normal screen, where they stay
        print(f"sgdtui: error: --record: cannot write the session's script: {problem}", file=sys.stderr)
        return 2, None
    try:
        session, factory = build_session(args)
    except ValueError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        Splash.close_active()
        print(f"sgdtui: error: {message}", file=sys.stderr)
        return 2, None
    # Textual repaints the screen at most TEXTUAL_FPS times a second (read when it is imported). At
    # its default of 60, a key's answer waits up to 17 ms for the next repaint; at 120, half that
    # (key to screen p95 42 -> 34 ms over 80 presses, frames/s unchanged: each frame is still one repaint).
    os.environ.setdefault("TEXTUAL_FPS", "120")
    from sgdtui.ui.app import PlaygroundApp  # Textual only once the input is known good

    if factory.registry.errors:
        Splash.close_active()
    for problem in factory.registry.errors:
        print(f"sgdtui: warning: {problem}", file=sys.stderr)
    app = PlaygroundApp(session, factory, record_path=record)
    # What is alive now (torch, the modules, the session) lives as long as the process: moved out
    # of the collector's reach, a full collection scans only what the running App made (one took
    # ~160 ms on the UI thread, a key press waiting behind it), and startup pays no extra collect.
    gc.freeze()
    if Splash.active is not None:
        Splash.active.hand_over()
    app.run()
    if app.record_failure is not None:
        print(f"sgdtui: error: {app.record_failure}", file=sys.stderr)
        return 1, app
    if app.record_path is not None and app.record_path in app.written_scripts:
        print(f"sgdtui: session recorded to {app.record_path}", file=sys.stderr)
    return app.return_code or 0, app
