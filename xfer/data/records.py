"""Dataset readers: each on-disk layout → the same list of `Record`s (one per image)."""
from __future__ import annotations

import dataclasses
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xfer.config import DataConfig, DatasetConfig
from xfer.data.root import resolve_path
from xfer.data.read_image import IMAGE_SUFFIXES, NPZ_SEPARATOR
from xfer.registry import Registry

DATASETS = Registry("dataset layout")


@dataclass(frozen=True)
class Record:
    """One image: where it is, its class index (into DataConfig.classes), whose it is, from where."""

    path: str  # file path, or "/abs/file.npz::train/12" for an npz entry
    label: int  # -1: no single class (torchxrayvision rows with no or several mapped findings; multi-label only)
    patient_id: str
    source: str  # DatasetConfig.name
    folder: str = ""  # class_folders sub-folder or npz split (train/test/...), for predefined_test
    targets: tuple[float, ...] = ()  # multi-label layouts: per class 1 / 0 / NaN (unknown)


LISTINGS_ENV = "XFER_LISTINGS"  # folder for the listings of skipped files (the study's output folder)


class SkippedImagesWarning(UserWarning):
    """Images named by the metadata or listed for caching that could not be used."""


def warn_skipped(what: str, paths: list[str], where: str) -> None:
    """ONE warning with the count of skipped files and the listing file that names them (one path a line)."""
    if paths:
        listing = skipped_listing(what, where)
        listing.parent.mkdir(parents=True, exist_ok=True)
        listing.write_text(f"# {where}: skipped {len(paths)} {what}\n" + "\n".join(paths) + "\n")
        warnings.warn(f"{where}: skipped {len(paths)} {what}; listed in {listing}", SkippedImagesWarning,
                      stacklevel=3)


def skipped_listing(what: str, where: str) -> Path:
    """`<study output>/skipped/<where>-<what>.txt` (the output folder from XFER_LISTINGS, set by xfer run;
    else ./outputs), so every process of a run writes the same file for the same skip."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{where}-{what}").strip("-")[:120]
    return Path(os.environ.get(LISTINGS_ENV) or Path.cwd() / "outputs") / "skipped" / f"{slug}.txt"


def load_records(data: DataConfig, base_dir: Path) -> list[Record]:
    """Records of every dataset in `data`; raises ValueError if a class has no images (no positives if
    multi-label). Single-label data drops images without a single class."""
    records: list[Record] = []
    for ds in data.datasets:
        reader = DATASETS.get_or_raise(ds.layout)
        records.extend(reader(ds, data.classes, base_dir))
    if data.multi_label:
        counts = np.sum([np.equal(r.targets, 1) for r in records], axis=0) if records else np.zeros(len(data.classes))
    else:
        records = [r for r in records if r.label >= 0]
        counts = np.bincount([r.label for r in records], minlength=len(data.classes))
    empty = [c for c, n in zip(data.classes, counts) if n == 0]
    if empty:
        names = ", ".join(f"{ds.name} ({ds.layout}, {ds.root})" for ds in data.datasets)
        raise ValueError(f"class(es) {empty} have no images in datasets {names}; check data.classes, "
                         "label_map, folders and the view/modality filters")
    return records


def load_external_records(ds: DatasetConfig, classes: tuple[str, ...], base_dir: Path) -> list[Record]:
    """An external validation set's images of `classes`; unlike load_records it may hold only some classes
    (a COVID-only set), but not none."""
    records = [r for r in DATASETS.get_or_raise(ds.layout)(ds, classes, base_dir) if r.label >= 0]
    if not records:
        raise ValueError(f"data.external {ds.name!r} ({ds.layout}, {ds.root}): no image of classes {list(classes)}; "
                         "check its label_map, or declare the one label of a set without a label column (label: ...)")
    return records


def read_every_image(ds: DatasetConfig, base_dir: Path) -> list[Record]:
    """Every labelled image of a dataset whatever its class (overlap checks), all as class 0."""
    anything = dataclasses.replace(ds, label_map={ANY_OTHER_LABEL: "any"}, max_per_class=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)  # a row without a file has no content to compare
        return DATASETS.get_or_raise(ds.layout)(anything, ("any",), base_dir)


def cap_per_class(records: list[Record], datasets: tuple[DatasetConfig, ...]) -> list[Record]:
    """Each dataset's max_per_class applied to its records (after they were read uncapped)."""
    caps = {ds.name: ds.max_per_class for ds in datasets}
    by_source: dict[str, list[Record]] = {}
    for r in records:
        by_source.setdefault(r.source, []).append(r)
    return [r for source, group in by_source.items() for r in first_per_class(group, caps.get(source))]


def kermany_patient_id(stem: str) -> str | None:
    """Patient id in a Kermany-style file name: personN_…, NORMAL2-IM-XXXX-…, IM-XXXX-…; else None."""
    match = re.match(r"(person\d+)_|(NORMAL2-IM-\d+)|(IM-\d+)", stem)
    return next(g for g in match.groups() if g) if match else None


# ---------------------------------------------------------------- helpers


def dataset_root(ds: DatasetConfig, base_dir: Path) -> Path:
    root = resolve_path(ds.root, base_dir)
    if not root.exists():
        raise FileNotFoundError(f"dataset {ds.name!r}: root {ds.root!r} not found (looked at {root.absolute()} "
                                f"and {(base_dir / ds.root).absolute()}); fix data.datasets[].root")
    return Path(os.path.abspath(root))


def _with_layout_defaults(ds: DatasetConfig, **defaults) -> DatasetConfig:
    """Fields left at DatasetConfig's default take this layout's default instead."""
    fields = {f.name: f.default for f in dataclasses.fields(DatasetConfig)}
    changes = {k: v for k, v in defaults.items() if getattr(ds, k) == fields[k]}
    return dataclasses.replace(ds, **changes)


ANY_OTHER_LABEL = "*"  # label_map key: the class of every non-empty raw label the map does not name


def _class_index(raw: str, ds: DatasetConfig, classes: tuple[str, ...]) -> int | None:
    """Raw label → class index via label_map (identity for names already a class, "*" for any other
    non-empty label); None: drop."""
    name = ds.label_map.get(raw, raw if raw in classes else ds.label_map.get(ANY_OTHER_LABEL, raw))
    return classes.index(name) if raw and name in classes else None


def _image_file(folder: Path, filename: str) -> Path | None:
    """folder/filename if it is a file; a name without a suffix (Hannover's image_id) may name NAME.png etc."""
    if not filename:
        return None
    names = [filename] + ([filename + s for s in IMAGE_SUFFIXES] if not Path(filename).suffix else [])
    return next((folder / n for n in names if (folder / n).is_file()), None)


def first_per_class(records: list[Record], max_per_class: int | None) -> list[Record]:
    """Keep the first `max_per_class` records of each (folder, class), in order."""
    if max_per_class is None:
        return records
    seen: dict[tuple[str, int], int] = {}
    kept = []
    for r in records:
        key = (r.folder, r.label)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= max_per_class:
            kept.append(r)
    return kept


# ---------------------------------------------------------------- layouts


@DATASETS.register("metadata_csv")
def read_metadata_csv(ds: DatasetConfig, classes: tuple[str, ...], base_dir: Path) -> list[Record]:
    """A CSV row per image (covid-chestxray style) with label, patient, view and modality columns."""
    root = dataset_root(ds, base_dir)
    csv = root / ds.metadata
    if not csv.exists():
        raise FileNotFoundError(f"dataset {ds.name!r}: metadata file {csv} not found; fix data.datasets[].metadata")
    table = pd.read_csv(csv, dtype=str, keep_default_na=False).rename(columns=str.strip)
    table = table.apply(lambda column: column.str.strip())
    wanted = {"filename_column": ds.filename_column, "label_column": None if ds.label else ds.label_column,
              "patient_column": ds.patient_column, "view_column": ds.view_column,
              "modality_column": ds.modality_column}
    missing = [f"{field}={name!r}" for field, name in wanted.items() if name and name.strip() not in table]
    if missing:
        raise ValueError(f"dataset {ds.name!r}: {csv} has no column(s) {', '.join(missing)}; "
                         f"its columns: {', '.join(table.columns)}")
    if ds.view_column and ds.views:
        table = table[table[ds.view_column.strip()].isin(ds.views)]
    if ds.modality_column and ds.modalities:
        table = table[table[ds.modality_column.strip()].isin(ds.modalities)]
    records, absent = [], []
    for row in table.to_dict("records"):
        label = _class_index(ds.label or row[ds.label_column.strip()], ds, classes)
        if label is None:
            continue
        filename = row[ds.filename_column.strip()]
        path = _image_file(root / ds.images_dir, filename)
        if path is None:
            absent.append(str(root / ds.images_dir / filename))
            continue
        patient = row[ds.patient_column.strip()] if ds.patient_column else ""
        records.append(Record(str(path), label, patient or filename, ds.name))
    warn_skipped("rows whose image file is absent", absent, f"dataset {ds.name!r} ({csv})")
    return first_per_class(records, ds.max_per_class)


@DATASETS.register("label_csv")
def read_label_csv(ds: DatasetConfig, classes: tuple[str, ...], base_dir: Path) -> list[Record]:
    """labels.csv with filename,label,patient_id columns; images in images_dir."""
    ds = _with_layout_defaults(ds, metadata="labels.csv", label_column="label", patient_column="patient_id")
    return read_metadata_csv(ds, classes, base_dir)


@DATASETS.register("class_folders")
def read_class_folders(ds: DatasetConfig, classes: tuple[str, ...], base_dir: Path) -> list[Record]:
    """root/[folder]/CLASS/*.{png,jpg,jpeg,dcm}; patient id from Kermany-style names."""
    root = dataset_root(ds, base_dir)
    records = []
    for folder in ds.folders or ("",):
        base = root / folder
        if not base.is_dir():
            raise FileNotFoundError(f"dataset {ds.name!r}: folder {base} not found; fix data.datasets[].folders")
        for class_dir in sorted(p for p in base.iterdir() if p.is_dir()):
            label = _class_index(class_dir.name, ds, classes)
            if label is None:
                continue
            names = sorted(n for n in os.listdir(class_dir) if n.lower().endswith(IMAGE_SUFFIXES))
            for name in names[: ds.max_per_class]:
                stem = name.rsplit(".", 1)[0]
                # a name without a patient in it is its own patient (CIFAR's 0000.jpg is in every folder)
                patient = kermany_patient_id(stem) or str(Path(folder, class_dir.name, stem))
                records.append(Record(str(class_dir / name), label, patient, ds.name, folder))
    return records


@DATASETS.register("npz")
def read_npz(ds: DatasetConfig, classes: tuple[str, ...], base_dir: Path) -> list[Record]:
    """MedMNIST .npz: `{split}_images` / `{split}_labels`; each image is its own patient."""
    file = _npz_file(ds, base_dir)
    with np.load(file) as z:
        splits = ds.folders or tuple(k[: -len("_images")] for k in z.files if k.endswith("_images"))
        labels = {}
        for split in splits:
            if f"{split}_labels" not in z.files:
                raise ValueError(f"dataset {ds.name!r}: {file} has no array {split}_labels; arrays: {', '.join(z.files)}")
            labels[split] = z[f"{split}_labels"]
    records = []
    for split, values in labels.items():
        if values.ndim == 2 and values.shape[1] != 1:
            raise ValueError(f"dataset {ds.name!r}: {split}_labels has shape {values.shape}; "
                             "only single-label npz files are supported")
        for i, value in enumerate(values.reshape(-1)):
            label = _class_index(str(int(value)), ds, classes)
            if label is not None:
                records.append(Record(f"{file}{NPZ_SEPARATOR}{split}/{i}", label, f"{split}/{i}", ds.name, split))
    return first_per_class(records, ds.max_per_class)


def _npz_file(ds: DatasetConfig, base_dir: Path) -> Path:
    """The .npz: root itself, root/metadata, or the only .npz in root."""
    root = dataset_root(ds, base_dir)
    if root.is_file():
        return root
    if ds.metadata != "metadata.csv":
        return root / ds.metadata
    found = sorted(root.glob("*.npz"))
    if len(found) != 1:
        raise ValueError(f"dataset {ds.name!r}: expected one .npz file in {root}, found {len(found)}; "
                         "name it in data.datasets[].metadata")
    return found[0]
