"""No image in two places: find corpus images whose content is also in the evaluated sets, and drop them.

Re-uploads change names, formats, sizes and aspect (a wide image cropped square), so each image is
fingerprinted by 32×32 grayscale thumbnails of the whole image and of square crops along its long side;
a pair is a duplicate when a DCT perceptual hash of some thumbnail pair is close (the fast filter) and
those thumbnails, normalised to zero mean and unit variance, differ by little pixel by pixel (the check).
"""
from __future__ import annotations

import csv
import hashlib
import os
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from xfer.data.cache import exclusive, write_atomically
from xfer.data.read_image import DICOM_SUFFIXES, NPZ_SEPARATOR, read_image
from xfer.data.records import Record

THUMB_SIZE = 32
CROP_OFFSETS = (0.0, 0.5, 1.0)  # square crops at the start, middle and end of a non-square image's long side
MAX_HASH_DISTANCE = 12  # of 64 pHash bits: candidates for the pixel check
MAX_PIXEL_DISTANCE = 0.15  # mean |a - b| of z-scored thumbnails: true re-uploads ≤ 0.07, distinct X-rays ≥ 0.25
FINGERPRINT_FORMAT = 1  # bump when thumbnails change, so cached ones are not reused
BLOCK = 512  # query variants per hash-distance block (bounds memory at BLOCK × corpus variants)
_k = np.arange(THUMB_SIZE)
DCT = np.sqrt(2 / THUMB_SIZE) * np.cos(np.pi * (2 * _k[None, :] + 1) * _k[:, None] / (2 * THUMB_SIZE))
DCT[0] /= np.sqrt(2)  # orthonormal DCT-II matrix: coefficients = DCT @ image @ DCT.T
BYTE_BITS = np.array([bin(b).count("1") for b in range(256)], dtype=np.uint8)


class OverlapWarning(UserWarning):
    """Corpus images also found (by content) in the evaluated sets were removed."""


@dataclass(frozen=True)
class Duplicate:
    """A corpus image whose content is an evaluated image's."""

    kept: str  # the evaluated file
    duplicate: str  # the corpus file removed
    distance: float  # pixel distance of the closest thumbnail pair


def remove_overlap(corpus: Sequence[Record], evaluated: Sequence[Record], listing: str | Path,
                   cache_dir: str | Path) -> list[Record]:
    """The corpus records whose image is in no evaluated record; writes the listing and warns if any were removed."""
    duplicates = find_duplicates(evaluated, corpus, cache_dir)
    write_listing(duplicates, listing)
    removed = {d.duplicate for d in duplicates}
    if removed:
        warnings.warn(f"removed {len(removed)} of {len(corpus)} corpus images whose content is also in the "
                      f"evaluated sets ({len(evaluated)} images); listed in {listing}", OverlapWarning, stacklevel=2)
    return [r for r in corpus if r.path not in removed]


def find_duplicates(evaluated: Sequence[Record], corpus: Sequence[Record], cache_dir: str | Path,
                    max_hash_distance: int = MAX_HASH_DISTANCE,
                    max_pixel_distance: float = MAX_PIXEL_DISTANCE) -> list[Duplicate]:
    """Every corpus image that duplicates an evaluated image, with its closest evaluated match."""
    kept_paths = sorted({r.path for r in evaluated})
    corpus_paths = sorted({r.path for r in corpus} - set(kept_paths))
    kept, corpus_prints = Fingerprints.of(kept_paths, cache_dir), Fingerprints.of(corpus_paths, cache_dir)
    best: dict[int, tuple[float, int]] = {}
    for start in range(0, len(kept.hashes), BLOCK):
        bits = hamming_distance(kept.hashes[start:start + BLOCK, None], corpus_prints.hashes[None, :])
        q, c = np.nonzero(bits <= max_hash_distance)
        q += start
        distance = np.concatenate([np.abs(kept.pixels[q[i:i + BLOCK]] - corpus_prints.pixels[c[i:i + BLOCK]]).mean(1)
                                   for i in range(0, len(q), BLOCK)] or [np.zeros(0, np.float32)])
        close = distance <= max_pixel_distance
        for d, qv, cv in zip(distance[close], q[close], c[close]):
            owner = int(corpus_prints.owner[cv])
            if d < best.get(owner, (np.inf, -1))[0]:
                best[owner] = (float(d), int(kept.owner[qv]))
    return [Duplicate(kept_paths[k], corpus_paths[c], d) for c, (d, k) in sorted(best.items())]


def write_listing(duplicates: Sequence[Duplicate], path: str | Path) -> None:
    """CSV of kept file, duplicate file and distance, one row per removed image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kept", "duplicate", "distance"])
        writer.writerows((d.kept, d.duplicate, f"{d.distance:.4f}") for d in duplicates)


@dataclass(frozen=True)
class Fingerprints:
    """Thumbnail variants of a list of images: pHash, z-scored pixels and the image each belongs to."""

    hashes: np.ndarray  # uint64 (V,)
    pixels: np.ndarray  # float32 (V, THUMB_SIZE²), zero mean and unit variance per row
    owner: np.ndarray  # int (V,): index into the path list

    @classmethod
    def of(cls, paths: Sequence[str], cache_dir: str | Path) -> "Fingerprints":
        """Fingerprints of `paths` (unreadable files have none), thumbnails cached per file."""
        thumbs = cached_thumbnails(paths, cache_dir)
        owner = np.concatenate([np.full(len(t), i) for i, t in enumerate(thumbs)] or [np.zeros(0, int)])
        stacked = np.concatenate(thumbs) if thumbs else np.zeros((0, THUMB_SIZE, THUMB_SIZE), np.uint8)
        pixels = stacked.reshape(len(stacked), -1).astype(np.float32)
        pixels -= pixels.mean(axis=1, keepdims=True)
        pixels /= pixels.std(axis=1, keepdims=True) + 1e-6
        return cls(perceptual_hash(stacked), pixels, owner)


def perceptual_hash(thumbs: np.ndarray) -> np.ndarray:
    """DCT pHash: the 8×8 lowest frequencies of each thumbnail, one bit each, above or below their median."""
    low = (DCT[:8] @ thumbs.astype(np.float64) @ DCT[:8].T).reshape(len(thumbs), 64)
    bits = low > np.median(low[:, 1:], axis=1, keepdims=True)  # the DC term is left out of the median
    return np.packbits(bits, axis=1).view(">u8").ravel().astype(np.uint64)


def hamming_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Differing bits of broadcast uint64 arrays (np.bitwise_count where numpy has it, numpy < 2: a byte table)."""
    xor = a ^ b
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(xor)
    return BYTE_BITS[xor[..., None].view(np.uint8)].sum(-1)


def thumbnails(path: str) -> np.ndarray:
    """uint8 (V, 32, 32): the whole image squeezed square, then (if not square) its square crops."""
    image = _grayscale(path)
    out = [image.resize((THUMB_SIZE, THUMB_SIZE), Image.BILINEAR)]
    width, height = image.size
    side = min(width, height)
    if width != height:
        for offset in CROP_OFFSETS:
            x, y = round((width - side) * offset), round((height - side) * offset)
            out.append(image.crop((x, y, x + side, y + side)).resize((THUMB_SIZE, THUMB_SIZE), Image.BILINEAR))
    return np.stack([np.asarray(t, dtype=np.uint8) for t in out])


def _grayscale(path: str) -> Image.Image:
    """8-bit grayscale PIL image; JPEGs decoded at reduced size (≥ 4× the thumbnail) for speed."""
    if NPZ_SEPARATOR not in path and not path.lower().endswith(DICOM_SUFFIXES):
        with Image.open(path) as img:
            img.draft("L", (4 * THUMB_SIZE, 4 * THUMB_SIZE))
            if not (img.mode.startswith("I") or img.mode == "F"):
                return img.convert("L")
    return Image.fromarray(np.round(read_image(path) * 255).astype(np.uint8))


# ---------------------------------------------------------------- cache


def cached_thumbnails(paths: Sequence[str], cache_dir: str | Path) -> list[np.ndarray]:
    """thumbnails() of each path, read from `cache_dir/dedup/` when path, mtime and size match."""
    by_store: dict[Path, list[int]] = defaultdict(list)
    store_dir = Path(cache_dir) / "dedup"
    store_dir.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        folder = os.path.dirname(path.split(NPZ_SEPARATOR)[0])
        by_store[store_dir / f"{hashlib.sha256(f'{FINGERPRINT_FORMAT}:{folder}'.encode()).hexdigest()[:24]}.npz"].append(i)
    out: list[np.ndarray] = [np.zeros((0, THUMB_SIZE, THUMB_SIZE), np.uint8)] * len(paths)
    for store, indices in by_store.items():
        with exclusive(store.with_suffix(".lock")):
            known = _read_store(store)
            keys = {i: _file_key(paths[i]) for i in indices}
            missing = [i for i in indices if keys[i] not in known]
            for i in missing:
                known[keys[i]] = _thumbnails_or_none(paths[i])
            if missing:
                _write_store(store, known)
        for i in indices:
            out[i] = known[keys[i]]
    return out


def _file_key(path: str) -> str:
    stat = os.stat(path.split(NPZ_SEPARATOR)[0])
    return f"{path}|{stat.st_mtime_ns}|{stat.st_size}"


def _thumbnails_or_none(path: str) -> np.ndarray:
    """thumbnails(), or no variant at all for a file that cannot be decoded (the image cache warns about it)."""
    try:
        return thumbnails(path)
    except Exception:  # PIL, pydicom and numpy raise many types for a bad file
        return np.zeros((0, THUMB_SIZE, THUMB_SIZE), np.uint8)


def _read_store(store: Path) -> dict[str, np.ndarray]:
    if not store.exists():
        return {}
    with np.load(store) as z:
        keys, starts, thumbs = z["keys"], z["starts"], z["thumbs"]
    return {str(k): thumbs[a:b] for k, a, b in zip(keys, starts[:-1], starts[1:])}


def _write_store(store: Path, known: dict[str, np.ndarray]) -> None:
    keys = list(known)
    starts = np.cumsum([0] + [len(known[k]) for k in keys])
    thumbs = np.concatenate([known[k] for k in keys])
    write_atomically(store, lambda f: np.savez(f, keys=np.array(keys), starts=starts, thumbs=thumbs))
