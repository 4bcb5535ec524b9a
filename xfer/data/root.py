"""The data root: where datasets live (XFER_DATA, else ../shared/data, else a per-user folder)."""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional

from xfer.config import DataConfig, DatasetConfig

DATA_ENV = "XFER_DATA"
SHARED_DATA = Path("../shared/data")  # this project's machines: beside the repository, as the studies name it


def user_data_root() -> Path:
    """The per-user default: $XDG_CACHE_HOME/xfer/data, or ~/.cache/xfer/data."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "xfer" / "data"


def explicit_data_root() -> Optional[Path]:
    """The root a user chose (XFER_DATA, which `--data-root` sets), or None."""
    chosen = os.environ.get(DATA_ENV)
    return Path(chosen).expanduser() if chosen else None


def data_root() -> Path:
    """XFER_DATA if set, else ../shared/data when it exists, else the per-user folder."""
    return explicit_data_root() or (SHARED_DATA if SHARED_DATA.is_dir() else user_data_root())


def set_data_root(path: str | Path) -> None:
    """Choose the data root for this process and the Ray workers it starts (they inherit XFER_DATA)."""
    os.environ[DATA_ENV] = str(Path(path).expanduser().absolute())


def _folder_in(root: Optional[Path], path: Path) -> Optional[Path]:
    """`root/NAME` for a relative dataset path whose last component NAME is a folder there."""
    if root is None or path.is_absolute() or path.name in ("", ".", "..") or path.name.startswith("."):
        return None
    candidate = root / path.name
    return candidate if candidate.is_dir() else None


def chosen_dataset_folder(path: Path) -> Optional[Path]:
    """A dataset path's folder in an explicitly chosen data root: it wins over the path as written."""
    return _folder_in(explicit_data_root(), path)


def dataset_folder(path: Path) -> Path:
    """A dataset path not found as written: its folder in the data root if there, else the path unchanged."""
    return _folder_in(data_root(), path) or path


def missing_dataset_message(given: str, searched: Path) -> str:
    """What to tell a user whose dataset folder is nowhere: the name, the paths searched, the fetch command."""
    from xfer.data.catalog import CATALOG

    name = Path(given).name
    in_root = data_root() / name
    where = f"searched {Path(searched).absolute()}" + (f" and {in_root.absolute()}" if in_root != searched else "")
    if name in CATALOG:
        fix = (f"Fetch it with `xfer data fetch {name}` on a machine with internet access, or copy a fetched "
               f"data root to this one; the data root is {DATA_ENV} or --data-root, now {data_root().absolute()}.")
    else:
        fix = (f"{name!r} is not in xfer's catalogue (`xfer data list`): put the folder in the data root "
               f"or fix data.datasets[].root.")
    return f"dataset folder {given!r} not found; {where}. {fix}"


def resolve_path(p: str, base_dir: Path) -> Path:
    """Paths in a config are relative to the working directory if they exist there, else to the file;
    a dataset folder is looked up in the data root by name (first when XFER_DATA is set, else last)."""
    path = Path(p).expanduser()
    if chosen := chosen_dataset_folder(path):
        return chosen
    if path.is_absolute() or path.exists():
        return path
    beside = base_dir / path
    return beside if beside.exists() else dataset_folder(path)


def absolutize(data: DataConfig, base_dir: Path) -> DataConfig:
    """Make dataset roots and the cache folder absolute, so Ray workers in other folders find them."""
    def absolute(datasets: tuple[DatasetConfig, ...]) -> tuple[DatasetConfig, ...]:
        return tuple(dataclasses.replace(d, root=str(resolve_path(d.root, base_dir).resolve())) for d in datasets)

    return dataclasses.replace(data, datasets=absolute(data.datasets), cache_dir=str(Path(data.cache_dir).resolve()),
                               exclude_overlap_with=absolute(data.exclude_overlap_with),
                               external=absolute(data.external))
