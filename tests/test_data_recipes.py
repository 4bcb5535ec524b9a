"""Every stage recipe in pretrain/ parses and its data reads into the classes it names."""
import warnings
from collections import Counter
from pathlib import Path

import pytest

from conftest import ROOT
from xfer.data import SkippedImagesWarning, load_records
from xfer.data.prepare import load_records_without_overlap
from xfer.load import load_stage

RECIPES = sorted(p.name for p in (ROOT / "pretrain").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_parses_and_reads_every_class(recipe):
    stage = load_stage(ROOT / "pretrain" / recipe)
    assert stage.stage == recipe.removesuffix(".yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        records = load_records(stage.data, ROOT / "pretrain")
    assert set(Counter(r.label for r in records)) == set(range(len(stage.data.classes)))


def test_natural_sources_are_imagenette_photos_in_rgb_and_grayscale():
    natural, grayscale = (load_stage(ROOT / "pretrain" / f"{n}.yaml") for n in ("natural", "grayscale_natural"))
    assert natural.data.datasets == grayscale.data.datasets and "imagenette-128" in natural.data.datasets[0].root
    assert (natural.data.channels, grayscale.data.channels) == (3, 1) and len(natural.data.classes) == 10


def test_xray_intermediate_fine_tunes_the_natural_source_without_the_kermany_images():
    stage = load_stage(ROOT / "pretrain" / "xray_intermediate.yaml")
    assert stage.init.source == "stage:natural" and "covid-radiography-112" in stage.data.datasets[0].root
    assert any("kermany-pneumonia-224" in ds.root for ds in stage.data.exclude_overlap_with)


@pytest.mark.slow
def test_xray_intermediate_corpus_has_no_image_of_an_evaluated_set(tmp_path):
    stage = load_stage(ROOT / "pretrain" / "xray_intermediate.yaml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        records = load_records_without_overlap(stage.data, ROOT / "pretrain", tmp_path, tmp_path / "overlap.csv")
    assert Counter(r.label for r in records) == {0: 1500, 1: 1500}
    assert not any(Path(r.path).name in {f"Normal-{i}.jpg" for i in range(63, 1404)} for r in records)
    assert any("removed" in str(w.message) for w in caught)
