"""No image in two places: duplicates are found by content across the real sets, and removed from the corpus."""
import csv
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import xfer.data.dedup as dedup
from conftest import DATA
from xfer.config import DataConfig, DatasetConfig, SplitConfig
from xfer.data.dedup import OverlapWarning, find_duplicates, remove_overlap
from xfer.data.prepare import prepare_data
from xfer.data.records import Record


def records(paths) -> list[Record]:
    return [Record(str(p), 0, str(p), "test") for p in paths]


def folder(path: str, names=None) -> list[Record]:
    files = sorted((DATA / path).iterdir())
    return records(f for f in files if names is None or f.name in names)


def stem(path: str) -> str:
    return Path(path).name.rsplit(".", 1)[0]


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def test_finds_the_hannover_images_inside_ieee8023(cache):
    table = pd.read_csv(DATA / "covid-ieee8023-2020-06/metadata.csv", dtype=str, keep_default_na=False)
    from_hannover = set(table[table.location.str.contains("Hannover")].filename)
    found = find_duplicates(folder("covid-hannover/png"), folder("covid-ieee8023-2020-06/images", from_hannover), cache)
    assert all(stem(d.kept) == stem(d.duplicate) for d in found)  # ieee8023 names them by Hannover's image_id
    # 82 are shared; 6 of them ieee8023 re-cropped off-centre and rescaled, beyond the tight pixel check
    assert len(found) >= 76


def test_finds_kermany_images_inside_covid_radiography_normal(cache):
    kermany = folder("kermany-pneumonia-224/train/NORMAL")[:100]
    radiography = folder("covid-radiography-112/Normal", {f"Normal-{i}.jpg" for i in range(1, 201)})
    found = find_duplicates(kermany, radiography, cache)
    # the database took Kermany's training normals in name order as Normal-63 … Normal-1403
    assert sorted(int(re.search(r"\d+", Path(d.duplicate).name).group()) for d in found) == list(range(63, 163))
    assert [d.kept for d in sorted(found, key=lambda d: int(re.search(r"\d+", Path(d.duplicate).name).group()))] \
        == [r.path for r in kermany]


def test_finds_none_between_unrelated_sets(cache):
    actualmed = folder("covid-actualmed/images")
    assert find_duplicates(actualmed, folder("imagenette-128/val/n03028079")[:200], cache) == []
    assert find_duplicates(actualmed, folder("covid-hannover/png"), cache) == []
    assert find_duplicates(actualmed, folder("kermany-pneumonia-sample/images"), cache) == []


def test_a_reupload_in_another_format_size_and_square_crop_is_found(tmp_path, cache):
    original = DATA / "covid-hannover/png/c0f74558.png"
    with Image.open(original) as img:
        width, height = img.size
        side = min(width, height)
        img.convert("L").resize((300, 300 * height // width)).save(tmp_path / "smaller.jpg", quality=80)
        img.crop(((width - side) // 2, 0, (width - side) // 2 + side, side)).save(tmp_path / "cropped.png")
    found = find_duplicates(records([original]), records([tmp_path / "smaller.jpg", tmp_path / "cropped.png"]), cache)
    assert sorted(Path(d.duplicate).name for d in found) == ["cropped.png", "smaller.jpg"]


def test_remove_overlap_returns_the_rest_writes_the_listing_and_warns_with_the_count(tmp_path, cache):
    sample = folder("kermany-pneumonia-sample/images")[:20]
    corpus = folder("kermany-pneumonia-224/test/NORMAL")[:30]
    listing = tmp_path / "overlap.csv"
    found = {d.duplicate for d in find_duplicates(sample, corpus, cache)}
    assert found  # the sample's first normals are in the 224 set's test folder
    with pytest.warns(OverlapWarning, match=rf"removed {len(found)} of 30 .*{listing.name}"):
        kept = remove_overlap(corpus, sample, listing, cache)
    assert [r.path for r in kept] == [r.path for r in corpus if r.path not in found]
    rows = list(csv.DictReader(open(listing)))
    assert {row["duplicate"] for row in rows} == found and all(float(row["distance"]) < 0.15 for row in rows)


def test_thumbnails_are_cached_per_file_and_redone_when_the_file_changes(tmp_path, cache, monkeypatch):
    image = tmp_path / "a.png"
    Image.open(DATA / "covid-hannover/png/c0f74558.png").save(image)
    calls = []
    thumbnails = dedup.thumbnails
    monkeypatch.setattr(dedup, "thumbnails", lambda path: calls.append(path) or thumbnails(path))
    dedup.cached_thumbnails([str(image)], cache)
    dedup.cached_thumbnails([str(image)], cache)
    assert len(calls) == 1
    Image.open(DATA / "covid-hannover/png/006f3a8a.png").save(image)
    dedup.cached_thumbnails([str(image)], cache)
    assert len(calls) == 2


def test_stage_data_drops_images_of_the_evaluated_sets_before_splitting(tmp_path):
    corpus = DatasetConfig("sample", "label_csv", "../shared/data/kermany-pneumonia-sample", max_per_class=40)
    evaluated = DatasetConfig("kermany224_test", "class_folders", "../shared/data/kermany-pneumonia-224",
                              folders=("test",))
    data = DataConfig((corpus,), classes=("NORMAL", "PNEUMONIA"), image_size=16, cache_dir=str(tmp_path / "cache"),
                      split=SplitConfig(val_fraction=0.2, test_fraction=0.0), exclude_overlap_with=(evaluated,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prepared = prepare_data(data, Path("."), overlap_listing=tmp_path / "overlap.csv")
    removed = {row["duplicate"] for row in csv.DictReader(open(tmp_path / "overlap.csv"))}
    assert removed and any(issubclass(w.category, OverlapWarning) for w in caught)
    assert not removed & {r.path for r in prepared.records}
    assert np.bincount(prepared.labels).tolist() == [40, 40]  # the cap counts images left after the removal


@pytest.mark.slow
def test_every_kermany_training_normal_is_in_covid_radiography_and_no_other_kermany_image_is(cache):
    kermany = folder("kermany-pneumonia-224/train/NORMAL") + folder("kermany-pneumonia-224/test/NORMAL")
    kermany += folder("kermany-pneumonia-224/train/PNEUMONIA") + folder("kermany-pneumonia-224/test/PNEUMONIA")
    found = find_duplicates(kermany, folder("covid-radiography-112/Normal") + folder("covid-radiography-112/COVID"),
                            cache)
    assert len(found) == 1341 and {Path(d.kept).parent for d in found} == {DATA / "kermany-pneumonia-224/train/NORMAL"}
