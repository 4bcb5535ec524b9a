"""One writer per study: a lock file naming its holder (pid, host), taken over only when that holder is gone."""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".xfer-study.lock"


class StudyLockedError(RuntimeError):
    """Another live process is running the same study into the same folder."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}


def _is_stale(holder: dict) -> bool:
    """A lock whose holder ran on this host and has exited (a crash or SIGKILL left it behind)."""
    return holder.get("host") == socket.gethostname() and not _alive(int(holder.get("pid", 0) or 0))


@contextlib.contextmanager
def study_lock(folder: Path, study: str) -> Iterator[Path]:
    """Hold `folder/.xfer-study.lock` while the block runs; refuses when a live holder has it."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "study": study, "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _holder(lock)
            if holder and not _is_stale(holder):
                raise StudyLockedError(
                    f"study {study!r} is already running into {folder} (pid {holder.get('pid')} on "
                    f"{holder.get('host')}, since {holder.get('since')}); wait for it to end, or, if that "
                    f"process is gone, delete {lock}") from None
            lock.unlink(missing_ok=True)  # stale (or unreadable): its holder is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(me))
        break
    else:
        raise StudyLockedError(f"could not take {lock}: another run took it at the same moment; try again")
    try:
        yield lock
    finally:
        if _holder(lock).get("pid") == os.getpid():
            lock.unlink(missing_ok=True)
