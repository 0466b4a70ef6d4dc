"""Command line: the playground (default), headless replays, listings.

    sgdtui [--surface NAME | --expr EXPR] [--surfaces DIR] [--script FILE] [--record FILE] [--seed N]
    sgdtui replay SCRIPT [--out DIR] [--steps N] [--every K] [--surfaces DIR]
    sgdtui list surfaces|optimizers|schedules
    sgdtui mlp [--dataset NAME ...]
    sgdtui sweep SCRIPT [--lane NAME] [--grid PARAM=LOW:HIGH[:log]:COUNT ...] [--steps N] [--out DIR]

Exit codes: 0 done, 2 invalid script or arguments (one line on stderr, no traceback), 1 a
runtime failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2
COMMANDS = ("tui", "replay", "list", "mlp", "sweep")


class UsageError(Exception):
    """Bad arguments or input files: reported on one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sgdtui", description="A terminal playground for stochastic gradient descent.")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    tui = sub.add_parser("tui", help="the playground (the default command)")
    add_tui_arguments(tui)

    replay = sub.add_parser("replay", help="run a script headless and export the numbers")
    replay.add_argument("script", help="a script file (TOML, version 1)")
    replay.add_argument("--out", help="output folder (default: a folder named after the script)")
    replay.add_argument("--steps", type=int, help="run this many steps instead of the script's")
    replay.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")
    replay.add_argument("--quiet", action="store_true", help="no summary table")
    replay.add_argument("--every", type=int, default=1, metavar="K",
                        help="write every K-th step (and each lane's last) to the per-step file")

    listing = sub.add_parser("list", help="list surfaces, optimizers or schedules")
    listing.add_argument("what", choices=("surfaces", "optimizers", "schedules", "datasets"))
    listing.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")

    mlp = sub.add_parser("mlp", help="the playground in MLP mode")
    add_mlp_arguments(mlp)
    add_sweep_parser(sub)
    return parser


def add_tui_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--surface", help="start on this surface (see `sgdtui list surfaces`)")
    group.add_argument("--expr", help='start on an expression surface, e.g. "x**2 + 10*y**2"')
    p.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")
    p.add_argument("--script", help="start from a script (lanes and all)")
    p.add_argument("--record", help="write the session's script to this file on exit")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 0; a --script has its own)")


def add_mlp_arguments(p: argparse.ArgumentParser) -> None:
    add_tui_arguments(p)
    p.add_argument("--dataset", default=None, help="moons, circles, spirals, xor, blobs, sine")
    p.add_argument("--hidden", default=None, help="hidden sizes, e.g. 32,32")
    p.add_argument("--activation", default=None, choices=("relu", "tanh", "gelu"))
    p.add_argument("--norm", default=None, choices=("none", "batchnorm", "layernorm"))
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))


def configure_threads() -> None:
    """One intra-op thread unless SGDTUI_THREADS says otherwise: the tensors here are tiny, and on a
    busy machine torch's thread pool spins (a 32x32 MLP step ran 25x slower with 2 threads)."""
    import os

    import torch

    threads = os.environ.get("SGDTUI_THREADS", "1")
    try:
        torch.set_num_threads(max(1, int(threads)))
    except ValueError:
        raise UsageError(f"SGDTUI_THREADS must be a positive integer, got {threads!r}") from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["tui", *argv]
    try:
        args = build_parser().parse_args(argv)
        configure_threads()
        if args.command in ("replay", "list", "sweep"):
            try:
                command = {"replay": replay_command, "list": list_command, "sweep": sweep_command}[args.command]
                return command(args)
            except ValueError as exc:  # ScriptError, SurfaceError, ...: bad input, found before any work
                return _fail(_one_line(exc), EXIT_USAGE)
        if getattr(args, "script", None) and args.seed is not None:
            raise UsageError("--seed cannot be combined with --script: the script sets its own seed")
        from sgdtui.ui.launch import run_tui

        if args.command == "mlp":
            args.mode = "mlp"
        return run_tui(args)  # reports its own input errors (exit 2) before the app starts
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return EXIT_RUNTIME
    except Exception as exc:  # a runtime failure: still one line, but exit 1
        return _fail(f"{type(exc).__name__}: {_one_line(exc)}", EXIT_RUNTIME)


def _fail(message: str, code: int) -> int:
    print(f"sgdtui: error: {message}", file=sys.stderr)
    return code


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def replay_command(args) -> int:
    from sgdtui.engine.replay import run_replay
    from sgdtui.engine.script import load_script
    from sgdtui.engine.surfaces import SurfaceRegistry

    if args.steps is not None and args.steps < 0:
        raise UsageError("--steps must be >= 0")
    if args.every < 1:
        raise UsageError("--every must be >= 1")
    registry = SurfaceRegistry(extra_dirs=args.surfaces)
    script = load_script(args.script, registry=registry)
    if args.steps is None and script.steps is None:
        raise UsageError(f"{args.script}: no 'steps' in the script; give --steps N")
    out = Path(args.out) if args.out else Path(Path(args.script).stem)
    check_output_dir(out)  # before the run: a bad --out is an argument error, found at once
    try:
        result = run_replay(script, out, steps=args.steps, progress=sys.stderr.isatty(), every=args.every)
    except ValueError as exc:  # a scripted event that the session rejected at its step
        return _fail(f"{args.script}: {_one_line(exc)}", EXIT_USAGE)
    if not args.quiet:
        print_summary(result)
    return EXIT_OK


def add_sweep_parser(sub) -> None:
    sweep = sub.add_parser("sweep", help="replay one lane over a grid of its settings (a phase diagram)")
    sweep.add_argument("script", help="a script file (TOML, version 1); its [sweep] table gives defaults")
    sweep.add_argument("--lane", help="the lane to sweep (default: the [sweep] table's, or the only lane)")
    sweep.add_argument("--grid", action="append", default=[], metavar="PARAM=LOW:HIGH[:log]:COUNT",
                       help="an axis: any lane setting (lr, momentum, beta1, batch, noise, temperature, "
                            "weight_decay, ...) as LOW:HIGH[:log]:COUNT or v1,v2,...; optimizer=a,b,c; repeatable")
    sweep.add_argument("--steps", type=int, help="steps per cell (default: the [sweep] table's or the script's)")
    sweep.add_argument("--burn-in", type=int, help="also report stationary_loss: the mean loss after this step")
    sweep.add_argument("--out", help="output folder (default: a folder named after the script, plus -sweep)")
    sweep.add_argument("--backend", choices=("local", "ray"), default="local",
                       help="MLP scripts: run cell chunks here or as Ray tasks (pip install sgdtui[ray])")
    sweep.add_argument("--address", help="Ray cluster address for --backend ray (default: start a local one)")
    sweep.add_argument("--chunk", type=int, default=None, help="MLP scripts: cells per stacked chunk")
    sweep.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")
    sweep.add_argument("--quiet", action="store_true", help="no summary line")


def sweep_command(args) -> int:
    """sgdtui sweep: validate everything (the grid, the output folder) before any cell runs."""
    from sgdtui.engine.script import load_script
    from sgdtui.engine.surfaces import SurfaceRegistry
    from sgdtui.engine.sweep import SweepError, sweep_from_table, write_sweep

    for flag in ("steps", "burn_in", "chunk"):
        value = getattr(args, flag)
        if value is not None and value < (1 if flag == "chunk" else 0):
            raise UsageError(f"--{flag.replace('_', '-')} must be >= {1 if flag == 'chunk' else 0}")
    if args.address and args.backend != "ray":
        raise UsageError("--address goes with --backend ray")
    registry = SurfaceRegistry(extra_dirs=args.surfaces)
    script = load_script(args.script, registry=registry)
    text = Path(args.script).read_text(encoding="utf-8")
    overrides = {"lane": args.lane, "grid": args.grid, "steps": args.steps, "burn_in": args.burn_in}
    try:
        sweep = sweep_from_table(script, text, overrides)
    except SweepError as exc:
        raise UsageError(f"{args.script}: {exc}") from None
    if sweep.script.problem.kind != "mlp" and (args.backend != "local" or args.chunk is not None):
        raise UsageError("--backend and --chunk are for MLP scripts (a surface sweep steps every cell at once)")
    out = Path(args.out) if args.out else Path(f"{Path(args.script).stem}-sweep")
    check_output_dir(out)
    with sweep_progress(sweep.steps if sweep.script.problem.kind != "mlp" else len(sweep.cells),
                        "cells" if sweep.script.problem.kind == "mlp" else "steps") as report:
        try:
            if sweep.script.problem.kind == "mlp":
                from sgdtui.mlp.sweep import run_mlp_sweep

                result = run_mlp_sweep(sweep, backend=args.backend, address=args.address, chunk=args.chunk,
                                       progress=report)
            else:
                from sgdtui.engine.sweep import run_surface_sweep

                result = run_surface_sweep(sweep, progress=report)
        except SweepError as exc:
            return _fail(f"{args.script}: {exc}", EXIT_USAGE)
    files = write_sweep(result, out)
    if not args.quiet:
        diverged = sum(1 for row in result.rows if row.get("diverged_at") is not None)
        print(f"{len(result.rows)} cells x {sweep.steps} steps in {result.wall_time:.3f} s ({diverged} diverged); "
              f"wrote {out}/{', '.join(files)}")
    return EXIT_OK


def check_output_dir(out: Path) -> None:
    """Refuse an output folder that cannot be created or written before any work is done."""
    import os
    import tempfile

    probe_dir = out
    while not probe_dir.exists():
        if probe_dir.parent == probe_dir:
            break
        probe_dir = probe_dir.parent
    if probe_dir.exists() and not probe_dir.is_dir():
        raise UsageError(f"--out {out}: {probe_dir} is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".sgdtui-probe-"):
            pass
    except OSError as exc:
        raise UsageError(f"--out {out}: cannot write there ({exc.strerror or exc})") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"--out {out}: cannot write there (permission denied)")


def sweep_progress(total: int, unit: str):
    """A rich progress bar on a terminal (stderr), nothing otherwise; yields the report callback."""
    import contextlib

    @contextlib.contextmanager
    def bar():
        if not sys.stderr.isatty():
            yield None
            return
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("sweep"), BarColumn(), TextColumn(f"{{task.completed}}/{{task.total}} {unit}"),
                      TimeRemainingColumn(), console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task("sweep", total=total)
            yield lambda done, _total: progress.update(task, completed=done)
    return bar()


def print_summary(result) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result['script']}: {result['steps']} steps on {result['problem']}")
    for col in ("lane", "optimizer", "final loss", "best loss", "steps to min", "diverged at", "wall s"):
        table.add_column(col, justify="left" if col in ("lane", "optimizer") else "right")
    for lane in result["lanes"]:
        table.add_row(
            lane["lane"], lane["optimizer"], _fmt(lane["final_loss"]), _fmt(lane["best_loss"]),
            "-" if lane["steps_to_min"] is None else str(lane["steps_to_min"]),
            "-" if lane["diverged_at"] is None else str(lane["diverged_at"]),
            f"{lane['wall_time']:.3f}",
        )
    Console().print(table)
    print(f"wrote {result['out']}/{', '.join(result['files'])}")


def _fmt(v) -> str:
    return "nan" if v is None else f"{v:.6g}"


def list_command(args) -> int:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if args.what == "surfaces":
        from sgdtui.engine.surfaces import SurfaceRegistry

        reg = SurfaceRegistry(extra_dirs=args.surfaces)
        table = Table(title="surfaces")
        for col in ("name", "description", "view", "minimum", "origin"):
            table.add_column(col)
        for s in reg:
            minimum = f"{s.min_value:.4g} at {', '.join(f'({x:.3g}, {y:.3g})' for x, y in s.minima)}" if s.minima else (
                "none" if s.min_value is None else f"{s.min_value:.4g}")
            view = f"x {s.xlim[0]:g}..{s.xlim[1]:g}, y {s.ylim[0]:g}..{s.ylim[1]:g}"
            table.add_row(s.name, s.description, view, minimum, s.origin)
        console.print(table)
        for err in reg.errors:
            print(f"warning: skipped {err}", file=sys.stderr)
    elif args.what == "optimizers":
        from sgdtui.engine.optimizers import OPTIMIZERS

        table = Table(title="optimizers")
        for col in ("name", "update rule", "hyperparameters (default, range)"):
            table.add_column(col)
        for spec in OPTIMIZERS.values():
            hps = "\n".join(f"{hp.name}={_default(hp.default)} {hp.range_text()}" for hp in spec.hyper)
            table.add_row(f"{spec.name}\n[dim]{spec.description}[/]", spec.update_rule, hps)
        console.print(table)
    elif args.what == "schedules":
        from sgdtui.engine.schedules import SCHEDULES

        table = Table(title="schedules (lr(t) as a function of the step t)")
        for col in ("name", "description", "parameters (default, range)"):
            table.add_column(col)
        for spec in SCHEDULES.values():
            params = "\n".join(f"{p.name}={p.default!r} ({p.range_text()})" for p in spec.params) or "-"
            table.add_row(spec.name, spec.description, params)
        console.print(table)
    else:
        from sgdtui.mlp.datasets import DATASETS

        table = Table(title="datasets (MLP mode)")
        table.add_column("name")
        table.add_column("description")
        for name, desc in DATASETS.items():
            table.add_row(name, getattr(desc, "description", str(desc)))
        console.print(table)
    return EXIT_OK


def _default(v) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(f"{x:g}" for x in v) + ")"
    if isinstance(v, bool):
        return str(v).lower()
    return f"{v:g}"


if __name__ == "__main__":
    raise SystemExit(main())
