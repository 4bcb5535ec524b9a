"""A trial's reuse key: the hash of everything that changes its result; a finished run is reused only on a match."""
from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

from xfer.config import InitConfig, StudyConfig, set_values
from xfer.data.root import resolve_path

# trial axes are in the trial key and the source is hashed below; the rest does not change a result
NOT_RESULTS = ("trials.", "ray.", "tracking.", "analysis.", "resources.", "output_dir", "description")


def digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_values(study: StudyConfig) -> dict[str, Any]:
    """The study's set values that change a trial's result (data, split, folds, external sets, train)."""
    return {k: v for k, v in set_values(study).items() if not k.startswith(NOT_RESULTS)}


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Content hash of a file, computed once per (path, mtime, size) in a process."""
    stat = os.stat(path)
    return _file_sha256(str(path), stat.st_mtime_ns, stat.st_size)


def source_identity(init: InitConfig, base_dir: Path) -> dict[str, str]:
    """What an init's weights are: its strategy and a published name, or a checkpoint file's content hash
    (a resolved `stage:` source is its stage's checkpoint: a changed recipe trains new weights)."""
    source = init.origin
    identity = {"strategy": init.strategy, "kind": source.kind}
    if source.kind == "file":
        path = resolve_path(source.name, base_dir)
        identity["sha256"] = file_sha256(path) if path.is_file() else f"missing:{path}"
    elif source.kind != "none":
        identity["name"] = source.name
    return identity


def reuse_key(study: StudyConfig, init: InitConfig, images: dict[str, Sequence[str]], base_dir: Path,
              axes: dict[str, Any]) -> str:
    """Hash of the study's result-changing config, the init's source identity, the trial's axes (model, n,
    seed, fold, repeat) and the image ids of its train subset, validation and test."""
    return digest({"config": config_values(study), "source": source_identity(init, base_dir), "axes": axes,
                    "images": {part: digest(sorted(ids)) for part, ids in images.items()}})
