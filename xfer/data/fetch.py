"""Fetch a catalogued dataset into the data root, prepare it as the studies expect, and verify the copy."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Optional

from xfer.data.catalog import DatasetSource
from xfer.data.download import Progress, fetch_source, file_sha256
from xfer.paths import inside
from xfer.registry import Registry

MANIFEST = ".xfer-manifest.json"  # in the dataset folder: what fetch wrote, file by file
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TEMPORARY_PREFIX = ".xfer-part-"  # a file being prepared, renamed to its name when complete
SAVE_EVERY = 200  # files prepared between manifest saves, so an interrupted fetch resumes near where it stopped

Preparation = Callable[[Path, Path], Path]  # (source file, target path) -> the path written
PREPARATIONS: Registry[Preparation] = Registry("preparation")


@PREPARATIONS.register("copy")
def copy_file(source: Path, target: Path) -> Path:
    """The file as it is."""
    shutil.copyfile(source, target)
    return target


@PREPARATIONS.register("shrink_512")
def shrink_512(source: Path, target: Path) -> Path:
    """Images whose longer side passes 512 px shrunk to 512 (name, format and mode kept); other files copied."""
    from PIL import Image

    if source.suffix.lower() not in IMAGE_SUFFIXES:
        return copy_file(source, target)
    with Image.open(source) as image:
        if max(image.size) <= 512:
            return copy_file(source, target)
        image_format = image.format
        image.thumbnail((512, 512), Image.LANCZOS)
        image.save(target, format=image_format)
    return target


@PREPARATIONS.register("gray_jpeg_112")
def gray_jpeg_112(source: Path, target: Path) -> Path:
    """8-bit grayscale 112x112 JPEG (quality 80), named NAME.jpg."""
    return _square_jpeg(source, target.with_suffix(".jpg"), 112, "L")


@PREPARATIONS.register("jpeg_128")
def jpeg_128(source: Path, target: Path) -> Path:
    """RGB 128x128 JPEG (quality 80), name kept."""
    return _square_jpeg(source, target, 128, "RGB")


def _square_jpeg(source: Path, target: Path, size: int, mode: str) -> Path:
    from PIL import Image

    with Image.open(source) as image:
        image.convert(mode).resize((size, size), Image.LANCZOS).save(target, format="JPEG", quality=80)
    return target


# ---------------------------------------------------------------- verification


@dataclass(frozen=True)
class DatasetState:
    """How a dataset folder compares with its catalogue entry (and its fetch manifest, when fetch wrote it)."""

    name: str
    folder: Path
    state: Literal["present", "missing", "incomplete"]
    files: int
    expected_files: int
    metadata_ok: bool
    problems: tuple[str, ...] = ()

    def line(self) -> str:
        metadata = "metadata ok" if self.metadata_ok else "metadata differs" if self.files else ""
        detail = f"  ({'; '.join(self.problems[:3])}{' ...' if len(self.problems) > 3 else ''})" if self.problems else ""
        return (f"{self.state:<10}  {self.name:<25} {self.files:>6}/{self.expected_files:<6} files  "
                f"{metadata:<16}  {self.folder}{detail}")


def dataset_files(folder: Path) -> list[str]:
    """The dataset's files as sorted relative POSIX paths, fetch's manifest and half-prepared files left out."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.name != MANIFEST and not p.name.startswith((TEMPORARY_PREFIX, f".{MANIFEST}")))


def metadata_sha256(entry: DatasetSource, folder: Path, files: list[str]) -> Optional[str]:
    """The sha256 the catalogue pins: of the metadata file, or of the file list when the set has none."""
    if entry.metadata is None:
        return hashlib.sha256(("\n".join(files) + "\n").encode()).hexdigest()
    path = folder / entry.metadata
    return file_sha256(path) if path.is_file() else None


def check_dataset(entry: DatasetSource, root: Path, deep: bool = False) -> DatasetState:
    """Count, metadata checksum and, for a fetched copy, every file's size (and sha256 when `deep`)."""
    folder = root / entry.name
    if not folder.is_dir():
        return DatasetState(entry.name, folder, "missing", 0, entry.files, False)
    files = dataset_files(folder)
    problems = [f"{len(files)} files, expected {entry.files}"] if len(files) != entry.files else []
    metadata_ok = metadata_sha256(entry, folder, files) == entry.metadata_sha256
    if not metadata_ok:
        problems.append(f"{entry.metadata or 'file list'} sha256 differs from the catalogue's")
    for written in read_manifest(folder).values():
        problems += _file_problems(folder / written["path"], written, deep)
    state = "incomplete" if problems else "present"
    return DatasetState(entry.name, folder, state, len(files), entry.files, metadata_ok, tuple(problems))


def _file_problems(path: Path, written: dict, deep: bool) -> list[str]:
    if path.is_symlink():
        return [f"{written['path']}: a link to {path.resolve()}, not the file fetch wrote"]
    if not path.is_file():
        return [f"{written['path']}: missing"]
    size = path.stat().st_size
    if size != written["size"]:
        return [f"{written['path']}: {size} bytes, fetched {written['size']} (truncated or changed)"]
    if deep and file_sha256(path) != written["sha256"]:
        return [f"{written['path']}: sha256 differs from the fetched file's (corrupted)"]
    return []


def read_manifest(folder: Path) -> dict[str, dict]:
    path = folder / MANIFEST
    return json.loads(path.read_text())["files"] if path.is_file() else {}


def _write_manifest(folder: Path, entry: DatasetSource, files: dict[str, dict]) -> None:
    record = {"origin": entry.origin, "commit": entry.commit, "prepare": entry.prepare, "files": files}
    temporary = folder / f".{MANIFEST}.tmp"
    temporary.unlink(missing_ok=True)
    temporary.write_text(json.dumps(record, indent=1, sort_keys=True))
    os.replace(temporary, folder / MANIFEST)


LINKED_OUT = "move the link (or the data root) away: fetch writes only inside the data root, never through a link"


def in_data_root(root: Path, *parts: str) -> Path:
    """`root/parts...` resolved, refused (UnsafePathError) when a link or '..' takes it out of the data root."""
    return inside(root, *parts, fix=LINKED_OUT)


# ---------------------------------------------------------------- selection and fetch


def planned_files(entry: DatasetSource, source: Path) -> tuple[list[tuple[Path, str]], set[str]]:
    """(source file, path in the dataset folder) for every file the entry keeps, and the names it leaves out."""
    planned = []
    for source_path, target_path in entry.paths:
        base = source / source_path if source_path else source
        if base.is_file():
            planned.append((base, target_path or base.name))
            continue
        for f in sorted(p for p in base.rglob("*") if p.is_file() and ".git" not in p.relative_to(base).parts):
            planned.append((f, "/".join(part for part in (target_path, f.relative_to(base).as_posix()) if part)))
    limits = dict(entry.limit_per_folder)
    taken: dict[str, int] = {}
    kept, left_out = [], set()
    for f, target in planned:
        folder = target.rpartition("/")[0]
        limit = limits.get(target.partition("/")[0])
        too_big = entry.max_file_bytes is not None and f.stat().st_size > entry.max_file_bytes
        if too_big or (limit is not None and taken.get(folder, 0) >= limit):
            left_out.add(Path(target).name)
            continue
        taken[folder] = taken.get(folder, 0) + 1
        kept.append((f, target))
    return kept, left_out


def without_rows_of(csv_path: Path, column: str, names: set[str]) -> str:
    """The CSV's text minus the records whose `column` names a left-out file; kept records are byte-identical."""
    with open(csv_path, newline="") as f:
        text = f.read()
    lines = text.splitlines(keepends=True)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    index = [h.strip() for h in header].index(column)
    kept, start = lines[:reader.line_num], reader.line_num
    for record in reader:
        if not (len(record) > index and record[index].strip() in names):
            kept += lines[start:reader.line_num]
        start = reader.line_num
    return "".join(kept)


def fetch_dataset(entry: DatasetSource, root: Path) -> DatasetState:
    """Download, prepare and verify one dataset into `root/NAME`; files already verified are not redone."""
    state = check_dataset(entry, root, deep=True)
    if state.state == "present":
        return state
    folder, staging = in_data_root(root, entry.name), in_data_root(root, ".xfer-fetch", entry.name)
    subpaths = [p for p, _ in entry.paths]
    source = fetch_source(entry.origin, entry.commit, subpaths, staging, entry.name, entry.source_sha256)
    kept, left_out = planned_files(entry, source)
    folder = in_data_root(root, entry.name)  # again: the download may take long, the check must hold as we write
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    prepare = PREPARATIONS.get_or_raise(entry.prepare)
    bar = Progress(f"{entry.name}: prepare", len(kept))
    for n, (source_file, target) in enumerate(kept, 1):
        source_sha256 = file_sha256(source_file)
        done = manifest.get(target)
        if not (done and done["source_sha256"] == source_sha256 and not _file_problems(folder / done["path"], done, True)):
            manifest[target] = _prepare_one(entry, prepare, source_file, folder, target, left_out) | {
                "source_sha256": source_sha256}
        bar.update()
        if n % SAVE_EVERY == 0:
            _write_manifest(folder, entry, manifest)
    bar.close()
    _write_manifest(folder, entry, manifest)
    state = check_dataset(entry, root, deep=True)
    if state.state == "present":
        shutil.rmtree(staging, ignore_errors=True)
    return state


def _prepare_one(entry: DatasetSource, prepare: Preparation, source_file: Path, folder: Path, target: str,
                 left_out: set[str]) -> dict:
    parent = in_data_root(folder, *Path(target).parent.parts)
    parent.mkdir(parents=True, exist_ok=True)
    in_data_root(folder, *Path(target).parent.parts)  # mkdir made no link, but a folder could have been swapped
    # prepared under a temporary name, then renamed over the target: a link there is replaced, never written through
    temporary = parent / f"{TEMPORARY_PREFIX}{Path(target).name}"
    if target == entry.metadata and entry.file_column and left_out:
        temporary.write_text(without_rows_of(source_file, entry.file_column, left_out), newline="")
        written = temporary
    else:
        written = prepare(source_file, temporary)
    path = parent / written.name[len(TEMPORARY_PREFIX):]
    os.replace(written, path)
    return {"path": path.relative_to(folder).as_posix(), "size": path.stat().st_size, "sha256": file_sha256(path)}
