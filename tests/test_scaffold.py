"""`xfer init` on a researcher's own folder: the Kaggle layout, their test set kept, sources told apart."""
import shutil
from pathlib import Path

import pytest
import yaml

from xfer.cli import main
from xfer.paths import name_problem
from xfer.scaffold import README_DATA_SECTION, safe_study_name, study_for

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
COVID = DATA / "covid-radiography-112" / "COVID"  # adult, many sources, 112 px grayscale JPEG
KERMANY = DATA / "kermany-pneumonia-224"  # pediatric, one hospital, 224 px RGB JPEG


def copy_first(source: Path, target: Path, n: int, skip: int = 0) -> None:
    target.mkdir(parents=True)
    for f in sorted(source.iterdir())[skip:skip + n]:
        shutil.copy(f, target / f.name)


def kaggle_folder(tmp_path: Path, covid_from_another_source: bool = True) -> Path:
    """download/Data/{train,test}/{COVID19,NORMAL,PNEUMONIA}, as the Kaggle download unpacks."""
    data = tmp_path / "download" / "Data"
    for split, n in (("train", 8), ("test", 4)):
        covid = COVID if covid_from_another_source else KERMANY / split / "PNEUMONIA"
        copy_first(covid, data / split / "COVID19", n, skip=0 if split == "train" else 100)
        for name in ("NORMAL", "PNEUMONIA"):
            copy_first(KERMANY / split / name, data / split / name, n, skip=20 if covid is not COVID else 0)
    return tmp_path / "download"


def test_init_keeps_the_kaggle_test_folder_names_covid_positive_and_splits_sources(tmp_path, capsys):
    out = tmp_path / "study.yaml"
    assert main(["init", str(kaggle_folder(tmp_path)), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "[xfer] warning: classes look drawn from different sources" in printed
    text = out.read_text()
    study = yaml.safe_load(text)
    data = study["data"]
    assert data["classes"] == ["COVID19", "NORMAL", "PNEUMONIA"]
    assert data["split"]["predefined_test"] == "test"
    assert data["positive_class"] == "COVID19"
    assert study["analysis"]["shortcut_probe"] is True
    by_name = {d["name"]: d for d in data["datasets"]}
    assert set(by_name) == {"download-COVID19", "download-NORMAL-PNEUMONIA"}
    assert all(Path(d["root"]).name == "Data" and d["folders"] == ["test", "train"] for d in by_name.values())
    assert by_name["download-COVID19"]["label_map"] == {"NORMAL": None, "PNEUMONIA": None}
    assert by_name["download-NORMAL-PNEUMONIA"]["label_map"] == {"COVID19": None}
    assert "112x112" in text and "224x224" in text  # the header says how the sources differ
    assert "  # scheduler: none" in text and "  # early_stopping_patience: 0" in text  # other options, commented
    assert main(["check", str(out), "--no-measure", "--recipes", str(ROOT / "pretrain")]) == 0
    assert "COVID19 12, NORMAL 12, PNEUMONIA 12" in capsys.readouterr().out  # each image read once


def test_init_of_classes_from_one_source_writes_one_dataset_and_no_probe(tmp_path):
    scaffold = study_for(kaggle_folder(tmp_path, covid_from_another_source=False), "same")
    assert len(scaffold.study["data"]["datasets"]) == 1 and "analysis" not in scaffold.study
    assert not scaffold.warnings


def test_init_refuses_to_overwrite_unless_forced(tmp_path, capsys):
    folder = kaggle_folder(tmp_path)
    out = tmp_path / "mine.yaml"
    out.write_text("# my own edits\n")
    assert main(["init", str(folder), "--out", str(out)]) == 6
    assert "FileExistsError" in capsys.readouterr().err and out.read_text() == "# my own edits\n"
    assert main(["init", str(folder), "--out", str(out), "--force", "--positive-class", "PNEUMONIA"]) == 0
    assert yaml.safe_load(out.read_text())["data"]["positive_class"] == "PNEUMONIA"


@pytest.mark.parametrize("folder", ["Données thorax", "胸部X線", "..."])
def test_a_non_ascii_folder_name_gives_a_valid_study_name(folder):
    assert name_problem(safe_study_name(folder), "name") is None


def test_init_error_cites_a_readme_section_that_exists(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="README") as error:
        study_for(tmp_path / "empty", "x")
    assert README_DATA_SECTION in str(error.value)
    assert f"## {README_DATA_SECTION}\n" in (ROOT / "README.md").read_text()


def test_check_prints_skipped_files_as_one_xfer_line_and_lists_them_in_the_study_folder(tmp_path, capsys,
                                                                                      monkeypatch):
    from xfer.data.records import LISTINGS_ENV

    monkeypatch.delenv(LISTINGS_ENV, raising=False)  # as a user runs it: no listings folder chosen beforehand
    folder = kaggle_folder(tmp_path)
    out = tmp_path / "study.yaml"
    assert main(["init", str(folder), "--out", str(out)]) == 0
    study = yaml.safe_load(out.read_text())
    study["trials"]["init"] = [{"strategy": "random"}]
    study["output_dir"] = str(tmp_path / "out")
    shared = sorted((folder / "Data" / "test" / "NORMAL").iterdir())[0]  # a test patient also in train: skipped there
    shutil.copy(shared, folder / "Data" / "train" / "NORMAL" / shared.name)
    out.write_text(yaml.safe_dump(study))
    capsys.readouterr()
    assert main(["check", str(out), "--no-measure"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in (captured.out + captured.err).splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1 and warnings[0].startswith("[xfer] warning: patient_level_split: skipped 1 images"), \
        captured
    assert str(tmp_path / "out" / "skipped") in warnings[0], warnings[0]
