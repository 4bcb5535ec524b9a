"""Safe names and safe writes: names that are identifiers, paths kept inside their root, folders xfer owns."""
from __future__ import annotations

import re
import shutil
import time
import warnings
from pathlib import Path
from typing import Optional

from xfer.convert import short

SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
OWNER_MARKER = ".xfer-owned"  # in every folder xfer may delete: written when xfer creates it


class UnsafePathError(ValueError):
    """A path xfer would write (or delete) that is outside its root, or a folder xfer did not create."""


class CorruptCacheWarning(UserWarning):
    """A cache file failed verification; it was moved aside and is being rebuilt."""


def name_problem(value: object, field: str) -> str | None:
    """Why `value` cannot be a name used in paths (study, stage, label), or None when it can."""
    if isinstance(value, str) and SAFE_NAME.fullmatch(value) and ".." not in value:
        return None
    return (f"{field}: {short(value)} is not a safe name; use letters, digits, '_', '-' and '.' (no '..', no '/', "
            f"at most 100 characters, starting with a letter or digit), e.g. 'init_study'")


def inside(root: Path, *parts: str, fix: str = "rename the study, stage or label to a plain name") -> Path:
    """`root/parts...` resolved; raises UnsafePathError when it leaves `root` (a '..' or a link)."""
    root = Path(root).resolve()
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise UnsafePathError(f"{path} is outside {root} (from {'/'.join(parts)!r}); xfer writes only inside "
                              f"its folders: {fix}")
    return path


def make_owned_dir(path: Path) -> Path:
    """Create `path` (if needed) and mark it as xfer's, so `remove_owned_dir` may delete it later."""
    path.mkdir(parents=True, exist_ok=True)
    (path / OWNER_MARKER).write_text("created by xfer; xfer may delete this folder\n")
    return path


def remove_owned_dir(path: Path) -> None:
    """Delete a folder xfer created (it holds the marker); refuses any other folder."""
    path = Path(path)
    if not path.exists():
        return
    if path.is_symlink() or not (path / OWNER_MARKER).is_file():
        raise UnsafePathError(f"{path} was not created by xfer (no {OWNER_MARKER} in it), so xfer will not delete "
                              f"it; move it away yourself, or pass --resume to continue what it holds")
    shutil.rmtree(path)


def corrupt_name(path: Path) -> str:
    """`<name>.corrupt-<time>`: where a corrupt file is kept for inspection."""
    return f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns() % 10**6}"


def keep_copy(path: Path, folder: Path) -> Path:
    """Copy a corrupt file that xfer does not own (a Tune checkpoint's) into `folder`, kept for inspection."""
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(path, folder / corrupt_name(path)))


def move_aside(path: Path, why: str) -> Path:
    """Rename a corrupt cache file or folder to `<name>.corrupt-<time>` (kept for inspection); returns the new path."""
    target = path.with_name(corrupt_name(path))
    path.rename(target)
    warnings.warn(f"{path} is corrupt ({why}); moved it to {target} and rebuilding it", CorruptCacheWarning,
                  stacklevel=2)
    return target



def not_a_folder(out: Path, option: str) -> Optional[str]:
    """The error line when an output folder option names an existing file, else None."""
    if out.exists() and not out.is_dir():
        return f"error: {option} {out} is a file; give a folder for the images to write (created if missing)"
    return None
