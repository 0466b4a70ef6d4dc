"""One lane of a surface script as a plain, runnable PyTorch program (``sgdtui export-torch``).

The program holds the lane's exact optimizer (a ``torch.optim`` class, the course variant's class
imported from sgdtui, or the user's class by its import path), its schedule and coupling rule
written out as Python, the surface as a torch function (autograd gives the gradient), the lane's
random streams seeded as sgdtui seeds them, and every change the script's events make to the
lane, at the update where it lands. Run, it steps the same trajectory the replay records; the
one difference is the gradient's last bits (the playground differentiates symbolically, the
program by autograd), so the numbers agree to about 1e-12, not to the bit.

A lane exports from its last restart (a reset, new start points or a surface switch), as the
replay's trajectories.csv holds it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from sgdtui.engine.checks import did_you_mean
from sgdtui.engine.commands import AddLane, MoveStarts, RemoveLane, Reset, SetLane, SwitchProblem
from sgdtui.engine.export_surface import surface_source
from sgdtui.engine.lane import LaneConfig, lane_seed
from sgdtui.engine.optimizers import optimizer_class
from sgdtui.engine.problem import problem_from_table
from sgdtui.engine.schedules import make_schedule
from sgdtui.engine.script import Script
from sgdtui.engine.surfaces import Surface


class ExportError(ValueError):
    """A lane that cannot be exported (unknown, removed, not on a surface); one line."""


@dataclass
class LaneTimeline:
    """What the exported program replays: the lane from its last restart to the end."""

    config: LaneConfig  # at the restart
    surface: Surface
    steps: int  # updates from the restart to the end of the script
    restart_clock: int
    changes: list[tuple[int, LaneConfig]] = field(default_factory=list)  # (lane step, config after it)


def lane_timeline(script: Script, lane: str, steps: int | None = None) -> LaneTimeline:
    """Walk the script's events (as a Session applies them) and keep what concerns ``lane``."""
    if script.problem.kind != "surface":
        raise ExportError(f"{script.path}: export-torch exports lanes on a surface; this script's problem is"
                          f" {script.problem.kind}")
    total = script.steps if steps is None else steps
    if total is None:
        raise ExportError(f"{script.path}: no 'steps' in the script; give --steps N")
    problem = script.problem
    configs = {cfg.name: cfg for cfg in script.lanes}
    seen = set(configs)
    timeline = LaneTimeline(configs[lane], problem.surface, total, 0) if lane in configs else None
    removed_at = None

    def restart(clock: int) -> LaneTimeline | None:
        return LaneTimeline(configs[lane], problem.surface, total - clock, clock) if lane in configs else None

    for clock, command in script.events:
        if clock > total:
            break
        if isinstance(command, SetLane):
            configs[command.lane] = configs[command.lane].with_settings(dict(command.settings))
            if command.lane == lane and timeline is not None:
                timeline.changes.append((clock - timeline.restart_clock, configs[lane]))
        elif isinstance(command, AddLane):
            table = problem.prepare_lane(dict(command.lane))
            cfg = LaneConfig.from_table(table, table.get("name"))
            configs[cfg.name] = cfg
            seen.add(cfg.name)
            if cfg.name == lane:
                timeline, removed_at = restart(clock), None
        elif isinstance(command, RemoveLane):
            del configs[command.lane]
            if command.lane == lane:
                timeline, removed_at = None, clock
        elif isinstance(command, MoveStarts):
            configs[command.lane] = configs[command.lane].with_starts(command.starts)
            if command.lane == lane:
                timeline = restart(clock)
        elif isinstance(command, Reset):
            timeline = restart(clock)
        elif isinstance(command, SwitchProblem):
            problem = problem_from_table(command.table, script.registry)
            configs = {name: cfg.with_starts(None) for name, cfg in configs.items()}
            timeline = restart(clock)
    if timeline is None:
        if removed_at is not None:
            raise ExportError(f"{script.path}: lane {lane!r} is removed at step {removed_at}: the replay keeps no"
                              " trajectory of it")
        raise ExportError(f"{script.path}: no lane {lane!r}{did_you_mean(lane, sorted(seen))} (lanes: "
                          f"{', '.join(sorted(seen))})")
    return timeline


# --- writing the program ----------------------------------------------------------------------


def export_lane(script: Script, lane: str, *, steps: int | None = None) -> str:
    """The Python source of a program that steps ``lane`` of ``script`` as its replay does."""
    timeline = lane_timeline(script, lane, steps)
    cfg, surface = timeline.config, timeline.surface
    spec = cfg.spec
    cls, extra = optimizer_class(spec)
    class_import, class_name = _class_reference(spec.name if spec.imported else None, cls)
    kwargs = {**cfg.hyper, **extra}
    if spec.per_row_option:
        kwargs["per_row"] = True  # each start point's trajectory is one "layer" for the trust ratio
    schedules = [(cfg.schedule, cfg.schedule_params)]
    changes = []
    previous = cfg
    for t, new in timeline.changes:
        change: dict[str, Any] = {k: v for k, v in new.hyper.items() if v != previous.hyper[k]}
        for key in ("batch", "coupling", "noise"):
            if getattr(new, key) != getattr(previous, key):
                change[key] = getattr(new, key)
        if (new.schedule, new.schedule_params) != (previous.schedule, previous.schedule_params):
            schedules.append((new.schedule, new.schedule_params))
            change["schedule"] = len(schedules) - 1
        if change:
            changes.append((t, change))
        previous = new
    starts = cfg.starts if cfg.starts is not None else surface.starts
    source = "\n".join([
        _header(script, timeline, lane),
        "import argparse",
        "import bisect",
        "import csv",
        "import math",
        "import sys",
        "",
        "import torch",
        *([class_import] if class_import else []),
        "",
        "DTYPE = torch.float64",
        f"STEPS = {timeline.steps}  # updates of this lane (from its start or last restart to the script's end)",
        f"STARTS = {[list(p) for p in starts]!r}",
        f"BOUND = {surface.bound!r}  # a trajectory whose |x| or |y| reaches this is stopped, as diverged",
        "# The lane's random streams, seeded as sgdtui seeds them (from the session seed and the lane's name).",
        f"GRAD_SEED = {lane_seed(script.seed, cfg.name, 'grad')}",
        f"OPTIMIZER_SEED = {lane_seed(script.seed, cfg.name, 'optimizer')}",
        "",
        surface_source(surface),
        "",
        _schedules_source(schedules),
        "",
        _coupling_source(spec.heavy_ball),
        "# The lane's settings at its start, and the changes its events make: (lane step t, settings);",
        "# a change at t lands before update t + 1. 'schedule' picks an entry of SCHEDULES (restarted at t).",
        f"SETTINGS = {_literal({**cfg.hyper, 'batch': cfg.batch, 'coupling': cfg.coupling, 'noise': cfg.noise, 'schedule': 0})}",
        f"CHANGES = {_literal(changes)}",
        "LANE_SETTINGS = ('batch', 'coupling', 'noise', 'schedule', 'lr')  # the rest are the optimizer's",
        "",
        "",
        "def make_optimizer(params):",
        f"    return {class_name}([params], {_kwargs_source(kwargs, spec.needs_generator)})",
        "",
        "",
        _LOOP,
    ])
    ast.parse(source)  # the program is valid Python
    return source


def _header(script: Script, timeline: LaneTimeline, lane: str) -> str:
    cfg = timeline.config
    restart = (f", from its restart at step {timeline.restart_clock}" if timeline.restart_clock else "")
    return (f'"""Lane {lane!r} of {script.path} ({cfg.optimizer} on {timeline.surface.name}{restart}),'
            " exported by `sgdtui export-torch`.\n\n"
            "Run it: python THIS_FILE [--csv OUT.csv] [--steps N] [--autograd]. It prints each start point's\n"
            "final position and loss; --csv writes every step as start,step,x,y,loss,lr (the columns of the\n"
            "replay's trajectories.csv), the same numbers to the bit. The gradient is the surface's own, computed\n"
            "as sgdtui computes it; --autograd differentiates surface_loss with torch.autograd instead (plain\n"
            "PyTorch), which agrees to round-off, and on a chaotic trajectory drifts apart.\n"
            'Needs torch (and sgdtui for its own optimizer classes).\n"""\n')


def _class_reference(import_path: str | None, cls: type) -> tuple[str | None, str]:
    if import_path is not None:
        module, _, attribute = import_path.partition(":")
        head = attribute.split(".", 1)[0]
        return f"from {module} import {head}", attribute
    if cls.__module__.startswith("torch.optim"):
        return None, f"torch.optim.{cls.__name__}"
    return f"from {cls.__module__} import {cls.__name__}  # the course variant, from sgdtui", cls.__name__


def _literal(value: Any) -> str:
    """Python source for settings: floats by repr (so they read back to the bit)."""
    return repr(value)


def _kwargs_source(kwargs: dict[str, Any], needs_generator: bool) -> str:
    parts = [f"{k}={v!r}" for k, v in kwargs.items()]
    if needs_generator:
        parts.append("generator=torch.Generator().manual_seed(OPTIMIZER_SEED)")
    return ", ".join(parts)


# --- schedules and coupling -------------------------------------------------------------------


def _schedules_source(schedules: list[tuple[str, dict[str, Any]]]) -> str:
    blocks, names = [], []
    for index, (name, params) in enumerate(schedules):
        schedule = make_schedule(name, **params)  # validated, defaults filled in
        function = f"schedule_{index}"
        names.append(function if not schedule.stateful else f"{function}()")
        blocks.append(schedule_source(function, schedule))
    return "\n".join([*blocks, f"SCHEDULES = [{', '.join(names)}]", ""])


def schedule_source(function: str, schedule) -> str:
    """``def function(t, base_lr)``: the schedule's closed form with its parameters written in (for
    plateau, a class whose instances are called the same way and fed the loss)."""
    p = {k: (tuple(v) if isinstance(v, list) else v) for k, v in schedule.params.items()}
    name = schedule.name
    head = [f"def {function}(t, base_lr):", f'    """{name}: {schedule.label()}"""']
    if name == "constant":
        body = ["return base_lr"]
    elif name == "step":
        body = [f"return base_lr * {p['gamma']!r} ** (t // {p['step_size']!r})"]
    elif name == "multistep":
        body = [f"return base_lr * {p['gamma']!r} ** bisect.bisect_right({p['milestones']!r}, t)"]
    elif name == "exponential":
        body = [f"return base_lr * {p['gamma']!r} ** t"]
    elif name == "inverse-time":
        body = [f"return base_lr / (1 + t / {p['tau']!r}) ** {p['power']!r}"]
    elif name == "cosine":
        body = [_cosine("t", repr(p["T_max"]), p["eta_min"])]
    elif name == "cosine-restarts":
        if p["T_mult"] == 1:
            body = [f"t_cur, t_i = t % {p['T_0']!r}, {p['T_0']!r}"]
        else:
            body = [f"t_cur, t_i = t, {p['T_0']!r}", "while t_cur >= t_i:", "    t_cur -= t_i",
                    f"    t_i *= {p['T_mult']!r}"]
        body.append(_cosine("t_cur", "t_i", p["eta_min"]))
        return "\n".join(head + ["    " + line for line in body]) + "\n\n"
    elif name == "warmup-cosine":
        warm, factor = p["warmup_steps"], p["start_factor"]
        body = [f"if t < {warm!r}:", f"    return base_lr * ({factor!r} + (1.0 - {factor!r}) * t / {warm!r})",
                _cosine(f"(t - {warm!r})", repr(p["T_max"] - warm), p["eta_min"])]
    elif name == "cyclic":
        down = p["step_size_down"] if p["step_size_down"] is not None else p["step_size_up"]
        tail = {"triangular": "base_height * 1.0", "triangular2": "base_height * (1 / (2.0 ** (cycle - 1)))",
                "exp_range": f"base_height * {p['gamma']!r} ** t"}[p["mode"]]
        body = [f"max_lr = {'10.0 * base_lr' if p['max_lr'] is None else repr(p['max_lr'])}",
                f"total_size = {float(p['step_size_up'])!r} + {float(down)!r}",
                f"step_ratio = {float(p['step_size_up'])!r} / total_size",
                "cycle = math.floor(1 + t / total_size)",
                "x = 1.0 + t / total_size - cycle",
                "scale_factor = x / step_ratio if x <= step_ratio else (x - 1) / (step_ratio - 1)",
                "base_height = (max_lr - base_lr) * scale_factor",
                f"return base_lr + {tail}"]
    elif name == "one-cycle":
        total, pct = p["total_steps"], p["pct_start"]
        if p["three_phase"]:
            ends = [float(pct * total) - 1, float(2 * pct * total) - 2, total - 1]
            targets = "[(initial_lr, max_lr), (max_lr, initial_lr), (initial_lr, min_lr)]"
        else:
            ends = [float(pct * total) - 1, total - 1]
            targets = "[(initial_lr, max_lr), (max_lr, min_lr)]"
        anneal = ("return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)" if p["anneal_strategy"] == "cos"
                  else "return (end - start) * pct + start")
        body = [f"max_lr = {'base_lr' if p['max_lr'] is None else repr(p['max_lr'])}",
                f"initial_lr = max_lr / {p['div_factor']!r}",
                f"min_lr = initial_lr / {p['final_div_factor']!r}",
                f"targets = {targets}",
                f"step_num = min(t, {total - 1!r})",
                f"ends = {ends!r}",
                "start_step = 0.0",
                "for i, end_step in enumerate(ends):",
                "    if step_num <= end_step or i == len(ends) - 1:",
                "        pct = (step_num - start_step) / (end_step - start_step)",
                "        start, end = targets[i]",
                "        " + anneal,
                "    start_step = end_step"]
    elif name == "range-test":
        lo, hi, total = p["lr_min"], p["lr_max"], p["total_steps"]
        body = [f"if t >= {total - 1!r}:", f"    return {hi!r}",
                f"return {lo!r} * ({hi!r} / {lo!r}) ** (t / ({total!r} - 1))"]
    elif name == "plateau":
        return _PLATEAU.format(function=function, label=schedule.label(), **{k: repr(v) for k, v in p.items()})
    else:
        raise ExportError(f"schedule {name!r} has no torch export")
    return "\n".join(head + ["    " + line for line in body]) + "\n\n"


def _cosine(t: str, period: str, eta_min: float) -> str:
    return f"return {eta_min!r} + (base_lr - {eta_min!r}) * (1 + math.cos(math.pi * {t} / {period})) / 2"


_PLATEAU = '''class {function}:
    """plateau: {label}, torch's ReduceLROnPlateau as a factor on the lane's lr, fed the mean loss."""

    def __init__(self):
        self.factor_now, self.num_bad, self.cooldown_left = 1.0, 0, 0
        self.best = math.inf if {mode} == "min" else -math.inf

    def __call__(self, t, base_lr):
        return base_lr * self.factor_now

    def is_better(self, loss):
        if {mode} == "min" and {threshold_mode} == "rel":
            return loss < self.best * (1.0 - {threshold})
        if {mode} == "min":
            return loss < self.best - {threshold}
        if {threshold_mode} == "rel":
            return loss > self.best * ({threshold} + 1.0)
        return loss > self.best + {threshold}

    def observe(self, loss, base_lr):
        if self.is_better(loss):
            self.best, self.num_bad = loss, 0
        else:
            self.num_bad += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.num_bad = 0
        if self.num_bad > {patience}:
            if base_lr > 0.0:
                old_lr = base_lr * self.factor_now
                new_lr = max(old_lr * {factor}, {min_lr})
                if old_lr - new_lr > {eps}:
                    self.factor_now = new_lr / base_lr
            self.cooldown_left, self.num_bad = {cooldown}, 0


'''


def _coupling_source(heavy_ball: bool) -> str:
    momentum = ("settings.get('momentum', 0.0)  # heavy-ball momentum μ" if heavy_ball
                else "0.0  # not a heavy-ball optimizer")
    return f'''def coupled_lr(lr, settings):
    """The lr of the next update: the scheduled lr coupled to the batch size B (sgdtui's rules:
    none: lr, linear: B·lr, sqrt: √B·lr, momentum: (1 - μ)·B·lr)."""
    batch, rule, mu = settings["batch"], settings["coupling"], {momentum}
    if rule == "none":
        return lr
    if rule == "linear":
        return batch * lr
    if rule == "sqrt":
        return math.sqrt(batch) * lr
    return (1.0 - mu) * batch * lr
'''


_LOOP = '''def autograd_value_and_grad(w):
    """value_and_grad by autograd on surface_loss (--autograd): plain PyTorch."""
    w = w.detach().requires_grad_(True)
    loss = surface_loss(w)
    (grad,) = torch.autograd.grad(loss.sum(), w)
    return loss.detach(), grad


def autograd_stochastic_grad(w, batch, noise, generator):
    """stochastic_grad by autograd on the minibatch's loss (--autograd), drawing the same samples."""
    w = w.detach().requires_grad_(True)
    loss = minibatch_loss(w, batch, generator) if DATA_DRIVEN else surface_loss(w)
    (grad,) = torch.autograd.grad(loss.sum(), w)
    return add_noise(grad, batch, noise, generator, rows=None if DATA_DRIVEN else len(STARTS))


def padded(points):
    """sgdtui evaluates a cloud of N > 1 points padded to a multiple of 16 rows (copies of the
    first), so every point goes through the same vectorized kernels whatever N is: so does this."""
    n = points.shape[0]
    width = n if n == 1 else -(-n // 16) * 16
    return torch.cat([points, points[:1].expand(width - n, 2)]) if width > n else points


def on_padded(fn):
    """``fn`` evaluated on the padded cloud; the rows of the real points returned."""
    def evaluate(w, *args):
        n = w.shape[0]
        out = fn(padded(w.detach()), *args)
        return tuple(o[:n] for o in out) if isinstance(out, tuple) else out[:n]
    return evaluate


def run(steps=STEPS, autograd=False):
    """The lane's trajectory: rows (step, start, x, y, loss, lr), step 0 being the start points."""
    loss_and_grad = on_padded(autograd_value_and_grad if autograd else value_and_grad)
    minibatch_grad = on_padded(autograd_stochastic_grad if autograd else stochastic_grad)
    n = len(STARTS)
    params = torch.tensor(STARTS, dtype=DTYPE)  # the (N, 2) points step as one tensor
    optimizer = make_optimizer(params)
    generator = torch.Generator().manual_seed(GRAD_SEED)
    settings, schedules, changes = dict(SETTINGS), list(SCHEDULES), list(CHANGES)
    schedule, origin = schedules[0], 0
    alive = torch.ones(params.shape[0], dtype=torch.bool)
    loss, grad = loss_and_grad(params)
    lr = coupled_lr(schedule(0, settings["lr"]), settings)
    rows = [(0, i, *params[i].tolist(), float(loss[i]), lr) for i in range(n)]
    for t in range(steps):
        while changes and changes[0][0] <= t:  # the script's events for this lane, on time
            for key, value in changes.pop(0)[1].items():
                settings[key] = value
                if key == "schedule":
                    schedule, origin = schedules[value], t
                elif key not in LANE_SETTINGS:
                    for group in optimizer.param_groups:
                        group[key] = value
        if not alive.any():
            break  # every trajectory diverged: the lane has stopped
        lr = coupled_lr(schedule(t - origin, settings["lr"]), settings)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if settings["noise"] > 0 or (DATA_DRIVEN and settings["batch"] < len(TARGETS)):
            grad = minibatch_grad(params, settings["batch"], settings["noise"], generator)
        frozen = params.clone()
        params.grad = torch.where(alive[:, None], grad, torch.zeros_like(grad))
        optimizer.step()
        with torch.no_grad():
            params.copy_(torch.where(alive[:, None], params, frozen))  # diverged points stay where they stopped
        loss, grad = loss_and_grad(params)
        ok = torch.isfinite(loss) & (params.abs().amax(dim=1) < BOUND)
        newly = alive & ~ok
        if newly.any():  # a point that overflows or leaves the bound is stopped at its last position
            with torch.no_grad():
                params[newly] = frozen[newly]
            alive &= ~newly
            loss, grad = loss_and_grad(params)
            loss = torch.where(torch.isfinite(loss), loss, torch.full_like(loss, math.inf))
        if hasattr(schedule, "observe"):  # plateau: fed the mean loss of the live points
            schedule.observe(float(loss[alive].mean()) if alive.any() else math.inf, settings["lr"])
        rows += [(t + 1, i, *params[i].tolist(), float(loss[i]), lr) for i in range(n)]
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", help="write every step to this file")
    parser.add_argument("--steps", type=int, default=STEPS, help=f"updates to take (default {STEPS})")
    parser.add_argument("--autograd", action="store_true",
                        help="differentiate surface_loss with autograd instead of sgdtui's exact gradient")
    args = parser.parse_args(argv)
    rows = run(args.steps, autograd=args.autograd)
    if args.csv:
        with open(args.csv, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["start", "step", "x", "y", "loss", "lr"])
            writer.writerows([i, step, repr(x), repr(y), repr(loss), repr(lr)]  # start by start, as the replay
                             for step, i, x, y, loss, lr in sorted(rows, key=lambda row: (row[1], row[0])))
    for step, i, x, y, loss, lr in rows[-len(STARTS):]:
        print(f"start {i}: step {step}, (x, y) = ({x:.6g}, {y:.6g}), loss {loss:.6g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
