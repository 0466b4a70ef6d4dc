"""Headless replay: run a script, write the problem's per-step files and summary.json.

The per-step files are written as the run goes: the race hands every staged block of steps to a
sink (``CsvStream``), which appends each lane's (and start point's) rows to a spool file of its
own next to the output, and the spools are joined in the file's order (lane, start, step) when
the run ends. Peak memory is flat in the number of steps, and the file is byte-identical to
writing it from the full history at the end. ``every`` keeps every K-th step (and each lane's
last step).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from sgdtui.engine.files import write_output_text, writing
from sgdtui.engine.script import Script
from sgdtui.engine.session import Session

REPLAY_HISTORY = 4096  # rows the replayed lanes keep in memory (the files get every step)
MAX_OPEN = 128  # spool files kept open at once; more are reopened per block


class CsvStream:
    """Rows of a per-step CSV spooled per (lane, part) as the run goes, joined at the end.

    A problem kind's race calls ``restart(lane)`` when a lane (re)starts (its rows so far are
    dropped: the file holds each lane's history since its last reset), ``removed(lane)``,
    ``rows(lane, part, rows, last_step)`` with formatted rows in step order, ``last(lane, part, step, row)``
    with the latest row, written at the end when ``every`` skipped it.
    """

    def __init__(self, out: Path, name: str, header: Iterable[str], every: int = 1):
        self.path = Path(out) / name
        self.header = tuple(header)
        self.every = every
        self.spool = Path(tempfile.mkdtemp(dir=out, prefix=f".{name}-"))
        self._parts: dict[int, dict[Any, Path]] = {}  # id(lane) -> part -> spool file
        self._open: dict[Path, Any] = {}
        self._tail: dict[tuple[int, Any], tuple[int, tuple]] = {}  # latest row, for every > 1
        self._written: dict[tuple[int, Any], int] = {}  # latest step written
        self._serial = 0

    def restart(self, lane: Any) -> None:
        self.removed(lane)
        self._parts[id(lane)] = {}

    def removed(self, lane: Any) -> None:
        for part, path in self._parts.pop(id(lane), {}).items():
            handle = self._open.pop(path, None)
            if handle is not None:
                handle.close()
            path.unlink(missing_ok=True)
            self._tail.pop((id(lane), part), None)
            self._written.pop((id(lane), part), None)

    def keep(self, step: int) -> bool:
        return self.every == 1 or step % self.every == 0

    def rows(self, lane: Any, part: Any, rows: list, last_step: int | None) -> None:
        """Append ``rows`` (already filtered by ``keep``) for ``part`` of ``lane``; ``last_step``
        is the step of the last of them."""
        key = (id(lane), part)
        parts = self._parts.setdefault(id(lane), {})
        path = parts.get(part)
        if path is None:
            self._serial += 1
            path = parts[part] = self.spool / f"{self._serial}.csv"
        if rows:
            with writing(self.path):  # the spool holds the output file's rows
                handle = self._open.get(path)
                if handle is None:
                    handle = open(path, "a", newline="")
                    if len(self._open) < MAX_OPEN:
                        self._open[path] = handle
                csv.writer(handle).writerows(rows)
                if path not in self._open:
                    handle.close()
            self._written[key] = last_step

    def last(self, lane: Any, part: Any, step: int, row: tuple) -> None:
        self._tail[(id(lane), part)] = (step, row)

    def finish(self, order: list[tuple[Any, list[Any]]]) -> None:
        """Write the file: ``order`` lists the lanes at the end and each one's parts in order."""
        with writing(self.path):
            for handle in self._open.values():
                handle.close()
            self._open = {}
            for (lane_id, part), (step, row) in self._tail.items():
                if self._written.get((lane_id, part)) != step:
                    path = self._parts.get(lane_id, {}).get(part)
                    if path is not None:
                        with open(path, "a", newline="") as fh:
                            csv.writer(fh).writerow(row)
            header = io.StringIO(newline="")
            csv.writer(header).writerow(self.header)
            with open(self.path, "wb") as out:
                out.write(header.getvalue().encode())
                for lane, parts in order:
                    spools = self._parts.get(id(lane), {})
                    for part in parts:
                        path = spools.get(part)
                        if path is not None and path.exists():
                            with open(path, "rb") as src:
                                shutil.copyfileobj(src, out)
        self.close()

    def close(self) -> None:
        for handle in self._open.values():
            handle.close()
        self._open = {}
        shutil.rmtree(self.spool, ignore_errors=True)


def run_replay(script: Script, out_dir: Path | str, *, steps: int | None = None, progress: bool = False,
               every: int = 1) -> dict[str, Any]:
    """Replay ``script``, streaming its per-step files into ``out_dir`` (every ``every``-th step),
    and write summary.json; returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    session = Session.from_script(script, history_capacity=REPLAY_HISTORY)
    stream = session.race.stream_outputs(out, every)  # each problem kind's race streams its own files
    total = script.steps if steps is None else steps
    try:
        if progress:
            _run_with_bar(session, total)
        else:
            session.run(total)
        files = session.race.finish_outputs(stream)
    except BaseException:
        for s in stream:
            s.close()
        raise
    summary = {"script": script.path, "steps": total, "problem": session.problems_visited[0],
               "problems": list(session.problems_visited), "seed": script.seed, **session.race.summary()}
    if session.captions:
        summary["captions"] = [{"step": step, "text": text} for step, text in session.captions]
    if every != 1:
        summary["every"] = every
    summary["files"] = [*files, "summary.json"]
    summary["out"] = str(out)
    write_output_text(out / "summary.json", json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary


def _run_with_bar(session: Session, total: int) -> None:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("replay"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
                  TimeRemainingColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("replay", total=total)
        session.run(total, progress=lambda done, _total: bar.update(task, completed=done))


ReportFn = Callable[[int, int], None]
