"""One controller per state directory (and per SQLite database): a second start with the same
configuration stops at once, with one line naming the file and the process that holds it.

The lock is an flock() on a file in the state directory, held by the open file for the process's
life: the kernel drops it when the process ends, however it ends, so a crash leaves no stale lock.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from controller.model import install
from controller.shell.listeners import fail


def _take(path: Path) -> IO[str]:
    fh = open(path, "a+")  # noqa: SIM115  held open for the process's life
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        fail(f"{path} is locked by {holder}: another controller runs on this state directory or database")
    fh.seek(0)
    fh.truncate()
    fh.write(f"pid {os.getpid()}\n")
    fh.flush()
    return fh


def lock(state_dir: str, db: str | None = None) -> list[IO[str]]:
    """Lock the state directory (made 0700 if missing) and, when it lives elsewhere, the SQLite
    database; the open files that hold the locks (keep them)."""
    directory = Path(state_dir)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as e:
        fail(f"cannot create the state directory {directory} ([overlay] state_dir): {e.strerror or e}")
    paths = [directory / install.LOCK_FILE]
    if db is not None and Path(db).resolve().parent != directory.resolve():
        paths.append(Path(f"{db}.lock"))
    try:
        return [_take(p) for p in paths]
    except OSError as e:
        fail(f"cannot lock {e.filename}: {e.strerror or e}")
