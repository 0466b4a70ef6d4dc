"""Command line: the playground (default), headless replays, listings.

    sgdtui [--surface NAME | --expr EXPR] [--surfaces DIR] [--script FILE] [--record FILE] [--seed N]
    sgdtui replay SCRIPT [--out DIR] [--steps N] [--every K] [--surfaces DIR] [--svg FILE [--size WxH]]
    sgdtui list surfaces|optimizers|schedules
    sgdtui mlp [--dataset NAME ...]
    sgdtui share SCRIPT                       (a script as one URL-safe string; --script-string reads it)
    sgdtui export-torch SCRIPT --lane NAME    (a lane as a plain PyTorch program)
    sgdtui serve [--host H] [--port P] [--max-sessions N]   (the playground in a browser)
    sgdtui sweep SCRIPT [--lane NAME] [--grid PARAM=LOW:HIGH[:log]:COUNT ...] [--steps N] [--out DIR]

Exit codes: 0 done, 2 invalid script or arguments (one line on stderr, no traceback), 1 a
runtime failure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sgdtui.engine.files import WriteError

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2
COMMANDS = ("tui", "replay", "list", "mlp", "new", "sweep", "share", "export-torch", "serve")
SHARE_COMMANDS = ("share", "export-torch", "serve")


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
    replay.add_argument("script", nargs="?", help="a script file (TOML, version 1)")
    replay.add_argument("--out", help="output folder (default: a folder named after the script)")
    replay.add_argument("--steps", type=int, help="run this many steps instead of the script's")
    replay.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")
    replay.add_argument("--quiet", action="store_true", help="no summary table")
    add_replay_share_arguments(replay)
    replay.add_argument("--every", type=int, default=1, metavar="K",
                        help="write every K-th step (and each lane's last) to the per-step file")

    listing = sub.add_parser("list", help="list surfaces, optimizers or schedules")
    listing.add_argument("what", choices=("surfaces", "optimizers", "schedules", "datasets"))
    listing.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")

    mlp = sub.add_parser("mlp", help="the playground in MLP mode")
    add_mlp_arguments(mlp)
    add_new_parser(sub)
    add_share_commands(sub)
    add_sweep_parser(sub)
    return parser


def add_new_parser(sub) -> None:
    new = sub.add_parser("new", help="print (or write) a problem's default race as a script to start from")
    group = new.add_mutually_exclusive_group()
    group.add_argument("--surface", help="a surface (default: pathological)")
    group.add_argument("--expr", help='an expression surface, e.g. "x**2 + 10*y**2"')
    group.add_argument("--mlp", metavar="DATASET", help="an MLP on this dataset (moons, circles, spirals, xor, blobs, sine)")
    new.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")
    new.add_argument("--steps", type=int, default=500, help="steps in the script (default 500)")
    new.add_argument("-o", "--output", metavar="FILE", help="write the script here instead of printing it")


def add_tui_arguments(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--surface", help="start on this surface (see `sgdtui list surfaces`)")
    group.add_argument("--expr", help='start on an expression surface, e.g. "x**2 + 10*y**2"')
    p.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")
    scripts = p.add_mutually_exclusive_group()
    scripts.add_argument("--script", help="start from a script (lanes and all)")
    scripts.add_argument("--script-string", metavar="S", help="start from a share string (`sgdtui share SCRIPT`)")
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
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["tui", *argv]
    try:
        args = build_parser().parse_args(argv)
        if from_command_line and args.command in ("tui", "mlp"):
            from sgdtui.ui.splash import Splash, loading_lines

            Splash.show(loading_lines(args))  # on screen now, while torch loads; Textual takes it over
        configure_threads()
        if args.command in SHARE_COMMANDS:
            return share_command(args)
        if args.command in ("replay", "list", "new", "sweep"):
            try:
                command = {"replay": replay_command, "list": list_command, "new": new_command,
                           "sweep": sweep_command}[args.command]
                return command(args)
            except ValueError as exc:  # ScriptError, SurfaceError, ...: bad input, found before any work
                return _fail(_one_line(exc), EXIT_USAGE)
        if (getattr(args, "script", None) or getattr(args, "script_string", None) is not None) and args.seed is not None:
            raise UsageError("--seed cannot be combined with --script: the script sets its own seed")
        read_script_string(args)
        from sgdtui.ui.launch import run_tui

        if args.command == "mlp":
            args.mode = "mlp"
        # From the command line the process ends as soon as the app has: the record is written and
        # the screen restored by then, and the interpreter's teardown (torch's modules, joins of
        # daemon helpers) would keep a blank terminal for most of a second.
        return run_tui(args, exit_at_once=from_command_line)  # input errors: exit 2 before the app
    except UsageError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        _close_splash()
        return EXIT_RUNTIME
    except WriteError as exc:  # a full disk, a read-only folder: the file, in one line
        return _fail(str(exc), EXIT_RUNTIME)
    except Exception as exc:  # a runtime failure: still one line, but exit 1
        return _fail(f"{type(exc).__name__}: {_one_line(exc)}", EXIT_RUNTIME)


def _fail(message: str, code: int) -> int:
    _close_splash()  # the error belongs on the normal screen, where it stays
    print(f"sgdtui: error: {message}", file=sys.stderr)
    return code


def _close_splash() -> None:
    splash = sys.modules.get("sgdtui.ui.splash")  # only a playground run has shown one
    if splash is not None:
        splash.Splash.close_active()


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
    script, default_out = replay_script(args, registry)
    if args.steps is None and script.steps is None:
        raise UsageError(f"{script.path}: no 'steps' in the script; give --steps N")
    size = svg_size(args)
    out = Path(args.out) if args.out else default_out
    check_output_dir(out)  # before the run: a bad --out is an argument error, found at once
    try:
        result = run_replay(script, out, steps=args.steps, progress=sys.stderr.isatty(), every=args.every)
    except ValueError as exc:  # a scripted event that the session rejected at its step
        return _fail(f"{script.path}: {_one_line(exc)}", EXIT_USAGE)
    if not args.quiet:
        print_summary(result)
    if args.svg:
        write_replay_svg(script, args.svg, size, steps=args.steps)
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

    from rich import box

    problems = " → ".join(result.get("problems") or [result["problem"]])
    table = Table(title=f"{result['script']}: {result['steps']} steps on {problems}", box=box.SIMPLE_HEAD)
    rows = [[
        lane["lane"], lane["optimizer"], _fmt(lane["final_loss"]), _fmt(lane["best_loss"]),
        "-" if lane["steps_to_min"] is None else str(lane["steps_to_min"]),
        "-" if lane["diverged_at"] is None else str(lane["diverged_at"]),
        f"{lane['wall_time']:.3f}",
    ] for lane in result["lanes"]]
    columns = ("lane", "optimizer", "final loss", "best loss", "to min", "diverged", "wall s")
    for k, col in enumerate(columns):
        # Nothing is cut: every column is at least as wide as its widest cell (a table wider than the
        # terminal wraps as a whole rather than shortening a number or a name).
        widest = max([len(col), *(len(row[k]) for row in rows)])
        table.add_column(col, justify="left" if k < 2 else "right", no_wrap=True, min_width=widest)
    for row in rows:
        table.add_row(*row)
    console = Console()
    needed = sum(max([len(col), *(len(row[k]) for row in rows)]) + 3 for k, col in enumerate(columns))
    if needed > console.width:  # wider than the terminal: let the terminal wrap it, never crop it
        console = Console(width=needed)
    console.print(table)
    print(f"wrote {result['out']}/{', '.join(result['files'])}")


def _fmt(v) -> str:
    return "nan" if v is None else f"{v:.6g}"


def new_command(args) -> int:
    """The default race of a surface, an expression or an MLP dataset as a commented script."""
    from sgdtui.engine.problem import problem_from_table
    from sgdtui.engine.script import dump_script, load_script
    from sgdtui.engine.surfaces import SurfaceRegistry

    if args.steps < 0:
        raise UsageError("--steps must be >= 0")
    if args.mlp:
        table: dict = {"mlp": {"dataset": args.mlp}, "device": "auto"}
    elif args.expr:
        table = {"expr": args.expr}
    else:
        table = {"surface": args.surface or "pathological"}
    registry = SurfaceRegistry(extra_dirs=args.surfaces)
    problem = problem_from_table(table, registry)
    script = {"version": 1, "seed": 0, "steps": args.steps, "problem": problem.to_table(),
              "lanes": problem.default_lanes()}
    what = f"the MLP on {args.mlp}" if args.mlp else (f"the expression {args.expr}" if args.expr else problem.label)
    comment = (
        f"# The default race on {what} (made by `sgdtui new`). Run it headless with `sgdtui replay FILE`\n"
        "# or in the playground with `sgdtui --script FILE`. Edit or add [[lanes]] (any optimizer of\n"
        "# `sgdtui list optimizers` with any of its hyperparameters, batch, schedule, coupling, noise\n"
        "# and, on surfaces, start = [x, y]) and [[events]] that change settings at a step.\n"
    )
    text = comment + dump_script(script).split("\n", 1)[1]
    load_script(__import__("tomllib").loads(text), registry=registry, text=text)  # what we print replays as is
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{args.output}: cannot write ({exc.strerror or exc})") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(text, end="")
    return EXIT_OK


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

        table = Table(title="optimizers", caption="any other torch.optim.Optimizer subclass works by import path:"
                                                  ' optimizer = "package.module:Class"')
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


# --- share strings, torch export, browser mode, pictures -----------------------------------------


def add_replay_share_arguments(replay: argparse.ArgumentParser) -> None:
    replay.add_argument("--script-string", metavar="S", help="replay a share string instead of a script file")
    replay.add_argument("--svg", metavar="FILE", help="also write the final view as an SVG screenshot")
    replay.add_argument("--size", metavar="WxH", help="screenshot size in cells (default 160x48)")


def svg_size(args: argparse.Namespace) -> tuple[int, int] | None:
    """The --svg picture's size, checked before any work (None without --svg)."""
    if not args.svg:
        if args.size is not None:
            raise UsageError("--size goes with --svg FILE")
        return None
    folder = Path(args.svg).parent
    if not folder.is_dir():
        raise UsageError(f"--svg: folder {folder} does not exist")
    return parse_size(args.size or "160x48")


def add_share_commands(sub) -> None:
    share = sub.add_parser("share", help="print a script as one compact URL-safe string")
    share.add_argument("script", help="a script file (TOML, version 1)")
    share.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")

    export = sub.add_parser("export-torch", help="write one lane of a script as a runnable PyTorch program")
    export.add_argument("script", nargs="?", help="a surface script file (TOML, version 1)")
    export.add_argument("--script-string", metavar="S", help="a share string instead of a script file")
    export.add_argument("--lane", required=True, help="the lane to export")
    export.add_argument("--out", "-o", metavar="FILE", help="output file (default: <script>-<lane>.py)")
    export.add_argument("--steps", type=int, help="steps to run (default: the script's)")
    export.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")

    serve = sub.add_parser("serve", help="serve the playground in a web browser (textual-serve)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument("--max-sessions", type=int, default=4, metavar="N",
                       help="browser sessions at once (default 4; each is a process, two in MLP mode)")
    serve.add_argument("--surfaces", action="append", default=[], metavar="DIR", help="extra surface folder")
    serve.add_argument("--allow-imports", action="store_true",
                       help="let browser sessions name optimizers by import path (imports code on this machine)")


def read_script_string(args: argparse.Namespace) -> None:
    """``--script-string S`` for the playground: decoded and validated here, handed on as the
    Script the session starts from (bad strings: one line, exit 2)."""
    share = getattr(args, "script_string", None)
    if share is None:
        return
    from sgdtui.engine.share import load_share
    from sgdtui.engine.surfaces import SurfaceRegistry

    try:
        args.script = load_share(share, registry=SurfaceRegistry(extra_dirs=args.surfaces))
    except ValueError as exc:
        raise UsageError(_one_line(exc)) from None


def replay_script(args: argparse.Namespace, registry):
    """(the Script to replay, the default output folder): from SCRIPT or --script-string."""
    from sgdtui.engine.script import load_script

    share = getattr(args, "script_string", None)
    if share is not None and args.script:
        raise UsageError("give either SCRIPT or --script-string, not both")
    if share is not None:
        import hashlib

        from sgdtui.engine.share import load_share

        script = load_share(share, registry=registry)
        return script, Path(f"script-{hashlib.sha256(share.strip().encode()).hexdigest()[:8]}")
    if not args.script:
        raise UsageError("give a SCRIPT file or --script-string S")
    return load_script(args.script, registry=registry), Path(Path(args.script).stem)


def parse_size(text: str) -> tuple[int, int]:
    """"160x48" -> (160, 48); UsageError on anything else."""
    parts = str(text).lower().split("x")
    try:
        width, height = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--size must be WIDTHxHEIGHT in cells, such as 160x48, got {text!r}") from None
    if not (20 <= width <= 1000 and 10 <= height <= 500):
        raise UsageError(f"--size must be between 20x10 and 1000x500 cells, got {text!r}")
    return width, height


def write_replay_svg(script, path: str, size: tuple[int, int], steps: int | None = None) -> None:
    from sgdtui.ui.picture import write_svg

    written = write_svg(script, path, size, steps=steps)
    print(f"wrote {written}")


def user_surfaces(script, registry) -> list[str]:
    """The surfaces a script names that are not built in (a share string carries only the script)."""
    tables = [script.raw.get("problem", {}), *script.raw.get("events", [])]
    names = [t["surface"] for t in tables if isinstance(t, dict) and isinstance(t.get("surface"), str)]
    return [n for n in dict.fromkeys(names) if n in registry and registry.get(n).origin != "built-in"]


def share_command(args: argparse.Namespace) -> int:
    """share, export-torch and serve (bad input: one line, exit 2)."""
    from sgdtui.engine.surfaces import SurfaceRegistry

    try:
        if args.command == "serve":
            from sgdtui.ui.serve import serve

            if args.max_sessions < 1:
                raise UsageError("--max-sessions must be >= 1")
            if not 0 < args.port < 65536:
                raise UsageError("--port must be in 1..65535")
            SurfaceRegistry(extra_dirs=args.surfaces)  # a missing folder is an argument error, found now
            return serve(args.host, args.port, max_sessions=args.max_sessions, surfaces=args.surfaces,
                         allow_imports=args.allow_imports)
        registry = SurfaceRegistry(extra_dirs=args.surfaces)
        if args.command == "share":
            from sgdtui.engine.script import load_script
            from sgdtui.engine.share import encode_table

            script = load_script(args.script, registry=registry)
            print(encode_table(script.raw))
            for name in user_surfaces(script, registry):
                print(f"sgdtui: warning: the script uses your surface {name!r} ({registry.get(name).origin}): "
                      "whoever plays the string needs that file too", file=sys.stderr)
            return EXIT_OK
        from sgdtui.engine.export_torch import export_lane

        if args.steps is not None and args.steps < 0:
            raise UsageError("--steps must be >= 0")
        script, default_out = replay_script(args, registry)
        out = Path(args.out) if args.out else Path(f"{default_out.name}-{args.lane}.py")
        out.write_text(export_lane(script, args.lane, steps=args.steps), encoding="utf-8")
        print(f"wrote {out} (run it with: python {out})")
        return EXIT_OK
    except ValueError as exc:  # ScriptError, ShareError, ExportError, SurfaceError: bad input
        return _fail(_one_line(exc), EXIT_USAGE)


if __name__ == "__main__":
    raise SystemExit(main())
