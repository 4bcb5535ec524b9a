"""Shared test fixtures: paths to the real data and the repository."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _run_from_repo_root(monkeypatch):
    """Configs name data as ../shared/data relative to the repository root, as users run them."""
    monkeypatch.chdir(ROOT)


@pytest.fixture(autouse=True)
def _skipped_file_listings_in_tmp(monkeypatch, tmp_path):
    """Listings of skipped files go to the test's folder, not the repository's outputs/."""
    monkeypatch.setenv("XFER_LISTINGS", str(tmp_path / "listings"))


@pytest.fixture(autouse=True)
def _data_root_restored():
    """`--data-root` sets XFER_DATA for the process (Ray workers inherit it): undo that after each test."""
    from xfer.data.root import DATA_ENV

    before = os.environ.get(DATA_ENV)
    yield
    if before is None:
        os.environ.pop(DATA_ENV, None)
    else:
        os.environ[DATA_ENV] = before
