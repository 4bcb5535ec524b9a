"""Decode and resize a list of images once; later calls memory-map the saved array."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from xfer.data.images import UnreadableImageError, read_image_resized
from xfer.data.records import Record, warn_skipped
from xfer.paths import move_aside

CACHE_FORMAT = 2  # bump when decoding, resizing or the index changes, so old caches are not reused (2: sha256)
CHUNK = 1 << 24  # bytes hashed at a time


def load_image_array(records: Sequence[Record], size: int, channels: int,
                     cache_dir: str | Path) -> tuple[np.ndarray, list[int]]:
    """uint8 (N_kept, channels, size, size) for `records`, and the indices of the records kept.

    Built once per (file list, size, channels) into `cache_dir/<hash>.npy`; unreadable files are
    left out with one warning naming them all (repeated whenever the cache is used).
    """
    paths = [r.path for r in records]
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = cache_key(paths, size, channels)
    array_file, index_file = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    with exclusive(cache_dir / f"{key}.lock"):  # parallel trials wait for one builder
        loaded = _load_verified(array_file, index_file, (channels, size, size))
        if loaded is None:
            _build(paths, size, channels, array_file, index_file)
            loaded = _load_verified(array_file, index_file, (channels, size, size))
    array, index = loaded
    warn_skipped("unreadable images", index["skipped"], f"image cache {array_file}")
    return array, index["kept"]


def _load_verified(array_file: Path, index_file: Path, shape: tuple[int, int, int]) -> tuple[np.ndarray, dict] | None:
    """The cached array and its index if both are there and agree; a corrupt pair is moved aside (None: rebuild)."""
    if not (array_file.exists() and index_file.exists()):
        return None
    try:
        index = json.loads(index_file.read_text())
        array = np.load(array_file, mmap_mode="r")
        if array.shape != (len(index["kept"]), *shape) or array.dtype != np.uint8:
            raise ValueError(f"holds {array.dtype} {array.shape}, expected uint8 {(len(index['kept']), *shape)}")
        if array_sha256(array) != index["sha256"]:
            raise ValueError("its images' sha256 differs from the one recorded when it was written (changed in place)")
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        for f in (array_file, index_file):
            if f.exists():
                move_aside(f, f"{type(e).__name__}: {e}; the images are decoded again")
        return None
    return array, index


def array_sha256(array: np.ndarray) -> str:
    """sha256 of a C-contiguous array's bytes, read in place (a memory map is not copied)."""
    digest = hashlib.sha256()
    flat = np.ascontiguousarray(array).reshape(-1)
    for start in range(0, flat.size, CHUNK):
        digest.update(memoryview(flat[start:start + CHUNK]))
    return digest.hexdigest()


def cache_key(paths: Sequence[str], size: int, channels: int) -> str:
    """Hash naming the cache file of this file list at this size and channel count."""
    blob = json.dumps({"format": CACHE_FORMAT, "size": size, "channels": channels, "paths": list(paths)})
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _build(paths: list[str], size: int, channels: int, array_file: Path, index_file: Path) -> None:
    images = np.empty((len(paths), channels, size, size), dtype=np.uint8)
    kept: list[int] = []
    skipped: list[str] = []
    for i, path in enumerate(paths):
        try:
            images[len(kept)] = read_image_resized(path, size, channels)
            kept.append(i)
        except UnreadableImageError as e:
            skipped.append(f"{path} ({e.reason})")
    write_atomically(array_file, lambda f: np.save(f, images[: len(kept)]))
    sha256 = array_sha256(images[: len(kept)])
    write_atomically(index_file, lambda f: f.write(json.dumps({"kept": kept, "skipped": skipped,
                                                               "sha256": sha256}).encode()))


def write_atomically(target: Path, write) -> None:
    """Write to a temporary file beside `target`, then rename, so readers never see half a file."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, target)


@contextlib.contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    with open(lock_file, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
