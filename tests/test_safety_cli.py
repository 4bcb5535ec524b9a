"""The small promises of issue 25: predict, explain, the pyfunc model, the data root, report, summary counts."""
import numpy as np
import pandas as pd
import pytest

from helpers import ROOT
from test_predict import write_trial_checkpoint

IMAGES = ROOT.parent / "shared" / "data" / "covid-actualmed" / "images"


def test_predict_on_a_folder_without_images_says_so(tmp_path, capsys):
    from xfer.predict import main

    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no image here")
    assert main([str(write_trial_checkpoint(tmp_path / "best.pt")), str(tmp_path / "empty")]) == 1
    assert f"error: {tmp_path / 'empty'}: no image files in this folder" in capsys.readouterr().err  # before: silence


@pytest.mark.parametrize("cli, option", [("xfer.explain", "--out"), ("xfer.predict", "--gradcam")])
def test_an_output_folder_that_is_a_file_is_a_clear_error(tmp_path, capsys, cli, option):
    import importlib

    taken = tmp_path / "taken.png"
    taken.write_text("keep me")
    image = sorted(IMAGES.iterdir())[0]
    code = importlib.import_module(cli).main([str(write_trial_checkpoint(tmp_path / "best.pt")), str(image),
                                              option, str(taken)])
    err = capsys.readouterr().err
    assert code == 2 and f"error: {option} {taken} is a file" in err and "Traceback" not in err
    assert taken.read_text() == "keep me"


def test_the_pyfunc_model_marks_an_unreadable_image_and_takes_an_empty_frame(tmp_path):
    import mlflow.pyfunc

    from xfer.mlflow_model import ImageClassifier

    model = ImageClassifier()
    model.load_context(mlflow.pyfunc.PythonModelContext({"checkpoint": str(write_trial_checkpoint(tmp_path / "b.pt"))},
                                                        {}))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    good = [str(p) for p in sorted(IMAGES.iterdir())[:2]]
    out = model.predict(None, pd.DataFrame({"path": [good[0], str(bad), good[1]]}))
    assert len(out) == 3 and list(out["error"] == "") == [True, False, True]  # before: the batch failed
    assert pd.isna(out.loc[1, "prediction"]) and np.isnan(out.loc[1, "prob_covid"]) and out.loc[1, "error"]
    np.testing.assert_allclose(out.loc[[0, 2], ["prob_normal", "prob_covid"]].sum(1), 1, rtol=1e-5)
    empty = model.predict(None, pd.DataFrame({"path": []}))
    assert len(empty) == 0 and list(empty.columns) == ["prob_normal", "prob_covid", "prediction", "error"]


def test_a_data_root_that_is_a_file_says_so(tmp_path, capsys):
    from xfer.cli import main

    root = tmp_path / "root.txt"
    root.write_text("not a folder")
    for argv in (["data", "list"], ["data", "fetch", "covid-actualmed"]):
        with pytest.raises(SystemExit, match=f"the data root {root} is a file"):  # before: every set 'missing'
            main([*argv, "--data-root", str(root)])
    assert root.read_text() == "not a folder"


def test_report_on_a_missing_path_or_store_creates_nothing(tmp_path, monkeypatch, capsys):
    from xfer.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["report", str(tmp_path / "outputs" / "missing")]) == 2
    assert "is not a study output folder" in capsys.readouterr().err
    assert main(["report", "some_experiment"]) == 2
    assert "no MLflow store at sqlite:///" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # before: an mlflow.db with an empty experiment


def test_summary_counts_a_run_mlflow_holds_finished_though_tune_never_heard(tmp_path):
    from xfer import record, track
    from xfer.outcomes import study_trial_run_ids, trial_outcomes

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = track.ensure_experiment(uri, "counts")
    parent = track.study_run_id(uri, experiment_id, "counts", reuse=False)
    client = track.client(uri)
    tags = {record.KIND_TAG: record.TRIAL, track.PARENT_TAG: parent}
    done, flight = (client.create_run(experiment_id, tags=tags).info.run_id for _ in range(2))
    client.set_terminated(done, "FINISHED")  # its final tune.report was lost to the SIGINT
    no_reports = []  # the grid returned (Tune stopped it) without any trial's final report
    counts = trial_outcomes(uri, experiment_id, parent, no_reports, total=4)
    assert counts == {"finished": 1, "failed": 0, "killed": 1, "never_started": 2}  # before: finished 0
    assert study_trial_run_ids(uri, experiment_id, parent, no_reports) == [done, flight]
