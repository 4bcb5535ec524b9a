"""A dataset's source onto disk: a sparse git checkout at a pinned commit, or a resumable URL download."""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import time
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Optional

CHUNK = 1 << 20
MIB = 1024 * 1024
ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")


class Progress:
    """A progress bar as one plain stderr line, rewritten in place at most five times a second."""

    def __init__(self, label: str, total: Optional[int], unit: str = "files"):
        self.label, self.total, self.unit, self.done, self._shown = label, total, unit, 0, 0.0

    def update(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self._shown > 0.2:
            self._show("\r")

    def close(self) -> None:
        self._show("\r")
        sys.stderr.write("\n")

    def _show(self, start: str) -> None:
        self._shown = time.monotonic()
        scale, unit = (MIB, "MiB") if self.unit == "bytes" else (1, self.unit)
        total = f"/{self.total / scale:.0f}" if self.total else ""
        bar = f" [{'#' * int(30 * self.done / self.total):<30}]" if self.total else ""
        sys.stderr.write(f"{start}{self.label}{bar} {self.done / scale:.0f}{total} {unit}")
        sys.stderr.flush()



def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode:
        action = next(a for a in args if not a.startswith("-") and "=" not in a)
        raise RuntimeError(f"git {action} failed in {cwd}: {done.stderr.strip()}")
    return done.stdout.strip()


def git_checkout(origin: str, commit: str, subpaths: list[str], into: Path) -> Path:
    """Check out only `subpaths` of `origin` at `commit` (or HEAD) into `into`; a rerun fetches only what is new."""
    into.mkdir(parents=True, exist_ok=True)
    if not (into / ".git").is_dir():
        _git("init", "-q", cwd=into)
        _git("remote", "add", "origin", origin, cwd=into)
    if subpaths and "" not in subpaths:
        _git("sparse-checkout", "set", "--no-cone", *[f"/{p.strip('/')}" for p in subpaths], cwd=into)
    # blob:none: history and trees only; checkout then downloads just the sparse paths' files
    _git("-c", "protocol.file.allow=always", "fetch", "-q", "--filter=blob:none", "--tags", "origin",
         "HEAD", "+refs/heads/*:refs/remotes/origin/*", cwd=into)
    target = "FETCH_HEAD" if commit == "HEAD" else commit
    try:
        _git("-c", "protocol.file.allow=always", "checkout", "-q", "--force", "--detach", target, cwd=into)
    except RuntimeError as e:
        raise RuntimeError(f"{origin}: commit {commit} not found after fetching ({e}); "
                           f"check the catalogue's pinned commit") from None
    return into


def download(url: str, into: Path, expected_sha256: Optional[str], label: str) -> Path:
    """Download `url` to `into/NAME`, resuming `NAME.partial` where the transport allows; checks the sha256."""
    into.mkdir(parents=True, exist_ok=True)
    name = Path(urllib.parse.urlparse(url).path).name or "download"
    final, partial = into / name, into / f"{name}.partial"
    if final.is_file() and (expected_sha256 is None or file_sha256(final) == expected_sha256):
        return final
    start = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    with urllib.request.urlopen(request) as response:
        local = url.startswith("file:")  # file:// has no ranges: skip what the partial file already holds
        resumed = bool(start) and (local or getattr(response, "status", None) == 206)
        if local and resumed:
            response.read(start)
        size = response.headers.get("Content-Length")
        total = int(size) + (start if resumed and not local else 0) if size else None
        bar = Progress(f"{label}: download", total, "bytes")
        bar.done = start if resumed else 0
        with open(partial, "ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                bar.update(len(block))
        bar.close()
    got = file_sha256(partial)
    if expected_sha256 and got != expected_sha256:
        partial.unlink()
        raise RuntimeError(f"{url}: downloaded file has sha256 {got}, the catalogue expects {expected_sha256}; "
                           f"deleted it, run the fetch again (or fix the catalogue's source_sha256)")
    partial.replace(final)
    return final


def unpack(archive: Path, into: Path) -> Path:
    """Extract a .zip or tar archive into `into` (refusing members that would land outside it)."""
    into.mkdir(parents=True, exist_ok=True)
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)  # zipfile drops absolute and '..' components itself
    else:
        with tarfile.open(archive) as t:
            t.extractall(into, filter="data")
    return into


def fetch_source(origin: str, commit: Optional[str], subpaths: list[str], staging: Path, label: str,
                 source_sha256: Optional[str] = None) -> Path:
    """The source on disk under `staging`: a checkout, an unpacked archive, or a single downloaded file."""
    if commit is not None:
        return git_checkout(origin, commit, subpaths, staging / "checkout")
    downloaded = download(origin, staging / "download", source_sha256, label)
    if not downloaded.name.endswith(ARCHIVE_SUFFIXES):
        return downloaded
    unpacked = staging / "unpacked"
    if not (unpacked / ".complete").exists():
        shutil.rmtree(unpacked, ignore_errors=True)
        unpack(downloaded, unpacked)
        (unpacked / ".complete").touch()
    return unpacked
