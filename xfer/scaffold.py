"""`xfer init DIR`: a study YAML for a user's own images: class folders (found up to two levels down) or a metadata
CSV; the user's test folder kept as the test set, a positive class, and classes that look drawn from different
sources split into datasets the shortcut probe can tell apart."""
from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from xfer.data.read_image import IMAGE_SUFFIXES
from xfer.study_yaml import study_yaml

SPLIT_FOLDERS = ("train", "training", "val", "valid", "validation", "test", "testing")
TEST_FOLDERS = ("test", "testing")
PATIENT_HINT = re.compile(r"patient|subject|person", re.I)
LABEL_HINT = re.compile(r"label|finding|class|diagnos|target", re.I)
# a class named like a finding is the positive class; "abnormal" is a finding, "normal" / "no finding" are not
DISEASE_HINT = re.compile(r"covid|sars|pneumon|tubercul|^tb$|cancer|malig|nodul|effusion|opacit|lesion|tumou?r|"
                          r"cardiomeg|abnormal|disease|positive|infect|fractur|edema|atelect|consolid|bacteri|viral|"
                          r"virus|sick", re.I)
MAX_CLASSES = 20
LOOK_SAMPLE = 24  # images per class whose header (size, format, mode) is read
FIXED_SIZE_SHARE = 0.8  # a class whose images share one size this often has that size; else "varied"
README_DATA_SECTION = "Data (`data:`)"


def safe_study_name(folder_name: str) -> str:
    """A folder name as a study name (letters, digits, _ . -): accents dropped, other characters as '_'."""
    ascii_name = unicodedata.normalize("NFKD", folder_name).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", ascii_name).strip("_.-")
    name = re.sub(r"\.\.+", ".", name)[:90]
    return name or "study"


def image_files(folder: Path) -> list[Path]:
    """Image files anywhere under `folder` (a metadata CSV may name files in sub-folders)."""
    return [p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES]


def direct_images(folder: Path) -> list[Path]:
    """Image files directly in `folder`, as the class_folders reader reads them."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


@dataclass(frozen=True)
class ClassFolders:
    """root/[SPLIT/]CLASS/*.png: the class folders, per split folder ('' without split folders)."""

    root: Path
    files: dict[str, dict[str, list[Path]]]  # split folder → class → image files

    @property
    def splits(self) -> list[str]:
        return [s for s in self.files if s]

    @property
    def classes(self) -> list[str]:
        return sorted({c for by_class in self.files.values() for c in by_class})

    @property
    def test_folder(self) -> Optional[str]:
        return next((s for s in self.splits if s.lower() in TEST_FOLDERS), None)

    def images_of(self, name: str, outside: Optional[str] = None) -> list[Path]:
        """Every image of class `name` (outside the split folder `outside`, if given)."""
        return [f for split, by_class in self.files.items() if split != outside for f in by_class.get(name, [])]


def class_folders_at(root: Path) -> Optional[ClassFolders]:
    """root/CLASS/*.png or root/SPLIT/CLASS/*.png, or None when `root` is not laid out so."""
    subdirs = visible_dirs(root)
    splits = [d for d in subdirs if d.name.lower() in SPLIT_FOLDERS]
    files = {}
    for base in splits or [root]:
        by_class = {d.name: images for d in visible_dirs(base) if (images := direct_images(d))}
        if by_class:
            files[base.name if splits else ""] = by_class
    found = ClassFolders(root, files)
    return found if len(found.classes) >= 2 else None


def find_class_folders(root: Path) -> Optional[ClassFolders]:
    """Class folders at `root`, or one or two levels down (Kaggle downloads unpack to `Data/` or `chest_xray/`):
    the candidate holding the most images."""
    candidates = [root] + visible_dirs(root) + [d for sub in visible_dirs(root) for d in visible_dirs(sub)]
    found = [f for c in candidates if (f := class_folders_at(c)) is not None]
    return max(found, key=lambda f: sum(len(v) for by in f.files.values() for v in by.values()), default=None)


@dataclass(frozen=True)
class ClassLook:
    """How a class's images look on disk: a fixed size (or 'varied'), the file format and the colour mode."""

    size: str
    format: str
    mode: str

    def __str__(self) -> str:
        return f"{self.size} {self.format} {self.mode}"


def class_look(files: list[Path]) -> ClassLook:
    """The look of up to LOOK_SAMPLE images spread over `files` (headers only; unreadable ones skipped)."""
    from PIL import Image

    step = max(1, len(files) // LOOK_SAMPLE)
    sizes, formats, modes = Counter(), Counter(), Counter()
    for f in files[::step][:LOOK_SAMPLE]:
        try:
            with Image.open(f) as image:
                sizes["x".join(map(str, image.size))] += 1
                formats[image.format or f.suffix.lower()] += 1
                modes[image.mode] += 1
        except Exception:  # noqa: BLE001 - DICOM or a broken file: the reader reports those; the look skips them
            continue
    if not sizes:
        return ClassLook("unknown", "unknown", "unknown")
    size, count = sizes.most_common(1)[0]
    return ClassLook(size if count >= FIXED_SIZE_SHARE * sum(sizes.values()) else "varied",
                     formats.most_common(1)[0][0], modes.most_common(1)[0][0])


def source_groups(looks: dict[str, ClassLook]) -> list[list[str]]:
    """Classes grouped by identical look; more than one group: the classes were likely gathered from different
    sources, and a model can tell them apart by how the files look rather than by the finding."""
    groups: dict[ClassLook, list[str]] = {}
    for name, look in looks.items():
        groups.setdefault(look, []).append(name)
    return list(groups.values())


def positive_class(classes: list[str], asked: Optional[str]) -> tuple[Optional[str], list[str]]:
    """The asked class, else the first class named like a finding; and the other finding-like classes."""
    if asked is not None:
        if asked not in classes:
            raise ValueError(f"--positive-class {asked!r} is not one of the classes found: {classes}")
        return asked, []
    diseases = [c for c in classes if DISEASE_HINT.search(c)]
    return (diseases[0] if diseases else None), diseases[1:]


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


@dataclass(frozen=True)
class Scaffold:
    """A detected study and what a researcher should read about it (printed by `xfer init`, written as comments)."""

    study: dict
    notes: tuple[str, ...]
    warnings: tuple[str, ...]


def sizes_for(smallest_class: float) -> list:
    """`n_per_class` sizes the smallest class's training images can fill, and 'all'."""
    return [n for n in (10, 50, 200, 1000) if n <= smallest_class / 2] + ["all"]


def class_folder_study(folder: Path, found: ClassFolders, name: str, asked_positive: Optional[str]) -> Scaffold:
    """The study for class folders: the user's test folder kept, one dataset per look when classes differ."""
    classes = found.classes
    notes, warns = [], []
    test = found.test_folder
    base = {"layout": "class_folders", "root": str(found.root)}
    if found.splits:
        base["folders"] = found.splits
    if test:
        split = {"predefined_test": test, "val_fraction": 0.2, "seed": 0}
        notes.append(f"test set: your {test!r} folder, as given; validation: 20% of the other images, by patient")
    else:
        split = {"val_fraction": 0.2, "test_fraction": 0.25, "seed": 0}
        notes.append("test set: 25% of the images, drawn by patient (no test folder found)")
    looks = {c: class_look(found.images_of(c)) for c in classes}
    groups = source_groups(looks)
    if len(groups) == 1:
        datasets = [{"name": name, **base}]
    else:
        datasets = [{"name": safe_study_name(f"{name}-{'-'.join(group)}"), **base,
                     "label_map": {c: None for c in classes if c not in group}} for group in groups]
        described = "; ".join(f"{', '.join(g)}: {looks[g[0]]}" for g in groups)
        warns.append(f"classes look drawn from different sources ({described}): a model may learn the source, not the "
                     f"finding. Each look is its own dataset and analysis.shortcut_probe is on; its verdict is in "
                     f"the report. Better: gather every class from the same source")
    trainable = min(len(found.images_of(c, outside=test)) for c in classes) * (0.8 if test else 0.55)
    positive, also = positive_class(classes, asked_positive)
    data = {"datasets": datasets, "classes": classes}
    if positive:
        data["positive_class"] = positive
        notes.append(f"positive class (sensitivity, specificity): {positive}"
                     + (f"; also named like a finding: {', '.join(also)} (use --positive-class to choose)"
                        if also else ""))
    else:
        notes.append(f"no class is named like a finding; sensitivity/specificity use the last class, {classes[-1]} "
                     f"(set data.positive_class, or --positive-class)")
    data |= {"image_size": 64, "split": split}
    study = base_study(name, folder, classes, data, sizes_for(trainable))
    if len(groups) > 1:
        study["analysis"] = {"shortcut_probe": True}
    return Scaffold(study, tuple(notes), tuple(warns))


def csv_study(folder: Path, entry: dict, name: str, asked_positive: Optional[str]) -> Scaffold:
    """The study for a metadata CSV: a patient-level split of every image."""
    counts = entry.pop("counts")
    classes = list(counts)
    dataset = {"name": name, "root": str(folder), **{k: v for k, v in entry.items() if v is not None}}
    notes = [f"label column {entry['label_column']!r}, file column {entry['filename_column']!r}"]
    if not entry.get("patient_column"):
        dataset["patient_column"] = None  # every image its own patient: say so in the file rather than guess
        notes.append("no patient column found: every image is its own patient; name one if patients have several")
    positive, also = positive_class(classes, asked_positive)
    data = {"datasets": [dataset], "classes": classes}
    if positive:
        data["positive_class"] = positive
    data |= {"image_size": 64, "split": {"val_fraction": 0.2, "test_fraction": 0.25, "seed": 0}}
    return Scaffold(base_study(name, folder, classes, data, sizes_for(min(counts.values()) * 0.55)),
                    tuple(notes), ())


def base_study(name: str, folder: Path, classes: list[str], data: dict, sizes: list) -> dict:
    """Random vs ImageNet-style init on CBR-Small over the given data and training-set sizes."""
    return {"name": name,
            "description": f"pretraining vs random init on {folder.name} ({', '.join(classes)})",
            "data": data,
            "trials": {"init": [{"strategy": "random"}, {"strategy": "imagenet", "source": "stage:natural"}],
                       "models": ["cbr_small"], "n_per_class": sizes, "seeds": [0, 1, 2]},
            "train": {"epochs": 20, "batch_size": 32, "lr": 0.001}}


def study_for(folder: Path, name: str, positive: Optional[str] = None) -> Scaffold:
    """The study for `folder`: detected layout, classes, test set, positive class and sources."""
    folder = folder.resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder; pass a folder of class folders or one with a metadata CSV")
    found = find_class_folders(folder)
    if found is not None:
        return class_folder_study(folder, found, name, positive)
    entry = metadata_csv(folder)
    if entry is None or len(entry["counts"]) < 2:
        raise FileNotFoundError(f"{folder}: found neither class folders (CLASS/*.png or train|val|test/CLASS/*.png, "
                                f"here or up to two levels down) nor a CSV with an image-file column and a label "
                                f"column of 2–{MAX_CLASSES} values; arrange the images so, or write the study by "
                                f"hand (see README: {README_DATA_SECTION})")
    return csv_study(folder, entry, name, positive)


def write_study(folder: Path, out: Optional[Path] = None, name: Optional[str] = None,
                positive: Optional[str] = None, overwrite: bool = False) -> tuple[Path, Scaffold]:
    """Write the detected study to `out` (default ./<name>_study.yaml), never over an existing file unless
    `overwrite`; a header says what was detected and what to check."""
    name = name or safe_study_name(folder.resolve().name)
    out = out or Path(f"{name}_study.yaml")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; choose another --out, or pass --force to replace it")
    scaffold = study_for(folder, name, positive)
    header = [f"# written by `xfer init {folder}`"] + [f"# {n}" for n in scaffold.notes] + \
             [f"# WARNING: {w}" for w in scaffold.warnings] + \
             ["# check the detected classes, test set and options, then: xfer check THIS_FILE && xfer run THIS_FILE"]
    out.write_text("\n".join(header) + "\n" + study_yaml(scaffold.study))
    return out, scaffold
