"""DataConfig → records → patient-level split → cached image array, in one call."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from xfer.config import DataConfig, resolve_path
from xfer.data.cache import load_image_array
from xfer.data.dedup import remove_overlap
from xfer.data.records import Record, cap_per_class, load_records, read_every_image
from xfer.data.splits import Split, check_no_patient_in_two_splits, patient_level_split


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


def prepare_data(data: DataConfig, base_dir: Path, overlap_listing: Optional[Path] = None) -> PreparedData:
    """Read the records (less any image also in data.exclude_overlap_with), decode them at data.image_size
    (cached), split by patient and check it."""
    cache_dir = Path(os.path.abspath(resolve_path(data.cache_dir, base_dir)))
    records = load_records_without_overlap(data, base_dir, cache_dir, overlap_listing)
    images, kept = load_image_array(records, data.image_size, data.channels, cache_dir)
    records = [records[i] for i in kept]
    split = patient_level_split(records, data.split)
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
