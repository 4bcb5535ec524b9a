"""`xfer data` and the caches (issue 25): fetch never writes through a link out of the data root, a fetched set is
present only when its files verify, and a cache corrupted in place at the same size is rebuilt."""
import os

import numpy as np
import pytest
from PIL import Image

from test_data_fetch import xray_entry, xray_repo  # noqa: F401 - the fixture
from xfer.cli import main
from xfer.data.download import file_sha256
from xfer.data.fetch import check_dataset, fetch_dataset
from xfer.paths import CorruptCacheWarning, UnsafePathError


def canaries(outside):
    """Files outside the data root with the names fetch writes; each says 'alive'."""
    for name in ("images/a.png", "images/b.png", "metadata.csv"):
        (outside / name).parent.mkdir(parents=True, exist_ok=True)
        (outside / name).write_text("alive")
    return [outside / n for n in ("images/a.png", "images/b.png", "metadata.csv")]


def test_fetch_into_a_dataset_folder_linked_out_of_the_data_root_is_refused(xray_repo, tmp_path):
    repo, commit = xray_repo
    root, outside = tmp_path / "root", tmp_path / "elsewhere"
    alive = canaries(outside)
    root.mkdir()
    (root / "toy-xray").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="outside .*fetch writes only inside the data root"):
        fetch_dataset(xray_entry(repo, commit), root)
    assert all(c.read_text() == "alive" for c in alive)  # before: overwritten, and the set reported present


def test_fetch_into_an_images_folder_linked_out_is_refused_by_the_cli(xray_repo, tmp_path, monkeypatch, capsys):
    from xfer.data import catalog

    repo, commit = xray_repo
    root, outside = tmp_path / "root", tmp_path / "elsewhere"
    alive = canaries(outside)
    (root / "toy-xray").mkdir(parents=True)
    (root / "toy-xray" / "images").symlink_to(outside / "images", target_is_directory=True)
    monkeypatch.setitem(catalog.CATALOG, "toy-xray", xray_entry(repo, commit))
    assert main(["data", "fetch", "toy-xray", "--data-root", str(root)]) == 1
    assert "UnsafePathError" in capsys.readouterr().err
    assert all(c.read_text() == "alive" for c in alive)
    assert check_dataset(xray_entry(repo, commit), root).state != "present"


def test_a_file_linked_out_of_the_data_root_is_replaced_never_written_through(xray_repo, tmp_path):
    repo, commit = xray_repo
    root, outside = tmp_path / "root", tmp_path / "elsewhere"
    alive = canaries(outside)
    folder = root / "toy-xray"
    (folder / "images").mkdir(parents=True)
    (folder / "images" / "a.png").symlink_to(outside / "images" / "a.png")
    (folder / "metadata.csv").symlink_to(outside / "metadata.csv")
    state = fetch_dataset(xray_entry(repo, commit), root)
    assert all(c.read_text() == "alive" for c in alive)
    assert not (folder / "images" / "a.png").is_symlink() and not (folder / "metadata.csv").is_symlink()
    assert Image.open(folder / "images" / "a.png").size == (512, 384) and state.files == 3


def test_a_fetched_file_later_swapped_for_a_link_is_not_present(xray_repo, tmp_path):
    repo, commit = xray_repo
    root, outside = tmp_path / "root", tmp_path / "elsewhere"
    fetch_dataset(xray_entry(repo, commit), root)
    entry = xray_entry(repo, commit, metadata_sha256=file_sha256(root / "toy-xray" / "metadata.csv"))
    assert check_dataset(entry, root, deep=True).state == "present"
    canaries(outside)
    b = root / "toy-xray" / "images" / "b.png"
    os.replace(b, outside / "images" / "b.png")  # same bytes, now outside, reached through a link
    b.symlink_to(outside / "images" / "b.png")
    state = check_dataset(entry, root, deep=True)
    assert state.state == "incomplete" and any("images/b.png: a link to" in p for p in state.problems)


def test_an_image_cache_zeroed_in_place_at_the_same_size_is_rebuilt_with_a_warning(tmp_path):
    from xfer.data import Record, load_image_array

    records = []
    for i in range(4):
        Image.new("L", (20, 20), 40 * i + 30).save(tmp_path / f"{i}.png")
        records.append(Record(str(tmp_path / f"{i}.png"), i % 2, f"p{i}", "tmp"))
    first = np.array(load_image_array(records, 16, 1, tmp_path / "cache")[0])
    [npy] = (tmp_path / "cache").glob("*.npy")
    size = npy.stat().st_size
    header = size - first.nbytes
    with open(npy, "r+b") as f:  # the images zeroed, the header (shape, dtype) intact
        f.seek(header)
        f.write(bytes(first.nbytes))
    assert npy.stat().st_size == size and not np.load(npy).any()
    with pytest.warns(CorruptCacheWarning, match="sha256 differs from the one recorded"):
        again, kept = load_image_array(records, 16, 1, tmp_path / "cache")
    np.testing.assert_array_equal(again, first)  # before: blank images, silently
    assert kept == [0, 1, 2, 3] and list((tmp_path / "cache").glob("*.npy.corrupt-*"))


def test_a_corrupt_tune_trial_state_is_kept_for_inspection(tmp_path):
    from ray import tune

    from xfer.tune import STATE_FILE, load_trial_state

    (tmp_path / "checkpoint").mkdir()
    (tmp_path / "checkpoint" / STATE_FILE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(CorruptCacheWarning, match="kept a copy as"):
        assert load_trial_state(tune.Checkpoint.from_directory(str(tmp_path / "checkpoint")),
                                tmp_path / "out" / "corrupt") is None
    [kept] = (tmp_path / "out" / "corrupt").iterdir()
    assert kept.name.startswith(f"{STATE_FILE}.corrupt-") and kept.read_bytes() == b"PK\x03\x04 truncated"
