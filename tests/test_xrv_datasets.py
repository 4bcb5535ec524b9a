"""torchxrayvision's dataset classes as a layout: the library parses the CSV, xfer keeps paths and classes."""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import DATA
from test_config import smoke_raw
from xfer.config import ConfigError, DatasetConfig, parse_study
from xfer.data import SkippedImagesWarning
from xfer.data.records import read_metadata_csv
from xfer.data.xrv_datasets import read_xrv_dataset, single_label

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
        records = read_xrv_dataset(via_xrv, CLASSES, Path("."))
        reference = read_metadata_csv(via_csv, CLASSES, Path("."))
    assert np.random.rand() == expected_draw
    assert len(records) > 100
    assert sorted(records, key=lambda r: r.path) == sorted(reference, key=lambda r: r.path)


def write_nih(root: Path) -> None:
    """A ChestX-ray14 Data_Entry CSV and images: one row per rule of the pathology → class mapping."""
    rows = [("a.png", "Pneumonia", 1, "PA"), ("b.png", "No Finding", 2, "PA"), ("c.png", "Pneumonia|Effusion", 3, "PA"),
            ("d.png", "Effusion", 4, "PA"), ("e.png", "Pneumonia|Mass", 5, "PA"), ("f.png", "No Finding", 6, "AP"),
            ("missing.png", "No Finding", 7, "PA")]
    (root / "images").mkdir(parents=True)
    for name, *_ in rows[:-1]:
        Image.fromarray(np.full((16, 16), 100, np.uint8)).save(root / "images" / name)
    pd.DataFrame({"Image Index": [r[0] for r in rows], "Finding Labels": [r[1] for r in rows],
                  "Follow-up #": 0, "Patient ID": [r[2] for r in rows], "Patient Age": 50, "Patient Gender": "F",
                  "View Position": [r[3] for r in rows]}).to_csv(root / "Data_Entry_2017.csv", index=False)


def test_nih_pathologies_become_classes(tmp_path):
    write_nih(tmp_path)
    ds = DatasetConfig("nih", "torchxrayvision", str(tmp_path / "images"), metadata=str(tmp_path / "Data_Entry_2017.csv"),
                       views=("PA",), xrv_class="NIH_Dataset",
                       label_map={"Pneumonia": "pneumonia", "Mass": "mass", "No Finding": "normal"})
    with pytest.warns(SkippedImagesWarning, match="missing.png"):
        records = read_xrv_dataset(ds, ("normal", "pneumonia", "mass"), Path("."))
    got = {Path(r.path).name: (r.label, r.patient_id) for r in records}
    # d: only an unmapped finding; e: findings of two classes; f: AP view, filtered out
    assert got == {"a.png": (1, "1"), "b.png": (0, "2"), "c.png": (1, "3")}


def test_single_label_rules():
    pathologies = ["Effusion", "Pneumonia", "Mass"]
    nan = np.nan
    labels = np.array([[0, 1, 0], [0, 0, 0], [nan, nan, nan], [1, 0, 0], [0, 1, 1], [nan, 1, 0]], np.float32)
    out = single_label(labels, pathologies, {"Pneumonia": "pneumonia", "Mass": "mass", "No Finding": "normal"},
                       ("normal", "pneumonia", "mass"))
    assert out.tolist() == [1, 0, 0, -1, -1, 1]
    # without a "No Finding" entry, images with no finding are dropped
    assert single_label(labels, pathologies, {"Pneumonia": "pneumonia"}, ("normal", "pneumonia")).tolist() == \
        [1, -1, -1, -1, 1, 1]


def test_unknown_xrv_class_is_named_in_the_config_error():
    raw = smoke_raw()
    raw["data"]["datasets"][0] = {"name": "nih", "layout": "torchxrayvision", "root": str(IEEE), "xrv_class": "NIH"}
    with pytest.raises(ConfigError, match=r"data.datasets\[0\].xrv_class: 'NIH' is not a supported .*NIH_Dataset"):
        parse_study(raw, "study.yaml", Path("."))
