"""The one `xfer` command: subcommands, xfer's errors as one line with an exit code, check, init."""
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from xfer.cli import main

ROOT = Path(__file__).resolve().parents[1]
ACTUALMED = ROOT.parent / "shared" / "data" / "covid-actualmed"


def test_every_subcommand_is_listed(capsys):
    try:
        main(["--help"])
    except SystemExit:
        pass
    out = capsys.readouterr().out
    for command in ("run", "check", "init", "report", "predict", "explain", "weights", "data", "ui"):
        assert command in out


def test_invalid_study_is_one_line_with_exit_code_2_and_debug_shows_the_traceback(tmp_path, capsys):
    study = tmp_path / "bad.yaml"
    study.write_text("name: bad\ntrials: {init: [{strategy: randomm}], models: [cbr_tiny]}\n")
    assert main(["check", str(study)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xfer check: ConfigError:") and "data: required field" in err[0]
    assert main(["check", str(study), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_check_parses_and_validates_a_study_without_importing_torch_sklearn_mlflow_or_ray(tmp_path):
    import subprocess
    import sys

    study = tmp_path / "bad.yaml"
    study.write_text("name: bad\ntrials: {init: [{strategy: randomm}], models: [cbr_tiny]}\n")
    code = ("import sys, contextlib, io\n"
            "import xfer.check, xfer.load, xfer.preflight, xfer.stages, xfer.plan, xfer.tuning, xfer.data, xfer.inits\n"
            "from xfer.cli import main\n"
            "from xfer.models import is_known_model, model_spec\n"
            "assert is_known_model('resnet18') and model_spec('cbr_tiny').head == 'fc'\n"
            "with contextlib.redirect_stderr(io.StringIO()):\n"
            f"    assert main(['check', {str(study)!r}]) == 2\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'torchvision', 'timm', 'sklearn', "
            "'scipy', 'mlflow', 'ray', 'matplotlib'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_importing_the_run_command_starts_no_ray_or_torch_import():
    import subprocess
    import sys

    code = ("import sys, xfer.run, xfer.cluster\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ray', 'sklearn'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_missing_input_file_is_one_line_with_its_own_exit_code(tmp_path, capsys):
    assert main(["ui", str(tmp_path)]) == 6  # a folder that is no study output
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "FileNotFoundError" in err[0] and "study.json" in err[0]


def test_only_an_empty_experiment_maps_to_exit_7_and_a_plain_lookup_bug_keeps_its_traceback(capsys):
    from xfer.analysis.collect import NothingInMLflowError
    from xfer.cli import run_reporting_errors

    def empty():
        raise NothingInMLflowError("experiment 'x' has no finished trial runs")

    assert run_reporting_errors("report", empty, debug=False) == 7
    assert "Traceback" not in capsys.readouterr().err
    assert run_reporting_errors("report", lambda: {}["missing"], debug=False) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "KeyError" in err


def test_check_counts_trials_and_lists_stages_without_running_them(capsys):
    assert main(["check", str(ROOT / "experiments" / "smoke.yaml"), "--no-measure"]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "trials (" in out and "stage smoke_natural-cbr_tiny" in out


def test_init_writes_a_study_for_a_metadata_csv_that_check_accepts(tmp_path, capsys):
    out = tmp_path / "mine.yaml"
    assert main(["init", str(ACTUALMED), "--out", str(out), "--name", "mine"]) == 0
    study = yaml.safe_load(out.read_text())
    dataset = study["data"]["datasets"][0]
    assert dataset["layout"] == "metadata_csv" and dataset["filename_column"] == "imagename"
    assert dataset["label_column"] == "finding" and dataset["patient_column"] == "patientid"
    assert set(study["data"]["classes"]) == {"COVID-19", "No finding"}
    assert main(["check", str(out), "--no-measure", "--recipes", str(ROOT / "pretrain")]) == 0


def test_init_detects_class_folders(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for label in ("normal", "pneumonia"):
            (tmp_path / "xrays" / split / label).mkdir(parents=True)
            for i in range(3):
                Image.new("L", (8, 8), i * 40).save(tmp_path / "xrays" / split / label / f"{label}{i}.png")
    assert main(["init", str(tmp_path / "xrays"), "--out", str(tmp_path / "x.yaml")]) == 0
    study = yaml.safe_load((tmp_path / "x.yaml").read_text())
    assert study["data"]["datasets"][0]["layout"] == "class_folders"
    assert study["data"]["datasets"][0]["folders"] == ["test", "train"]
    assert study["data"]["classes"] == ["normal", "pneumonia"]


def test_check_estimates_wall_time_saying_the_load_it_measured_at_and_the_range_asha_spans(capsys):
    assert main(["check", str(ROOT / "experiments" / "tuning_smoke.yaml")]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("estimated wall time"))
    assert "speed measured at load " in line and "ASHA stopping half the configurations at every rung" in line
    low, high = re.match(r"estimated wall time: ~(.+?) to ~(.+?) \(", line).groups()
    assert seconds(low) < seconds(high)


def test_check_times_the_test_folder_a_study_names_once_and_its_validation_part_every_epoch():
    from xfer.check import Speed, part_sizes, quiet_records, trial_seconds
    from xfer.data.root import absolutize
    from xfer.load import load_study

    study = load_study(ROOT / "experiments" / "init_study.yaml")
    records = quiet_records(absolutize(study.data, ROOT / "experiments"), ROOT / "experiments")
    parts = part_sizes(records, study.data.split)
    test_folder = sum(1 for f in (ROOT.parent / "shared/data/kermany-pneumonia-224/test").rglob("*.jpeg"))
    assert parts["test"] == test_folder  # the uploader's test folder, not split.test_fraction of the pool
    assert parts["val"] < 0.05 * parts["train"]  # val_fraction 0.03 of the training folder
    speed = Speed(train=10.0, score=100.0)
    epochs = study.train.epochs
    assert trial_seconds(study, 5, parts, speed) == pytest.approx(
        epochs * 10 / 10.0 + (epochs * parts["val"] + parts["test"]) / 100.0)


def seconds(text: str) -> float:
    """'1h12m', '3m05s', '45s' (console.duration) → seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(v) * units[u] for v, u in re.findall(r"(\d+(?:\.\d+)?)\s*([hms])", text))


def test_asha_share_halves_the_survivors_at_every_rung():
    from xfer.load import load_study
    from xfer.tuning import asha_rungs, asha_share

    study = load_study(ROOT / "experiments" / "init_study_tuned.yaml")
    assert asha_rungs(study) == (2, 17)  # 8 epochs × 2 tuning seeds + the summary report
    assert asha_share(study) == pytest.approx((2 + 2 / 2 + 4 / 4 + 8 / 8 + 1 / 16) / 17)
    assert asha_share(dataclasses.replace(study, tuning=dataclasses.replace(study.tuning, scheduler="none"))) == 1
