"""Shared pieces of the benchmarks: the machine they ran on, a real X-ray dataset, a one-model study."""
from __future__ import annotations

import dataclasses
import datetime
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Callable, TypeVar, Union

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))  # `python bench/X.py` from a checkout without `pip install -e .`

from xfer.config import (DataConfig, DatasetConfig, InitConfig, RayConfig, SplitConfig, StudyConfig,  # noqa: E402
                         TrackingConfig, TrainConfig, TrialsConfig)

T = TypeVar("T")


def machine() -> str:
    """One line naming the machine, its load and the library versions, for bench/RESULTS.md."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{datetime.date.today()} · {cpu}, {os.cpu_count()} cores{gpu} · load {load} · "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    began = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - began


def _stat(pid: str) -> tuple[int, float]:
    """(parent pid, CPU seconds of the process and of its children it has waited for) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds so far of `root` and each of its descendants (Ray's daemons and workers included)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = _stat(entry.name)
            except (OSError, IndexError, ValueError):
                pass  # exited meanwhile
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    seen, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            seen[pid] = stats[pid][1]
            todo.extend(children.get(pid, []))
    return seen


def cpu_timed(fn: Callable[[], T], every_s: float = 0.25) -> tuple[T, float, float]:
    """(result, wall seconds, CPU seconds of this process tree) for one call.

    The tree is sampled every `every_s`: Ray's raylet ignores SIGCHLD, so a worker that exits takes its
    CPU time with it; sampling loses at most `every_s` of each such worker. The sampling's own CPU is
    taken out.
    """
    first, last, sampling = tree_cpu(os.getpid()), {}, [0.0]
    done = threading.Event()

    def sample() -> None:
        while True:
            last.update(tree_cpu(os.getpid()))
            if done.wait(every_s):
                last.update(tree_cpu(os.getpid()))
                sampling[0] = time.thread_time()  # this thread's own CPU, taken out below
                return

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        out, wall = timed(fn)
    finally:
        done.set()
        thread.join()
    return out, wall, sum(cpu - first.get(pid, 0.0) for pid, cpu in last.items()) - sampling[0]


def kermany(image_size: int, per_class: int, cache_dir: Path) -> DataConfig:
    """Kermany normal/pneumonia X-rays (224 px JPEGs): the first `per_class` training images of each class."""
    dataset = DatasetConfig(name="kermany224", layout="class_folders", root=str(DATA / "kermany-pneumonia-224"),
                            folders=("train",), max_per_class=per_class)
    return DataConfig(datasets=(dataset,), classes=("NORMAL", "PNEUMONIA"), positive_class="PNEUMONIA",
                      image_size=image_size, split=SplitConfig(val_fraction=0.2, test_fraction=0.2, seed=0),
                      cache_dir=str(cache_dir))


def one_model_study(name: str, data: DataConfig, model: str, epochs: int, out: Path,
                    seeds: tuple[int, ...] = (0,), n_per_class: tuple[Union[int, str], ...] = ("all",),
                    max_concurrent: int | None = None) -> StudyConfig:
    """A study of random-init trials of one model, tracked in its own sqlite file under `out`."""
    return StudyConfig(name=name, data=data,
                       trials=TrialsConfig(init=(InitConfig("random"),), models=(model,), n_per_class=n_per_class,
                                           seeds=seeds),
                       train=TrainConfig(epochs=epochs, batch_size=16, lr=1e-3),
                       ray=RayConfig(max_concurrent=max_concurrent),
                       tracking=TrackingConfig(uri=f"sqlite:///{out / 'mlflow.db'}"), output_dir=str(out))


def with_name(study: StudyConfig, name: str, out: Path) -> StudyConfig:
    """The same study under another name and output folder (a fresh MLflow experiment: nothing is reused)."""
    return dataclasses.replace(study, name=name, output_dir=str(out),
                               tracking=TrackingConfig(uri=f"sqlite:///{out / 'mlflow.db'}"))


def run_trials(study: StudyConfig):
    """Every trial of `study` through xfer's Tune path (`xfer.tune.run_phase`, MLflow included); raises if one failed."""
    from xfer import track
    from xfer.plan import evaluation_phase
    from xfer.tune import run_phase

    uri, experiment = track.tracking_for(study.tracking, study.name)
    experiment_id = track.ensure_experiment(uri, experiment)
    inits = {(i.name, m): i for i in study.trials.init for m in study.trials.models}
    results = run_phase(study, evaluation_phase(study), inits, uri, experiment_id, None, resume=False)
    errors = [r.error for r in results if r.error is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} trial(s) failed; the first: {errors[0]!r}")
    return results


def ratio_line(label: str, value: float, target: str) -> str:
    return f"| {label} | {value:.2f}× | {target} |"
