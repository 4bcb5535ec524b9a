"""DataConfig → records → patient-level split (fixed or one fold) → cached image array, in one call; and the
external validation sets, less any image also in the target pool."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from xfer.config import DataConfig
from xfer.data.root import resolve_path
from xfer.data.cache import load_image_array
from xfer.data.dedup import remove_overlap
from xfer.data.records import DATASETS, Record, cap_per_class, load_external_records, load_records, read_every_image
from xfer.data.splits import FoldError, Split, check_no_patient_in_two_splits, fold_splits, split_for


@dataclass
class PreparedData:
    """Everything a trial needs from the data: images, labels, patients and the split (by index)."""

    images: np.ndarray  # uint8 (N, C, S, S), memory-mapped from the cache
    labels: np.ndarray  # int64 (N,), indices into `classes` (-1: several classes, multi-label data)
    patient_ids: np.ndarray  # str (N,)
    sources: np.ndarray  # str (N,), the dataset name of each image
    split: Split
    classes: tuple[str, ...]
    records: list[Record]
    channels: int = 1
    cache_dir: Path = Path(".xfer_cache")
    targets: Optional[np.ndarray] = None  # float32 (N, classes) of 1 / 0 / NaN when data.multi_label
    _by_size: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def images_at(self, size: int) -> np.ndarray:
        """The same images decoded at another size (for progressive resizing), cached on disk."""
        if size == self.image_size:
            return self.images
        if size not in self._by_size:
            images, kept = load_image_array(self.records, size, self.channels, self.cache_dir)
            if len(kept) != len(self.records):
                raise RuntimeError(f"{len(self.records) - len(kept)} image(s) became unreadable since the "
                                   f"data was prepared at {self.image_size} px; see the warning above")
            self._by_size[size] = images
        return self._by_size[size]


@dataclass(frozen=True)
class ExternalSet:
    """An external validation set, decoded like the target: images, class indices, records."""

    name: str
    images: np.ndarray  # uint8 (N, C, S, S)
    labels: np.ndarray  # int64 (N,), indices into the study's classes (some classes may be absent)
    records: list[Record]


def prepare_data(data: DataConfig, base_dir: Path, overlap_listing: Optional[Path] = None,
                 fold: Optional[int] = None, repeat: int = 0) -> PreparedData:
    """Read the records (less any image also in data.exclude_overlap_with), decode them at data.image_size
    (cached), split by patient (the fixed split, or `fold` of `repeat` with data.split.folds) and check it."""
    cache_dir = Path(os.path.abspath(resolve_path(data.cache_dir, base_dir)))
    records = load_records_without_overlap(data, base_dir, cache_dir, overlap_listing)
    images, kept = load_image_array(records, data.image_size, data.channels, cache_dir)
    records = [records[i] for i in kept]
    split = split_for(records, data.split, fold, repeat)
    check_no_patient_in_two_splits(split, records)
    return PreparedData(
        images=images,
        labels=np.array([r.label for r in records], dtype=np.int64),
        patient_ids=np.array([r.patient_id for r in records], dtype=str),
        sources=np.array([r.source for r in records], dtype=str),
        split=split,
        classes=tuple(data.classes),
        records=records,
        channels=data.channels,
        cache_dir=cache_dir,
        targets=np.array([r.targets for r in records], dtype=np.float32) if data.multi_label else None,
    )


def load_records_without_overlap(data: DataConfig, base_dir: Path, cache_dir: Path,
                                 listing: Optional[Path] = None) -> list[Record]:
    """load_records() less every image whose content is in data.exclude_overlap_with; each dataset's
    max_per_class is applied after the removal. The removed pairs go to `listing` (default: in cache_dir)."""
    if not data.exclude_overlap_with:
        return load_records(data, base_dir)
    uncapped = tuple(dataclasses.replace(ds, max_per_class=None) for ds in data.datasets)
    corpus = load_records(dataclasses.replace(data, datasets=uncapped), base_dir)
    evaluated = [r for ds in data.exclude_overlap_with for r in read_every_image(ds, base_dir)]
    names = "+".join(ds.name for ds in data.datasets), "+".join(ds.name for ds in data.exclude_overlap_with)
    listing = listing or cache_dir / "dedup" / f"overlap_{names[0]}_vs_{names[1]}.csv"
    return cap_per_class(remove_overlap(corpus, evaluated, listing, cache_dir), data.datasets)


def prepare_external(data: DataConfig, target: PreparedData, base_dir: Path) -> list[ExternalSet]:
    """Each data.external set at the target's size and channels, less every image whose content is in the
    target pool (train, validation and test): duplicates leave the external set, with an OverlapWarning."""
    out = []
    names = "+".join(ds.name for ds in data.datasets)
    for ds in data.external:
        records = load_external_records(ds, tuple(data.classes), base_dir)
        listing = target.cache_dir / "dedup" / f"overlap_external_{ds.name}_vs_{names}.csv"
        records = remove_overlap(records, target.records, listing, target.cache_dir)
        if not records:
            raise ValueError(f"data.external {ds.name!r}: every image is also in the target pool ({names}); "
                             f"listed in {listing}. Drop it from data.external")
        images, kept = load_image_array(records, data.image_size, data.channels, target.cache_dir)
        records = [records[i] for i in kept]
        out.append(ExternalSet(ds.name, images, np.array([r.label for r in records], dtype=np.int64), records))
    return out


def split_and_external_problems(data: DataConfig, n_per_class: tuple, base_dir: Path) -> list[str]:
    """data.split.folds/repeats and data.external checked before any trial: field values, then (folds set) every
    fold of every repeat must have each class in its test, validation and training parts, and n per class."""
    split, problems = data.split, []
    for i, ds in enumerate(data.external):
        at = f"data.external[{i}]"
        if ds.layout not in DATASETS:
            problems.append(f"{at}.layout: unknown dataset layout {ds.layout!r}; known: {DATASETS.known()}")
        if not resolve_path(ds.root, base_dir).exists():
            problems.append(f"{at}.root: dataset folder not found: {resolve_path(ds.root, base_dir)}")
        if ds.label and ds.label_map.get(ds.label, ds.label) not in data.classes:
            problems.append(f"{at}.label: {ds.label!r} is not in data.classes {list(data.classes)} "
                            "(nor mapped to one by label_map)")
    if split.folds is None:
        return problems + (["data.split.repeats: needs data.split.folds"] if split.repeats else [])
    if split.folds < 2:
        problems.append(f"data.split.folds: {split.folds} — cross-validation needs at least 2 folds")
    if split.repeats is not None and split.repeats < 1:
        problems.append(f"data.split.repeats: {split.repeats} — give at least 1")
    if split.predefined_test:
        problems.append("data.split.predefined_test: a fixed test folder and folds exclude each other; drop one")
    if problems:
        return problems
    records = load_records(data, base_dir)
    sizes = [n for n in n_per_class if n != "all"]
    for repeat in range(split.fold_repeats):
        try:
            folds = fold_splits(records, split, repeat)
        except FoldError as e:
            return problems + [f"{e} (class indices into data.classes {list(data.classes)})"]
        for k, fold in enumerate(folds):
            counts = np.bincount([records[i].label for i in fold.train], minlength=len(data.classes))
            if sizes and max(sizes) > counts.min():
                return problems + [f"trials.n_per_class: {max(sizes)} is more than fold {k} (repeat {repeat}) "
                                   f"trains on for class {data.classes[int(counts.argmin())]!r} ({counts.min()} "
                                   "images); use a smaller n, 'all', or fewer folds"]
    return problems
