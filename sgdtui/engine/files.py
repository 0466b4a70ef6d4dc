"""Output files: a failed write names the file it was writing (a full disk, a read-only folder),
in one line, instead of a bare "[Errno 28] No space left on device"."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Any, Iterator


class WriteError(OSError):
    """A write that failed, with the file's name in its message."""

    def __str__(self) -> str:
        return f"could not write {self.filename}: {self.strerror}"


@contextlib.contextmanager
def writing(path: Path | str) -> Iterator[None]:
    """Run the block that writes ``path``; an OSError from it becomes a WriteError naming ``path``."""
    try:
        yield
    except WriteError:
        raise
    except OSError as exc:
        reason = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
        raise WriteError(exc.errno, reason, str(path)) from exc


@contextlib.contextmanager
def open_output(path: Path | str, mode: str = "w", **options: Any) -> Iterator[IO]:
    """``open(path, mode, **options)`` for an output file, inside ``writing(path)``."""
    with writing(path), open(path, mode, **options) as handle:
        yield handle


def write_output_text(path: Path | str, text: str) -> None:
    """``Path(path).write_text(text)``, inside ``writing(path)``."""
    with writing(path):
        Path(path).write_text(text)
