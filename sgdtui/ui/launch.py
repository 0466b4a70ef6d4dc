"""``sgdtui`` (the tui command): build the session from the CLI arguments, then run the App.

Bad input (unknown surface, bad expression, bad script, missing surfaces folder) is reported
as one line on stderr with exit code 2, before the App starts.
"""

from __future__ import annotations

import argparse
import sys

from sgdtui.engine.race import LaneConfig
from sgdtui.engine.session import Session
from sgdtui.engine.surfaces import DEFAULT_SURFACE, SurfaceRegistry, surface_from_expr

HISTORY_CAPACITY = 4096  # rows kept per lane in the TUI (older rows are decimated)


def default_lanes() -> list[LaneConfig]:
    """The race `sgdtui` opens with, all from the surface's default start ((-4, 5) on pathological)."""
    return [
        LaneConfig.create("sgd", "sgd", lr=1.0),
        LaneConfig.create("ema-momentum", "ema-momentum", lr=1.0, beta=0.9),
        LaneConfig.create("rmsprop", "rmsprop", lr=0.3),
        LaneConfig.create("adam", "adam", lr=0.3),
    ]


def build_session(args: argparse.Namespace) -> tuple[Session, SurfaceRegistry]:
    """The Session the TUI starts with; raises ValueError (one line) on bad input."""
    registry = SurfaceRegistry(getattr(args, "surfaces", None) or ())
    seed = getattr(args, "seed", 0) or 0
    script = getattr(args, "script", None)
    expr = getattr(args, "expr", None)
    surface_name = getattr(args, "surface", None)
    if script:
        if expr or surface_name:
            raise ValueError("give either --script or --surface/--expr, not both")
        session = Session.from_script(script, registry=registry, history_capacity=HISTORY_CAPACITY)
        return session, registry
    if expr and surface_name:
        raise ValueError("give either --surface or --expr, not both")
    if expr:
        surface = surface_from_expr(expr)
        problem = {"expr": expr}
    else:
        surface = registry.get(surface_name or DEFAULT_SURFACE)
        problem = {"surface": surface.name}
    session = Session(surface, default_lanes(), seed=seed, registry=registry, problem=problem,
                      history_capacity=HISTORY_CAPACITY)
    return session, registry


def run_tui(args: argparse.Namespace) -> int:
    try:
        session, registry = build_session(args)
    except ValueError as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"sgdtui: error: {message}", file=sys.stderr)
        return 2
    from sgdtui.ui.app import PlaygroundApp  # Textual only once the input is known good

    for problem in registry.errors:
        print(f"sgdtui: warning: {problem}", file=sys.stderr)
    app = PlaygroundApp(session, registry, record_path=getattr(args, "record", None))
    app.run()
    if app.record_path is not None and app.record_path in app.written_scripts:
        print(f"sgdtui: session recorded to {app.record_path}", file=sys.stderr)
    return app.return_code or 0
