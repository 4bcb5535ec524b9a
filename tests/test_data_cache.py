"""Images are decoded once per (files, size, channels); unreadable ones are skipped with one warning."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import xfer.data.cache as cache
from xfer.config import DataConfig, DatasetConfig, SplitConfig
from xfer.data import Record, SkippedImagesWarning, check_no_patient_in_two_splits, load_image_array, prepare_data


def image_records(tmp_path) -> list[Record]:
    """Two good PNGs around a corrupt one."""
    records = []
    for i, value in enumerate((50, None, 200)):
        path = tmp_path / f"img{i}.png"
        if value is None:
            path.write_bytes(b"corrupt")
        else:
            Image.new("L", (40, 30), value).save(path)
        records.append(Record(str(path), i % 2, f"p{i}", "tmp"))
    return records


def test_corrupt_image_skipped_with_one_warning_counting_it_and_a_listing_naming_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XFER_LISTINGS", str(tmp_path / "out"))
    records = image_records(tmp_path)
    with pytest.warns(SkippedImagesWarning) as caught:
        images, kept = load_image_array(records, 16, 1, tmp_path / "cache")
    assert len(caught) == 1 and "skipped 1 unreadable images" in str(caught[0].message)
    [listing] = (tmp_path / "out" / "skipped").glob("*.txt")
    assert str(listing) in str(caught[0].message) and "img1.png" in listing.read_text()
    assert kept == [0, 2]
    assert images.shape == (2, 1, 16, 16) and images.dtype == np.uint8
    assert images[0].max() == images[0].min() == 50 and images[1].min() == 200


def test_second_call_reads_the_cache_without_decoding(tmp_path, monkeypatch):
    records = image_records(tmp_path)[::2]
    first, _ = load_image_array(records, 16, 3, tmp_path / "cache")
    [array_file] = (tmp_path / "cache").glob("*.npy")
    written = array_file.stat().st_mtime_ns

    def must_not_decode(*args):
        raise AssertionError("decoded again although the cache exists")

    monkeypatch.setattr(cache, "read_image_resized", must_not_decode)
    again, kept = load_image_array(records, 16, 3, tmp_path / "cache")
    assert isinstance(again, np.memmap) and kept == [0, 1]
    np.testing.assert_array_equal(again, first)
    assert array_file.stat().st_mtime_ns == written
    with pytest.raises(AssertionError, match="decoded again"):
        load_image_array(records, 8, 3, tmp_path / "cache")  # another size is another cache file


def small_actualmed(cache_dir: Path) -> DataConfig:
    dataset = DatasetConfig("actualmed", "metadata_csv", "../shared/data/covid-actualmed", filename_column="imagename",
                            label_column="finding", patient_column="patientid",
                            label_map={"COVID-19": "covid", "No finding": "normal"})
    return DataConfig((dataset,), classes=("normal", "covid"), image_size=16, split=SplitConfig(seed=1),
                      cache_dir=str(cache_dir))


def test_prepare_data_builds_records_split_and_images(tmp_path, monkeypatch):
    data = prepare_data(small_actualmed(tmp_path / "cache"), Path("."))
    n = len(data.records)
    assert n == 44 and data.images.shape == (n, 1, 16, 16) and data.images.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.labels.tolist() == [r.label for r in data.records]
    assert data.patient_ids.tolist() == [r.patient_id for r in data.records]
    assert set(data.sources) == {"actualmed"} and data.classes == ("normal", "covid")
    check_no_patient_in_two_splits(data.split, data.records)
    assert sorted(data.split.train + data.split.val + data.split.test) == list(range(n))

    small = data.images_at(8)
    assert small.shape == (n, 1, 8, 8) and data.images_at(8) is small and data.images_at(16) is data.images
    monkeypatch.setattr(cache, "read_image_resized", lambda *a: pytest.fail("decoded again"))
    again = prepare_data(small_actualmed(tmp_path / "cache"), Path("."))
    np.testing.assert_array_equal(again.images, data.images)
    assert again.split == data.split
