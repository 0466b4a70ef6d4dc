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
MLP_BATCH = 32
DEFAULT_HIDDEN = (32, 32)


def default_lanes() -> list[LaneConfig]:
    """The race `sgdtui` opens with, all from the surface's default start ((-4, 5) on pathological)."""
    return [
        LaneConfig.create("sgd", "sgd", lr=1.0),
        LaneConfig.create("ema-momentum", "ema-momentum", lr=1.0, beta=0.9),
        LaneConfig.create("rmsprop", "rmsprop", lr=0.3),
        LaneConfig.create("adam", "adam", lr=0.3),
    ]


def default_mlp_lanes() -> list[LaneConfig]:
    """The race `sgdtui mlp` opens with: four optimizers at batch 32 from the same initial weights."""
    return [
        LaneConfig.create("sgd", "sgd", lr=0.1, batch=MLP_BATCH),
        LaneConfig.create("momentum", "momentum", lr=0.05, momentum=0.9, batch=MLP_BATCH),
        LaneConfig.create("adam", "adam", lr=0.01, batch=MLP_BATCH),
        LaneConfig.create("ema-momentum", "ema-momentum", lr=0.3, beta=0.9, batch=MLP_BATCH),
    ]


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


def mlp_problem(args: argparse.Namespace):
    """The MLPProblem of `sgdtui mlp` from its flags (defaults: moons, 32,32, relu, no norm)."""
    from sgdtui.mlp.race import MLPProblem

    table: dict = {"dataset": getattr(args, "dataset", None) or "moons",
                   "hidden": list(parse_hidden(getattr(args, "hidden", None)))}
    for key in ("activation", "norm"):
        if getattr(args, key, None):
            table[key] = getattr(args, key)
    return MLPProblem.from_table(table, getattr(args, "device", None) or "auto")


def build_mlp_session(args: argparse.Namespace) -> Session:
    """A new MLP-mode Session (the default race) from the `sgdtui mlp` flags."""
    return Session(mlp_problem(args), default_mlp_lanes(), seed=getattr(args, "seed", 0) or 0,
                   history_capacity=HISTORY_CAPACITY)


def build_surface_session(registry: SurfaceRegistry, seed: int = 0) -> Session:
    """A new surface-mode Session: the default race on the default surface."""
    surface = registry.get(DEFAULT_SURFACE)
    return Session(surface, default_lanes(), seed=seed, registry=registry, problem={"surface": surface.name},
                   history_capacity=HISTORY_CAPACITY)


def build_session(args: argparse.Namespace) -> tuple[Session, SurfaceRegistry]:
    """The Session the TUI starts with; raises ValueError (one line) on bad input.

    A script opens the mode its [problem] table names; otherwise ``args.mode == "mlp"`` (set by
    `sgdtui mlp`) opens MLP mode and anything else surface mode."""
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
    if getattr(args, "mode", "surface") == "mlp":
        if expr or surface_name:
            raise ValueError("MLP mode has no surface: drop --surface/--expr")
        return build_mlp_session(args), registry
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
    app = PlaygroundApp(session, registry, record_path=getattr(args, "record", None), launch_args=args)
    app.run()
    if app.record_path is not None and app.record_path in app.written_scripts:
        print(f"sgdtui: session recorded to {app.record_path}", file=sys.stderr)
    return app.return_code or 0
