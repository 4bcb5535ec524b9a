"""Checks a study passes before any trial starts: published weights cached, data columns, classes per split, n."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from xfer.config import StudyConfig


def missing_published_weights(study: StudyConfig) -> list[str]:
    """Every published weight file the trials need must be in its library's cache."""
    from xfer.inits import strategy_info
    from xfer.inits.published import published_weights
    from xfer.inits.weights import source_for

    problems = []
    for i, init in enumerate(study.trials.init):
        info = strategy_info(init.strategy)
        if not info.takes_source or init.origin.kind in ("stage", "file"):
            continue
        for model in study.trials.models:
            try:
                weights = published_weights(source_for(model, init.source, info.published_role))
            except (ValueError, KeyError) as e:
                problems.append(f"trials.init[{i}].source (model {model}): {e}")
                continue
            if not weights.cache_path.is_file():
                problems.append(f"trials.init[{i}].source (model {model}): weight file {weights.file} is missing; "
                                f"searched {weights.cache_path}; fetch it with `xfer weights fetch {weights.source}` "
                                f"when online, or copy it there")
    return problems


def data_problems(study: StudyConfig, base_dir: Path) -> list[str]:
    """Read every dataset's records (not its images): missing columns or files, classes left empty by the
    filters or by the split, and training sets smaller than an n_per_class; each dataset on its own line."""
    from xfer.data.records import DATASETS
    from xfer.data.splits import patient_level_split

    data, problems, records = study.data, [], []
    for i, ds in enumerate(data.datasets):
        try:
            records += [r for r in DATASETS.get_or_raise(ds.layout)(ds, data.classes, base_dir) if r.label >= 0]
        except (OSError, ValueError, KeyError, LookupError) as e:
            problems.append(f"data.datasets[{i}] ({ds.name}): {e}")
    if problems:
        return problems
    too_big = image_cache_problem(study, len(records))
    if too_big:
        return [too_big]
    counts = np.bincount([r.label for r in records], minlength=len(data.classes))
    empty = [c for c, n in zip(data.classes, counts) if n == 0]
    if empty:
        return [f"data.classes: {empty} have no images after the label_map and the view/modality filters "
                f"(images per class: {dict(zip(data.classes, counts.tolist()))}); fix data.classes, label_map "
                "or views"]
    if getattr(data.split, "folds", None):
        return []  # cross-validation checks every part of every fold itself, when the study loads (FoldError)
    try:
        split = patient_level_split(records, data.split)
    except ValueError as e:
        return [f"data.split: {e}"]
    labels = np.array([r.label for r in records])
    for part in ("train", "val", "test"):
        per_class = np.bincount(labels[list(getattr(split, part))], minlength=len(data.classes))
        lacking = [c for c, n in zip(data.classes, per_class) if n == 0]
        if lacking:
            problems.append(f"data.split: the {part} split has no image of class(es) {lacking} "
                            f"(per class: {dict(zip(data.classes, per_class.tolist()))}); add data or change "
                            "the fractions")
    train = np.bincount(labels[list(split.train)], minlength=len(data.classes))
    for i, n in enumerate(study.trials.n_per_class):
        short = {c: int(k) for c, k in zip(data.classes, train) if n != "all" and k < n}
        if short:
            problems.append(f"trials.n_per_class[{i}]: {n} is more than the training images of class(es) {short}; "
                            f"use at most {int(train.min())} or 'all'")
    return problems


def memory_bytes() -> int:
    """This machine's physical memory."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def image_cache_problem(study: StudyConfig, images: int) -> str | None:
    """The decoded images (uint8, images × channels × size², at every progressive size) must fit in half the memory."""
    data = study.data
    sizes = {data.image_size, *(size for _, size in study.train.progressive_sizes)}
    need = sum(images * data.channels * size * size for size in sizes)
    have = memory_bytes()
    if need <= have // 2:
        return None
    fits = int((have // 2 / max(images * data.channels * len(sizes), 1)) ** 0.5)
    return (f"data.image_size: {data.image_size} px needs {need / 1e9:,.1f} GB for the {images} decoded images "
            f"(uint8, {data.channels} channel(s){', every progressive size' if len(sizes) > 1 else ''}); this "
            f"machine has {have / 1e9:,.1f} GB: use at most ~{fits} px")


def study_preflight(study: StudyConfig, base_dir: Path) -> list[str]:
    """Every problem found before a trial starts (data read without its images; weights looked up in caches)."""
    return missing_published_weights(study) + data_problems(study, base_dir)
