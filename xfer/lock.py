"""One writer per study: an OS lock (flock) on `.xfer-study.lock`, held for the study's life; the file names its holder."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

LOCK_FILE = ".xfer-study.lock"


class StudyLockedError(RuntimeError):
    """Another live process is running the same study into the same folder."""


def _holder(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}


def _same_file(fd: int, lock: Path) -> bool:
    """The locked descriptor is still the file at `lock` (not one a releasing holder unlinked meanwhile)."""
    try:
        here, there = os.fstat(fd), os.stat(lock)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


@contextlib.contextmanager
def study_lock(folder: Path, study: str) -> Iterator[Path]:
    """Hold `folder/.xfer-study.lock` while the block runs; refuses when a live holder has it.

    The kernel holds the lock for the open file, so a crashed or killed holder releases it at once and taking it
    over is atomic (the old read-stale → unlink → create let two processes in); the JSON inside only says who."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / LOCK_FILE
    me = {"pid": os.getpid(), "host": socket.gethostname(), "study": study, "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = _holder(lock)
            raise StudyLockedError(
                f"study {study!r} is already running into {folder} (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, since {holder.get('since', '?')}); wait for it to end (the lock is "
                f"released when that process exits, however it ends)") from None
        if _same_file(fd, lock):
            break
        os.close(fd)  # the holder we waited on removed this file as it released it: lock the new one
    try:
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(me).encode())
        yield lock
    finally:
        lock.unlink(missing_ok=True)  # while still locked: whoever locks the unlinked file sees it is stale
        os.close(fd)
