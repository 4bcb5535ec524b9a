"""Every dataset folder in ../shared/data reads into records and splits with no patient in two splits."""
import warnings
from collections import Counter
from pathlib import Path

import pytest

from conftest import DATA
from xfer.config import DataConfig, DatasetConfig, SplitConfig
from xfer.data import (DATASETS, Record, SkippedImagesWarning, check_no_patient_in_two_splits, load_records,
                       patient_level_split)
from xfer.data.records import kermany_patient_id
from xfer.registry import UnknownNameError

IEEE_OTHER = ("SARS", "Streptococcus", "ARDS", "Pneumocystis", "No Finding")
IMAGENETTE_CLASSES = ("n01440764", "n02102040", "n02979186", "n03000684", "n03028079", "n03394916", "n03417042",
                      "n03425413", "n03445777", "n03888257")
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# one DataConfig per folder of ../shared/data, as a study would write it
CONFIGS = {
    "covid-actualmed": DataConfig(
        (DatasetConfig("actualmed", "metadata_csv", "../shared/data/covid-actualmed", filename_column="imagename",
                       label_column="finding", patient_column="patientid", view_column="view", views=("PA", "AP"),
                       modality_column="modality", modalities=("X-ray",),
                       label_map={"COVID-19": "covid", "No finding": "normal"}),),
        classes=("normal", "covid")),
    "covid-ieee8023-2020-03": DataConfig(
        (DatasetConfig("ieee8023", "metadata_csv", "../shared/data/covid-ieee8023-2020-03", filename_column="filename",
                       label_column="finding", patient_column="Patientid", view_column="view",
                       views=("PA", "AP", "AP Supine"), modality_column="modality", modalities=("X-ray",),
                       label_map={"COVID-19": "covid", **{raw: "other" for raw in IEEE_OTHER}}),),
        classes=("other", "covid")),
    "kermany-pneumonia-sample": DataConfig(
        (DatasetConfig("kermany_sample", "label_csv", "../shared/data/kermany-pneumonia-sample"),),
        classes=("NORMAL", "PNEUMONIA")),
    "kermany-pneumonia-224": DataConfig(
        (DatasetConfig("kermany224", "class_folders", "../shared/data/kermany-pneumonia-224",
                       folders=("train", "test")),),
        classes=("NORMAL", "PNEUMONIA"), split=SplitConfig(val_fraction=0.1, predefined_test="test")),
    "pneumoniamnist-28": DataConfig(
        (DatasetConfig("pneumoniamnist", "npz", "../shared/data/pneumoniamnist-28",
                       label_map={"0": "normal", "1": "pneumonia"}),),
        classes=("normal", "pneumonia"), split=SplitConfig(predefined_test="test")),
    "covid-ieee8023-2020-06": DataConfig(
        (DatasetConfig("ieee8023_06", "metadata_csv", "../shared/data/covid-ieee8023-2020-06", filename_column="filename",
                       label_column="finding", patient_column="patientid", view_column="view",
                       views=("PA", "AP", "AP Supine"), modality_column="modality", modalities=("X-ray",),
                       label_map={"COVID-19": "covid", "COVID-19, ARDS": "covid", "*": "other"}),),
        classes=("other", "covid")),
    "covid-hannover": DataConfig(
        (DatasetConfig("hannover", "metadata_csv", "../shared/data/covid-hannover", images_dir="png",
                       metadata="data.csv", filename_column="image_id", patient_column="patient_id",
                       view_column="projection", label="covid"),
         DatasetConfig("actualmed", "metadata_csv", "../shared/data/covid-actualmed", filename_column="imagename",
                       label_column="finding", patient_column="patientid",
                       label_map={"No finding": "normal"})),  # Hannover is COVID only: a second set gives "normal"
        classes=("normal", "covid")),
    "covid-radiography-112": DataConfig(
        (DatasetConfig("radiography", "class_folders", "../shared/data/covid-radiography-112", max_per_class=300,
                       label_map={"COVID": "covid", "Normal": "normal"}),),
        classes=("normal", "covid")),
    "imagenette-128": DataConfig(
        (DatasetConfig("imagenette", "class_folders", "../shared/data/imagenette-128", folders=("train", "val"),
                       max_per_class=30),),
        classes=IMAGENETTE_CLASSES, split=SplitConfig(val_fraction=0.1, predefined_test="val")),
    "cifar10-subset": DataConfig(
        (DatasetConfig("cifar10", "class_folders", "../shared/data/cifar10-subset", folders=("train", "test"),
                       max_per_class=300),),
        classes=CIFAR_CLASSES, split=SplitConfig(val_fraction=0.1, predefined_test="test")),
}


def read(name: str) -> list[Record]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        return load_records(CONFIGS[name], Path("."))


def test_every_shared_dataset_folder_has_a_config():
    assert {p.name for p in DATA.iterdir() if p.is_dir()} == set(CONFIGS)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_no_patient_in_two_splits(name):
    records = read(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)  # kermany-224: ids in both folders
        split = patient_level_split(records, CONFIGS[name].split)
    check_no_patient_in_two_splits(split, records)
    for part in (split.train, split.val, split.test):
        assert {records[i].label for i in part} == set(range(len(CONFIGS[name].classes))), name
    assert not set(split.train) & set(split.val) | set(split.train) & set(split.test) | set(split.val) & set(split.test)


def test_actualmed_drops_inconclusive_rows():
    records = read("covid-actualmed")
    assert Counter(r.label for r in records) == {1: 26, 0: 18}  # 10 rows with an empty finding dropped
    assert all(Path(r.path).is_file() and r.source == "actualmed" for r in records)
    by_patient = Counter(r.patient_id for r in records)
    assert max(by_patient.values()) > 1  # follow-up images share a patient


def test_ieee8023_filters_views_and_modality_and_warns_once_about_absent_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XFER_LISTINGS", str(tmp_path))
    with pytest.warns(SkippedImagesWarning) as caught:
        records = load_records(CONFIGS["covid-ieee8023-2020-03"], Path("."))
    assert len(caught) == 1 and "listed in" in str(caught[0].message)
    listing = next((tmp_path / "skipped").glob("*.txt")).read_text()
    assert "covid-19-pneumonia-14-PA.png" in listing
    assert "E1724330-1866-4581-8CD8-CEC9B8AFEDDE.jpeg" in listing
    assert all(Path(r.path).is_file() for r in records)
    paths = {Path(r.path).name for r in records}
    assert "auntminnie-a-2020_01_28_23_51_6665_2020_01_28_Vietnam_coronavirus.jpeg" in paths  # PA X-ray
    assert {r.patient_id for r in records} >= {"2"}  # integer ids kept as written, not "2.0"
    everything = DataConfig((DatasetConfig("all", "metadata_csv", "../shared/data/covid-ieee8023-2020-03",
                                           label_column="finding", patient_column="Patientid",
                                           label_map={"COVID-19": "covid", **{r: "other" for r in IEEE_OTHER}}),),
                            classes=("other", "covid"))
    with pytest.warns(SkippedImagesWarning):
        assert len(load_records(everything, Path("."))) > len(records)  # CT and lateral views were filtered


def test_label_csv_reads_filename_label_patient_id_columns():
    records = read("kermany-pneumonia-sample")
    assert Counter(r.label for r in records) == {0: 116, 1: 99}
    assert {r.patient_id for r in records if Path(r.path).name == "NORMAL2-IM-1440-0001.jpeg"} == {"N2-1440"}


def test_class_folders_kermany_patient_ids_and_folders():
    records = read("kermany-pneumonia-224")
    assert Counter((r.folder, r.label) for r in records) == {
        ("train", 0): 1341, ("train", 1): 3875, ("test", 0): 234, ("test", 1): 390}
    ids = {Path(r.path).name: r.patient_id for r in records}
    assert ids["person1_virus_11.jpeg"] == "person1"
    assert ids["IM-0115-0001.jpeg"] == "IM-0115"
    assert ids["NORMAL2-IM-0383-0001.jpeg"] == "NORMAL2-IM-0383"


@pytest.mark.parametrize("stem,patient", [
    ("person1000_bacteria_2931", "person1000"), ("person12_virus_35", "person12"), ("IM-0011-0001-0001", "IM-0011"),
    ("NORMAL2-IM-1440-0001", "NORMAL2-IM-1440"), ("0000", None), ("scan_person3", None)])
def test_kermany_patient_id(stem, patient):
    assert kermany_patient_id(stem) == patient


def test_class_folders_names_without_patient_are_their_own_patient():
    records = read("cifar10-subset")
    assert len(records) == 2 * 10 * 300  # max_per_class caps each class in each folder
    assert len({r.patient_id for r in records}) == len(records)  # 0000.jpg is in every class folder


def test_npz_entries_are_their_own_patients():
    records = read("pneumoniamnist-28")
    assert Counter(r.folder for r in records) == {"train": 3882, "val": 524, "test": 624}
    assert Counter(r.label for r in records if r.folder == "test") == {0: 234, 1: 390}
    first = records[0]
    assert first.path.endswith("pneumoniamnist.npz::train/0") and Path(first.path.split("::")[0]).is_absolute()
    assert len({r.patient_id for r in records}) == len(records)


def test_empty_class_is_an_error_naming_class_and_dataset():
    data = DataConfig(CONFIGS["covid-actualmed"].datasets, classes=("normal", "covid", "sars"))
    with pytest.raises(ValueError, match=r"\['sars'\].*actualmed"):
        load_records(data, Path("."))


def test_unknown_layout_and_missing_root_say_what_to_fix():
    bad = DataConfig((DatasetConfig("x", "dicom_tree", "../shared/data/covid-actualmed"),), classes=("a", "b"))
    with pytest.raises(UnknownNameError, match="class_folders, label_csv, metadata_csv, npz"):
        load_records(bad, Path("."))
    missing = DataConfig((DatasetConfig("x", "class_folders", "../shared/data/nowhere"),), classes=("a", "b"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_records(missing, Path("."))
    assert set(DATASETS) == {"metadata_csv", "class_folders", "label_csv", "npz", "torchxrayvision"}


def test_missing_csv_column_lists_the_columns():
    ds = DatasetConfig("actualmed", "metadata_csv", "../shared/data/covid-actualmed", label_column="diagnosis")
    with pytest.raises(ValueError, match="diagnosis.*imagename"):
        load_records(DataConfig((ds,), classes=("normal", "covid")), Path("."))


def test_a_dataset_without_label_column_declares_its_one_label():
    records = [r for r in read("covid-hannover") if r.source == "hannover"]
    assert len(records) == 243 and {r.label for r in records} == {1}
    assert len({r.patient_id for r in records}) == 71
    assert all(Path(r.path).suffix == ".png" and Path(r.path).is_file() for r in records)  # image_id has no suffix


def test_label_map_star_sends_every_other_finding_to_one_class():
    records = read("covid-ieee8023-2020-06")
    assert Counter(r.label for r in records) == {1: 427, 0: 104}  # COVID-19 (+ "COVID-19, ARDS") vs the rest
    assert len(records) == 531 and len({r.patient_id for r in records}) == 311  # frontal X-rays with a file


def test_class_folders_without_patient_ids_make_each_image_its_own_patient():
    records = read("covid-radiography-112")
    assert Counter(r.label for r in records) == {0: 300, 1: 300}
    assert len({r.patient_id for r in records}) == len(records)
