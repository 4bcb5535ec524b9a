"""torchxrayvision's dataset classes as a layout: the library parses the CSV, xfer keeps paths and classes."""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import DATA
from test_config import smoke_raw
from xfer.config import ConfigError, DataConfig, DatasetConfig
from xfer.load import parse_study
from xfer.data import SkippedImagesWarning, load_records
from xfer.data.xrv_datasets import class_targets, single_label

IEEE = DATA / "covid-ieee8023-2020-03"
IEEE_MAP = {"COVID-19": "covid", "No Finding": "normal", "SARS": "pneumonia", "Streptococcus": "pneumonia",
            "ARDS": "pneumonia", "Pneumocystis": "pneumonia"}
CLASSES = ("normal", "pneumonia", "covid")


def test_covid19_dataset_gives_the_same_records_as_the_metadata_csv_reader():
    """COVID19_Dataset over the real covid-chestxray-dataset = xfer's own metadata_csv reader, and numpy's
    global RNG (which the library's constructor reseeds) is left as it was."""
    views = ("PA", "AP", "AP Supine")
    via_xrv = DatasetConfig("ieee", "torchxrayvision", str(IEEE / "images"), metadata=str(IEEE / "metadata.csv"),
                            patient_column="Patientid", views=views, xrv_class="COVID19_Dataset", label_map=IEEE_MAP)
    via_csv = DatasetConfig("ieee", "metadata_csv", str(IEEE), patient_column="Patientid", view_column="view",
                            views=views, modality_column="modality", modalities=("X-ray",), label_map=IEEE_MAP)
    np.random.seed(123)
    expected_draw = np.random.rand()
    np.random.seed(123)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)  # 4 rows of this CSV name absent files
        records = load_records(DataConfig((via_xrv,), CLASSES), Path("."))
        reference = load_records(DataConfig((via_csv,), CLASSES), Path("."))
    assert np.random.rand() == expected_draw
    assert len(records) > 100
    assert sorted((r.path, r.label, r.patient_id) for r in records) == \
        sorted((r.path, r.label, r.patient_id) for r in reference)
    assert all(r.targets[r.label] == 1 and sum(r.targets) == 1 for r in records)


def write_nih_csv(path: Path, rows: list[tuple[str, str, int, str]]) -> None:
    """A ChestX-ray14 Data_Entry CSV from (image, finding labels, patient id, view) rows."""
    pd.DataFrame({"Image Index": [r[0] for r in rows], "Finding Labels": [r[1] for r in rows],
                  "Follow-up #": 0, "Patient ID": [r[2] for r in rows], "Patient Age": 50, "Patient Gender": "F",
                  "View Position": [r[3] for r in rows]}).to_csv(path, index=False)


def write_nih(root: Path) -> None:
    """A ChestX-ray14 Data_Entry CSV and images: one row per rule of the pathology → class mapping."""
    rows = [("a.png", "Pneumonia", 1, "PA"), ("b.png", "No Finding", 2, "PA"), ("c.png", "Pneumonia|Effusion", 3, "PA"),
            ("d.png", "Effusion", 4, "PA"), ("e.png", "Pneumonia|Mass", 5, "PA"), ("f.png", "No Finding", 6, "AP"),
            ("g.png", "Mass", 8, "PA"), ("missing.png", "No Finding", 7, "PA")]
    (root / "images").mkdir(parents=True)
    for name, *_ in rows[:-1]:
        Image.fromarray(np.full((16, 16), 100, np.uint8)).save(root / "images" / name)
    write_nih_csv(root / "Data_Entry_2017.csv", rows)


NIH_MAP = {"Pneumonia": "pneumonia", "Mass": "mass", "No Finding": "normal"}


def nih_data(root: Path, multi_label: bool = False) -> DataConfig:
    ds = DatasetConfig("nih", "torchxrayvision", str(root / "images"), metadata=str(root / "Data_Entry_2017.csv"),
                       views=("PA",), xrv_class="NIH_Dataset", label_map=NIH_MAP)
    return DataConfig((ds,), ("normal", "pneumonia", "mass"), multi_label=multi_label)


def test_nih_pathologies_become_classes(tmp_path, monkeypatch):
    write_nih(tmp_path)
    monkeypatch.setenv("XFER_LISTINGS", str(tmp_path / "out"))
    with pytest.warns(SkippedImagesWarning, match="skipped 1 rows"):
        records = load_records(nih_data(tmp_path), Path("."))
    assert "missing.png" in next((tmp_path / "out" / "skipped").glob("*.txt")).read_text()
    got = {Path(r.path).name: (r.label, r.patient_id) for r in records}
    # d: only an unmapped finding; e: findings of two classes; f: AP view, filtered out
    assert got == {"a.png": (1, "1"), "b.png": (0, "2"), "c.png": (1, "3"), "g.png": (2, "8")}


def test_nih_multi_label_targets(tmp_path):
    write_nih(tmp_path)
    with pytest.warns(SkippedImagesWarning):
        records = load_records(nih_data(tmp_path, multi_label=True), Path("."))
    got = {Path(r.path).name: r.targets for r in records}
    assert got == {"a.png": (0, 1, 0), "b.png": (1, 0, 0), "c.png": (0, 1, 0), "d.png": (0, 0, 0),
                   "e.png": (0, 1, 1), "g.png": (0, 0, 1)}


def test_single_label_rules():
    """The class of the mapped findings; "No Finding" when nothing is positive; dropped (-1) otherwise."""
    pathologies = ["Effusion", "Pneumonia", "Mass"]
    nan = np.nan
    labels = np.array([[0, 1, 0], [0, 0, 0], [nan, nan, nan], [1, 0, 0], [0, 1, 1], [nan, 1, 0]], np.float32)
    targets = class_targets(labels, pathologies, {"Pneumonia": "pneumonia", "Mass": "mass", "No Finding": "normal"},
                            ("normal", "pneumonia", "mass"))
    assert single_label(targets).tolist() == [1, 0, 0, -1, -1, 1]
    # without a "No Finding" entry, images with no finding are dropped
    targets = class_targets(labels, pathologies, {"Pneumonia": "pneumonia"}, ("normal", "pneumonia"))
    assert single_label(targets).tolist() == [1, -1, -1, -1, 1, 1]


def test_class_target_rules():
    """1 if a mapped pathology is positive, 0 if one is known, NaN if all are unknown (CheXpert blanks)."""
    nan = np.nan
    labels = np.array([[0, 1, 0], [0, 0, 0], [nan, nan, nan], [1, nan, 0], [nan, nan, 1]], np.float32)
    out = class_targets(labels, ["Effusion", "Pneumonia", "Mass"],
                        {"Pneumonia": "pneumonia", "Mass": "pneumonia", "No Finding": "normal"}, ("normal", "pneumonia"))
    np.testing.assert_array_equal(out, [[0, 1], [1, 0], [1, nan], [0, 0], [0, 1]])


def test_unknown_xrv_class_is_named_in_the_config_error():
    raw = smoke_raw()
    raw["data"]["datasets"][0] = {"name": "nih", "layout": "torchxrayvision", "root": str(IEEE), "xrv_class": "NIH"}
    with pytest.raises(ConfigError, match=r"data.datasets\[0\].xrv_class: 'NIH' is not a supported .*NIH_Dataset"):
        parse_study(raw, "study.yaml", Path("."))
