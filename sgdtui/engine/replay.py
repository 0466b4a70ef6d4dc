"""Headless replay: run a script, write the problem's per-step files and summary.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sgdtui.engine.script import Script
from sgdtui.engine.session import Session


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
    files = session.race.write_outputs(out)
    summary = {"script": script.path, "steps": total, "problem": session.problems_visited[0],
               "problems": list(session.problems_visited), "seed": script.seed, **session.race.summary()}
    if session.captions:
        summary["captions"] = [{"step": step, "text": text} for step, text in session.captions]
    summary["files"] = [*files, "summary.json"]
    summary["out"] = str(out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary
