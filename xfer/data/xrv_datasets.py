"""torchxrayvision's dataset classes (NIH, CheXpert, PadChest, …) as one layout: the library parses its
own CSVs, labels and patient ids; xfer keeps the image paths and turns the pathology labels into classes."""
from __future__ import annotations

import inspect
import os
from pathlib import Path

import numpy as np

from xfer.config import DatasetConfig
from xfer.data.root import resolve_path
from xfer.data.records import DATASETS, Record, dataset_root, first_per_class, warn_skipped
from xfer.xrv import import_xrv

NO_FINDING = "No Finding"  # label_map key for images positive for none of the dataset's pathologies

# how each class's own __getitem__ names an image: CSV column, prefixes it strips (relative to imgpath)
IMAGE_COLUMNS: dict[str, tuple[str, tuple[str, ...]]] = {
    "NIH_Dataset": ("Image Index", ()),
    "NIH_Google_Dataset": ("Image Index", ()),
    "PC_Dataset": ("ImageID", ()),
    "CheX_Dataset": ("Path", ("CheXpert-v1.0-small/", "CheXpert-v1.0/")),
    "BRAX_Dataset": ("PngPath", ("images/",)),
    "COVID19_Dataset": ("filename", ()),
}


def class_targets(labels: np.ndarray, pathologies: list[str], label_map: dict[str, str],
                  classes: tuple[str, ...]) -> np.ndarray:
    """Multi-label rows (1 / 0 / NaN) → per-class targets: 1 if any mapped pathology is positive, else 0 if
    one is known, else NaN; the class of label_map["No Finding"] is 1 exactly when no pathology is positive."""
    out = np.full((len(labels), len(classes)), np.nan, np.float32)
    for k, c in enumerate(classes):
        columns = [j for j, p in enumerate(pathologies) if label_map.get(p) == c]
        if columns:
            part = labels[:, columns]
            known = ~np.isnan(part).all(1)
            out[known, k] = (part[known] == 1).any(1)
        if label_map.get(NO_FINDING) == c and NO_FINDING not in pathologies:
            out[:, k] = ~(labels == 1).any(1)
    return out


def single_label(targets: np.ndarray) -> np.ndarray:
    """Per-class targets → the one class marked 1, or -1 when none or several are (such rows are dropped
    from single-label data)."""
    positive = targets == 1
    return np.where(positive.sum(1) == 1, positive.argmax(1), -1)


def _load(ds: DatasetConfig, root: Path, base_dir: Path):
    """Construct the torchxrayvision dataset; its constructor reseeds numpy globally, so put the state back."""
    xrv = import_xrv()
    cls = getattr(xrv.datasets, ds.xrv_class)
    accepted = inspect.signature(cls).parameters
    kwargs = {"imgpath": str(root)}
    if ds.metadata != "metadata.csv":  # the field's default: use the CSV shipped with torchxrayvision
        kwargs["csvpath"] = str(resolve_path(ds.metadata, base_dir))
        if not os.path.isfile(kwargs["csvpath"]):
            raise FileNotFoundError(f"dataset {ds.name!r}: metadata file {kwargs['csvpath']} not found; "
                                    "fix data.datasets[].metadata (or drop it to use torchxrayvision's own CSV)")
    if ds.views and "views" in accepted:
        kwargs["views"] = list(ds.views)
    if "unique_patients" in accepted:
        kwargs["unique_patients"] = False  # every image; the patient-level split keeps patients apart
    state = np.random.get_state()
    try:
        return cls(**kwargs)
    finally:
        np.random.set_state(state)


@DATASETS.register("torchxrayvision")
def read_xrv_dataset(ds: DatasetConfig, classes: tuple[str, ...], base_dir: Path) -> list[Record]:
    """A torchxrayvision dataset class (`xrv_class`) over images in `root`; pathologies → classes via label_map."""
    if ds.xrv_class not in IMAGE_COLUMNS:
        raise ValueError(f"dataset {ds.name!r}: xrv_class {ds.xrv_class!r} is not supported; "
                         f"supported: {', '.join(IMAGE_COLUMNS)}")
    root = dataset_root(ds, base_dir)
    dataset = _load(ds, root, base_dir)
    column, prefixes = IMAGE_COLUMNS[ds.xrv_class]
    targets = class_targets(np.asarray(dataset.labels, dtype=np.float32), list(dataset.pathologies),
                            ds.label_map, classes)
    labels = single_label(targets)
    patients = ds.patient_column or "patientid"  # torchxrayvision adds `patientid` to most of its CSVs
    if patients not in dataset.csv:
        raise ValueError(f"dataset {ds.name!r}: {ds.xrv_class} table has no column {patients!r} for "
                         f"data.datasets[].patient_column; its columns: {', '.join(map(str, dataset.csv.columns))}")
    records, absent = [], []
    for name, patient, label, target in zip(dataset.csv[column].astype(str), dataset.csv[patients].astype(str),
                                            labels, targets):
        if np.isnan(target).all():
            continue
        for prefix in prefixes:
            name = name.replace(prefix, "", 1) if name.startswith(prefix) else name
        path = str(root / name)
        if not os.path.isfile(path):
            absent.append(path)
            continue
        records.append(Record(path, int(label), patient, ds.name, targets=tuple(map(float, target))))
    warn_skipped("rows whose image file is absent", absent, f"dataset {ds.name!r} ({ds.xrv_class})")
    return first_per_class(records, ds.max_per_class)
