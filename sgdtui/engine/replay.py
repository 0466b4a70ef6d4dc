"""Headless replay: run a script and write trajectories.csv and summary.json."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from sgdtui.engine.race import CONVERGED_TOL
from sgdtui.engine.script import Script
from sgdtui.engine.session import Session

CSV_COLUMNS = ("lane", "start", "step", "x", "y", "loss", "lr")
METRICS_COLUMNS = ("lane", "step", "train_loss", "val_loss", "val_acc", "lr", "weight_norm", "effective_lr")


def run_replay(script: Script, out_dir: Path | str, *, steps: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Replay ``script`` (every step kept), write the outputs into ``out_dir``, return the summary."""
    session = Session.from_script(script, history_capacity=None)
    total = script.steps if steps is None else steps
    if progress:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                      TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("replay", total=total)
            session.run(total, progress=lambda done, _total: bar.update(task, completed=done))
    else:
        session.run(total)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if session.mode == "mlp":
        write_metrics_csv(session, out / "metrics.csv")
        summary = summarize_mlp(session, script, total)
        summary["files"] = ["metrics.csv", "summary.json"]
    else:
        write_trajectories_csv(session, out / "trajectories.csv")
        summary = summarize(session, script, total)
        summary["files"] = ["trajectories.csv", "summary.json"]
    summary["out"] = str(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary


def write_trajectories_csv(session: Session, path: Path) -> None:
    """One row per lane, start point and step; step 0 is the start point. Floats are written with
    repr, so the same script gives byte-identical files."""
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_COLUMNS)
        for name, hist in session.trajectories().items():
            steps, pos, loss, lr = hist["step"], hist["pos"], hist["loss"], hist["lr"]
            for start in range(pos.shape[1]):
                xs, ys, ls = pos[:, start, 0].tolist(), pos[:, start, 1].tolist(), loss[:, start].tolist()
                for k, step in enumerate(steps.tolist()):
                    writer.writerow((name, start, step, repr(xs[k]), repr(ys[k]), repr(ls[k]), repr(float(lr[k]))))


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def summarize(session: Session, script: Script, total: int) -> dict[str, Any]:
    surface = session.surface
    lanes = []
    for lane in session.race.lanes:
        hist = lane.history.snapshot()
        per_start = []
        for k in range(lane.n):
            losses = hist["loss"][:, k]
            reached = None
            if surface.min_value is not None:
                hit = np.nonzero(losses - surface.min_value < CONVERGED_TOL)[0]
                reached = int(hist["step"][hit[0]]) if len(hit) else None
            per_start.append({
                "final_loss": _finite_or_none(losses[-1]),
                "best_loss": _finite_or_none(np.nanmin(losses)) if np.isfinite(losses).any() else None,
                "steps_to_min": reached,
                "diverged_at": None if lane.diverged_at[k] < 0 else int(lane.diverged_at[k]),
            })
        first = per_start[0]
        entry = {
            "lane": lane.config.name,
            "optimizer": lane.config.optimizer,
            **first,
            "wall_time": lane.wall_time,
        }
        if lane.n > 1:
            # Lane-level figures cover every start point; the details stay in per_start.
            reached = [p["steps_to_min"] for p in per_start]
            diverged = [p["diverged_at"] for p in per_start if p["diverged_at"] is not None]
            entry["final_loss"] = _finite_or_none(float(np.mean(hist["loss"][-1])))
            entry["best_loss"] = min((p["best_loss"] for p in per_start if p["best_loss"] is not None), default=None)
            entry["steps_to_min"] = None if None in reached else max(reached)  # when the last start got there
            entry["diverged_at"] = min(diverged) if diverged else None  # the first divergence
            entry["per_start"] = per_start
        lanes.append(entry)
    problem = script.problem.get("surface") or script.problem.get("expr") or surface.name
    return {"script": script.path, "steps": total, "problem": problem, "seed": script.seed,
            "min_value": surface.min_value, "lanes": lanes}


def _cell(v: float) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(float(v))


def write_metrics_csv(session: Session, path: Path) -> None:
    """MLP mode: one row per lane and step. Step k >= 1 holds the minibatch loss and lr of update k;
    val_loss, val_acc, weight_norm and effective_lr (lr / ||W||^2 of the first normalized layer)
    are filled every eval_every steps (and at step 0), empty otherwise."""
    histories = session.trajectories()
    evals = session.evaluations()
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(METRICS_COLUMNS)
        for name, hist in histories.items():
            ev = evals[name]
            by_step = {int(t): k for k, t in enumerate(ev["step"].tolist())}
            lr_of = dict(zip(hist["step"].tolist(), hist["lr"].tolist()))
            loss_of = dict(zip(hist["step"].tolist(), hist["train_loss"].tolist()))
            steps = sorted(set(lr_of) | set(by_step))
            for step in steps:
                lr = lr_of.get(step)
                row = [name, step, _cell(loss_of.get(step)), "", "", _cell(lr), "", ""]
                if step in by_step:
                    k = by_step[step]
                    row[3], row[4], row[6] = _cell(ev["val_loss"][k]), _cell(ev["val_acc"][k]), _cell(ev["weight_norm"][k])
                    norm_sq = ev["norm_sq"][k]
                    if lr is not None and math.isfinite(norm_sq) and norm_sq > 0:
                        row[7] = _cell(lr / norm_sq)
                writer.writerow(row)


def summarize_mlp(session: Session, script: Script, total: int) -> dict[str, Any]:
    """final_loss / best_loss are validation losses (the full-data loss); steps_to_min is null
    (an MLP has no known minimum)."""
    evals = session.evaluations()
    lanes = []
    for lane in session.race.lanes:
        ev = evals[lane.config.name]
        val = ev["val_loss"]
        finite = val[np.isfinite(val)]
        train = lane.history.column("train_loss")
        acc = ev["val_acc"]
        lanes.append({
            "lane": lane.config.name,
            "optimizer": lane.config.optimizer,
            "final_loss": _finite_or_none(float(val[-1])) if len(val) else None,
            "best_loss": float(finite.min()) if len(finite) else None,
            "steps_to_min": None,
            "diverged_at": lane.diverged_at,
            "wall_time": lane.wall_time,
            "final_train_loss": _finite_or_none(float(train[-1])) if len(train) else None,
            "final_val_acc": _finite_or_none(float(acc[-1])) if len(acc) else None,
        })
    problem = session.race.problem
    return {"script": script.path, "steps": total, "problem": problem.name, "seed": script.seed,
            "device": str(session.race.device), "eval_every": problem.eval_every, "min_value": None,
            "lanes": lanes}
