"""Rules on a parsed config's values: safe names, unique grid entries, numbers in range; problems with field paths."""
from __future__ import annotations

import math
from numbers import Number
from pathlib import Path
from typing import Any, Iterable, Optional

from xfer.config import DataConfig, StudyConfig, TrainConfig
from xfer.convert import short
from xfer.data.root import resolve_path
from xfer.paths import name_problem
from xfer.source import parse_source


def _number(value: Any) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def _range(value: Any, field: str, low: float, high: Optional[float] = None, low_open: bool = False,
           high_open: bool = True) -> Optional[str]:
    """A problem when a number is outside [low, high) (or (low, ...)); other types are the parser's to report."""
    if not _number(value):
        return None
    if isinstance(value, float) and not math.isfinite(value):  # .inf and .nan pass every comparison below, then fail inside a trial
        return f"{field}: {short(value)} is not a finite number"
    below = value <= low if low_open else value < low
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        closing = ")" if high_open or high is None else "]"
        span = f"{'(' if low_open else '['}{low}, {'∞' if high is None else high}{closing}"
        return f"{field}: {short(value)} is out of range; expected a value in {span}"
    return None


MAX_SEED = 2**32  # torch.manual_seed and numpy's legacy seeding take seeds below this

GRID_WHY = "every grid entry must be unique, or two trials would share one key and one MLflow run"


def duplicates(items: Iterable[tuple[str, Any]], what: str, why: str = GRID_WHY) -> list[str]:
    """'B duplicates A (<what> <value>)' for each entry (field path, value) whose value an earlier one has."""
    seen: dict[Any, str] = {}
    problems = []
    for path, value in items:
        key = repr(value)
        if key in seen:
            problems.append(f"{path}: duplicates {seen[key]} ({what} {short(value)}); {why}")
        else:
            seen[key] = path
    return problems


def train_problems(train: Optional[TrainConfig], at: str = "train") -> list[str]:
    if train is None:
        return []
    checks = [_range(train.epochs, f"{at}.epochs", 1), _range(train.batch_size, f"{at}.batch_size", 1),
              _range(train.lr, f"{at}.lr", 0, low_open=True), _range(train.momentum, f"{at}.momentum", 0, 1),
              _range(train.weight_decay, f"{at}.weight_decay", 0),
              _range(train.freeze_epochs, f"{at}.freeze_epochs", 0),
              _range(train.backbone_lr_mult, f"{at}.backbone_lr_mult", 0),
              _range(train.label_smoothing, f"{at}.label_smoothing", 0, 1),
              _range(train.mixup_alpha, f"{at}.mixup_alpha", 0),
              _range(train.early_stopping_patience, f"{at}.early_stopping_patience", 0),
              _range(train.num_workers, f"{at}.num_workers", 0)]
    return [c for c in checks if c]


def data_problems(data: Optional[DataConfig], base_dir: Path) -> list[str]:
    """Safe dataset names, no dataset listed twice (by name or by folder), a usable image size."""
    if data is None:
        return []
    datasets = [(i, d) for i, d in enumerate(data.datasets or ()) if d is not None]
    problems = [p for i, d in datasets if (p := name_problem(d.name, f"data.datasets[{i}].name"))]
    problems += duplicates(((f"data.datasets[{i}].name", d.name) for i, d in datasets), "dataset name",
                           "trials record datasets by name, so each name must be unique")
    seen: dict[tuple, int] = {}
    for i, d in datasets:
        if not isinstance(d.root, str):
            continue
        # label maps that leave out different labels (xfer init's one dataset per source) read different images
        files = (str(resolve_path(d.root, base_dir).resolve()), d.images_dir, d.metadata, d.folders, d.xrv_class,
                 tuple(sorted((d.label_map or {}).items(), key=str)))
        if files in seen:
            problems.append(f"data.datasets[{i}]: reads the same files as data.datasets[{seen[files]}] ({files[0]}); "
                            "a dataset listed twice would put every image twice into train, val and test")
        seen.setdefault(files, i)
    problems += [p for p in [_range(data.image_size, "data.image_size", 8)] if p]
    if data.split is not None:
        problems += [p for p in [_range(data.split.seed, "data.split.seed", 0, MAX_SEED)] if p]
    return problems


def study_problems(study: StudyConfig, base_dir: Path) -> list[str]:
    """Every value rule of a study; tolerant of the parts the parser could not build (None)."""
    problems = [p for p in [name_problem(study.name, "name")] if p]
    if study.tracking is not None and study.tracking.experiment is not None:
        problems += [p for p in [name_problem(study.tracking.experiment, "tracking.experiment")] if p]
    problems += data_problems(study.data, base_dir) + train_problems(study.train)
    t = study.trials
    if t is not None:
        inits = [(i, init) for i, init in enumerate(t.init or ()) if init is not None]
        for i, init in inits:
            if init.label is not None and (p := name_problem(init.label, f"trials.init[{i}].label")):
                problems.append(p)
            problems += stage_source_problems(init.source, f"trials.init[{i}].source")
        problems += [p + "; give one of them a distinct `label`" for p in
                     duplicates(((f"trials.init[{i}]", init.name) for i, init in inits), "init name")]
        problems += duplicates(((f"trials.models[{i}]", m) for i, m in enumerate(t.models or ())), "model")
        problems += duplicates(((f"trials.n_per_class[{i}]", n) for i, n in enumerate(t.n_per_class or ())),
                               "n_per_class")
        listed = t.seeds if isinstance(t.seeds, tuple) else ()  # per n and in waves: load.seed_problems
        problems += duplicates(((f"trials.seeds[{i}]", s) for i, s in enumerate(listed)), "seed")
        problems += [p for i, s in enumerate(listed) if (p := _range(s, f"trials.seeds[{i}]", 0, MAX_SEED))]
        if isinstance(t.seeds, (tuple, dict)) and len(t.seeds) == 0:
            problems.append("trials.seeds: empty; name at least one seed, e.g. [0]")
        if t.n_per_class is not None and len(t.n_per_class) == 0:
            problems.append("trials.n_per_class: empty; name at least one size, e.g. [all]")
    if study.resources is not None:
        problems += [p for p in [_range(study.resources.cpu, "resources.cpu", 0, low_open=True),
                                 _range(study.resources.gpu, "resources.gpu", 0)] if p]
    if study.ray is not None:
        problems += [p for p in [_range(study.ray.max_failures, "ray.max_failures", 0),
                                 _range(study.ray.max_concurrent, "ray.max_concurrent", 1)] if p]
    return problems


def stage_source_problems(source: Any, field: str) -> list[str]:
    """A `stage:NAME` source must name a recipe by a safe name (it becomes a file and a cache folder)."""
    if not isinstance(source, str):
        return []
    parsed = parse_source(source)
    return [p for p in [name_problem(parsed.name, field)] if p] if parsed.kind == "stage" else []
