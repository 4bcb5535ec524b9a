"""One writer per study under contention (issue 25): many processes taking over a stale lock at the same moment."""
import json
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xfer.lock import LOCK_FILE, StudyLockedError, study_lock

TAKERS = 50
ATTEMPTS = 10


def _take(folder: str, start, active, most, taken, seed: int) -> None:
    """One contender: from the start, try the lock ATTEMPTS times; while holding it, count the holders."""
    rng = random.Random(seed)
    start.wait()
    for _ in range(ATTEMPTS):
        time.sleep(rng.random() * 0.005)
        try:
            with study_lock(Path(folder), "s"):
                with active.get_lock():
                    active.value += 1
                    most.value = max(most.value, active.value)
                time.sleep(rng.random() * 0.002)
                with active.get_lock():
                    active.value -= 1
                    taken.value += 1
        except StudyLockedError:
            pass


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)


def test_fifty_concurrent_takers_of_a_stale_lock_never_make_two_holders(tmp_path):
    ctx = multiprocessing.get_context("fork")
    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": _dead_pid(), "host": socket.gethostname()}))
    start, active, most, taken = ctx.Event(), ctx.Value("i", 0), ctx.Value("i", 0), ctx.Value("i", 0)
    takers = [ctx.Process(target=_take, args=(str(tmp_path), start, active, most, taken, i))
              for i in range(TAKERS)]
    for p in takers:
        p.start()
    start.set()
    for p in takers:
        p.join(60)
    assert all(p.exitcode == 0 for p in takers)
    assert taken.value >= 2 and most.value == 1, f"{most.value} processes held the study lock at once"


def test_a_holder_killed_without_cleanup_releases_the_lock_at_once(tmp_path):
    holder = ("import os, sys, pathlib; from xfer.lock import study_lock\n"
              "cm = study_lock(pathlib.Path(sys.argv[1]), 's'); cm.__enter__(); os._exit(0)")
    subprocess.run([sys.executable, "-c", holder, str(tmp_path)], check=True, env={**os.environ})
    assert json.loads((tmp_path / LOCK_FILE).read_text())["pid"] != os.getpid()  # left behind, as after SIGKILL
    with study_lock(tmp_path, "s") as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
