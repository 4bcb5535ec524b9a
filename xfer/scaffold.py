"""`xfer init DIR`: a study YAML for a user's own images: class folders or a metadata CSV, classes and patient column found."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

import pandas as pd
import yaml

from xfer.data.images import IMAGE_SUFFIXES

SPLIT_FOLDERS = ("train", "val", "valid", "validation", "test")
PATIENT_HINT = re.compile(r"patient|subject|person", re.I)
LABEL_HINT = re.compile(r"label|finding|class|diagnos|target", re.I)
MAX_CLASSES = 20


def image_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]


def class_folders(root: Path) -> Optional[dict]:
    """root/CLASS/*.png or root/SPLIT/CLASS/*.png → the dataset entry, or None when the folder is not laid out so."""
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    splits = [d for d in subdirs if d.name.lower() in SPLIT_FOLDERS]
    bases = splits or [root]
    counts: dict[str, int] = {}
    for b in bases:
        for d in b.iterdir():
            if d.is_dir() and (files := image_files(d)):
                counts[d.name] = counts.get(d.name, 0) + len(files)
    if len(counts) < 2:
        return None
    entry = {"layout": "class_folders", "counts": dict(sorted(counts.items()))}
    if splits:
        entry["folders"] = [d.name for d in splits]
    return entry


def metadata_csv(root: Path) -> Optional[dict]:
    """The CSV under root whose column names the most image files → the dataset entry (file, label, patient columns)."""
    images = image_files(root)
    by_name = {p.name: p for p in images} | {p.stem: p for p in images}
    best = None
    for csv in sorted(root.glob("*.csv")):
        frame = pd.read_csv(csv, dtype=str, nrows=100_000)
        for column in frame.columns:
            hits = frame[column].dropna().map(lambda v: Path(v).name in by_name).sum()
            if hits and (best is None or hits > best[2]):
                best = (csv, column, hits, frame)
    if best is None:
        return None
    csv, filename_column, _, frame = best
    rest = [c for c in frame.columns if c != filename_column]
    labels = [c for c in rest if 2 <= frame[c].nunique() <= MAX_CLASSES]
    label_column = next((c for c in labels if LABEL_HINT.search(c)), labels[0] if labels else None)
    patients = [c for c in rest if PATIENT_HINT.search(c) and frame[c].nunique() < len(frame) * 1.0 + 1]
    first_image = by_name[Path(frame[filename_column].dropna().iloc[0]).name]
    entry = {"layout": "metadata_csv", "metadata": csv.name, "filename_column": filename_column,
             "images_dir": first_image.parent.relative_to(root).as_posix() or ".",
             "label_column": label_column, "patient_column": patients[0] if patients else None,
             "counts": frame[label_column].value_counts().sort_index().to_dict() if label_column else {}}
    return entry


def study_for(folder: Path, name: str) -> dict:
    """The study mapping for `folder`: detected layout and classes; random vs ImageNet-style init on CBR-Small."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder; pass a folder of class folders or one with a metadata CSV")
    entry = class_folders(folder) or metadata_csv(folder)
    if entry is None or len(entry["counts"]) < 2:
        raise FileNotFoundError(f"{folder}: found neither class folders (CLASS/*.png, or train|val|test/CLASS/*.png) "
                                f"nor a CSV with an image-file column and a label column of 2–{MAX_CLASSES} values; "
                                f"arrange the images so, or write the study by hand (see README: Data layouts)")
    counts = entry.pop("counts")
    classes = list(counts)
    trainable = min(counts.values()) * 0.55  # the training split's share, patients permitting
    sizes = [n for n in (10, 50, 200, 1000) if n <= trainable / 2] + ["all"]
    dataset = {"name": name, "root": str(folder), **{k: v for k, v in entry.items() if v is not None}}
    if entry.get("layout") == "metadata_csv" and not entry.get("patient_column"):
        dataset["patient_column"] = None  # every image its own patient: say so in the file rather than guess
    return {"name": name,
            "description": f"pretraining vs random init on {folder.name} ({', '.join(classes)})",
            "data": {"datasets": [dataset], "classes": classes, "image_size": 64,
                     "split": {"val_fraction": 0.2, "test_fraction": 0.25, "seed": 0}},
            "trials": {"init": [{"strategy": "random"}, {"strategy": "imagenet", "source": "stage:natural"}],
                       "models": ["cbr_small"], "n_per_class": sizes, "seeds": [0, 1, 2]},
            "train": {"epochs": 20, "batch_size": 32, "lr": 0.001}}


def write_study(folder: Path, out: Optional[Path] = None, name: Optional[str] = None) -> Path:
    """Write the detected study to `out` (default ./<folder>_study.yaml) with a header saying what was detected."""
    name = name or re.sub(r"[^A-Za-z0-9_.-]+", "_", folder.resolve().name)
    study = study_for(folder, name)
    out = out or Path(f"{name}_study.yaml")
    d = study["data"]["datasets"][0]
    header = (f"# written by `xfer init {folder}`: layout {d['layout']}, classes {study['data']['classes']}, "
              f"patient column {d.get('patient_column', 'from file names')}\n"
              "# check the detected columns and classes, then: xfer check THIS_FILE && xfer run THIS_FILE\n")
    out.write_text(header + yaml.safe_dump(study, sort_keys=False))
    return out
