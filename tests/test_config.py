"""Study YAML → typed config: every problem reported at once, each with its field path."""
from pathlib import Path

import pytest
import yaml

from xfer.config import ConfigError, StudyConfig, flatten, set_values
from xfer.load import load_stage, load_study, parse_study

ROOT = Path(__file__).resolve().parents[1]


def smoke_raw() -> dict:
    return yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())


def test_shipped_studies_and_recipes_parse():
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        assert isinstance(load_study(path), StudyConfig), path
    for path in sorted((ROOT / "pretrain").glob("*.yaml")):
        assert load_stage(path).stage == path.stem


def test_values_are_typed_and_frozen():
    study = parse_study(smoke_raw(), base_dir=ROOT / "experiments")
    assert study.trials.models == ("cbr_tiny",)
    assert study.trials.n_per_class == (4, "all")
    assert study.data.datasets[0].label_map["COVID-19"] == "covid"
    with pytest.raises(Exception):
        study.name = "other"  # frozen
    assert flatten(study)["train.lr"] == 0.003


def test_bad_yaml_errors_name_every_field():
    raw = smoke_raw()
    raw["trials"]["init"].append({"strategy": "imagenett"})
    raw["trials"]["models"].append("resnet19")
    raw["train"]["epochs"] = "ten"
    raw["train"]["learning_rate"] = 0.1
    raw["data"]["datasets"][0]["root"] = "/no/such/folder"
    raw["trials"]["n_per_class"] = [5, "most"]
    with pytest.raises(ConfigError) as info:
        parse_study(raw, "study.yaml", ROOT / "experiments")
    message = str(info.value)
    assert "train.epochs: expected an integer, got 'ten'" in message
    assert "train.learning_rate: unknown key" in message
    raw["train"] = {"epochs": 3}
    with pytest.raises(ConfigError) as info:
        parse_study(raw, "study.yaml", ROOT / "experiments")
    message = str(info.value)
    assert "trials.init[3]: unknown strategy 'imagenett'; known: " in message and "meanvar" in message
    assert "trials.models[1]: unknown model 'resnet19'" in message
    assert "data.datasets[0].root: dataset folder '/no/such/folder' not found" in message
    assert "trials.n_per_class[1]" in message


def test_missing_required_field_and_wrong_shape():
    with pytest.raises(ConfigError, match=r"trials: required field is missing"):
        parse_study({"name": "x", "data": smoke_raw()["data"]})
    with pytest.raises(ConfigError, match=r"data.classes: expected a list"):
        parse_study({"name": "x", "data": {**smoke_raw()["data"], "classes": "covid"}, "trials": smoke_raw()["trials"]})


def test_malformed_yaml_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="(?s)bad.yaml.*not valid YAML"):
        load_study(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_study(tmp_path / "absent.yaml")


def test_set_values_leave_out_unset_fields_only():
    """Cache keys and fingerprints hash set_values, so a new optional field at its default changes none."""
    study = parse_study(smoke_raw(), base_dir=ROOT / "experiments")
    values, everything = set_values(study), flatten(study)
    assert "data.multi_label" in everything and "data.multi_label" not in values
    assert "data.datasets.0.xrv_class" not in values
    assert values["train.freeze_epochs"] == 0 and values["train.lr"] == 0.003  # zeros are values, kept
    assert {k: v for k, v in everything.items() if k not in values} == \
        {k: v for k, v in everything.items() if v is None or v is False or v in ((), {})}
