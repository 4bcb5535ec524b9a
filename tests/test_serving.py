"""A trial's weights are stored once: the logged MLflow model loads its run's checkpoint; a trial key finds its run."""
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from test_predict import write_trial_checkpoint
from xfer import record, track
from xfer.predict import main as predict_main
from xfer.mlflow_model import MODEL_TAG, best_trials, log_best_models, log_trial_model

ROOT = Path(__file__).resolve().parents[1]
IMAGES = sorted(str(p) for p in (ROOT.parent / "shared" / "data" / "covid-actualmed" / "images").glob("*.png"))[:3]
KEY = "imagenet|cbr_tiny|n=4|seed=0"


@pytest.fixture
def trial_run(tmp_path):
    """A finished trial run in a fresh sqlite store, with its checkpoint as the run's one weights artifact."""
    (tmp_path / "store").mkdir()
    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    experiment = track.ensure_experiment(uri, "mine")
    run_id = track.open_run(uri, experiment, KEY, {record.KIND_TAG: record.TRIAL, record.STUDY_TAG: "mine",
                                                    record.TRIAL_KEY_TAG: KEY}, (record.TRIAL_KEY_TAG,))
    with track.finishing(uri, run_id):
        track.log_file(uri, run_id, write_trial_checkpoint(tmp_path / "best.pt"), record.CHECKPOINT_ARTIFACT)
    return uri, run_id


def weight_files(uri: str) -> list[str]:
    """Every stored file that holds weights (run artifacts and logged models alike)."""
    root = Path(uri.removeprefix("sqlite:///")).parent
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.suffix in (".pt", ".pth"))


def test_logged_model_loads_the_runs_checkpoint_and_stores_no_second_copy(trial_run, tmp_path, capsys):
    uri, run_id = trial_run
    model_uri = log_trial_model(uri, run_id, IMAGES, ("normal", "covid"))
    assert len(weight_files(uri)) == 1 and weight_files(uri)[0].endswith("checkpoint/best.pt")
    assert mlflow.MlflowClient(uri).get_run(run_id).data.tags[MODEL_TAG] == model_uri
    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model(model_uri).predict(pd.DataFrame({"path": IMAGES}))
    assert predict_main([run_id, *IMAGES, "--tracking-uri", uri, "--out", str(tmp_path / "p.csv")]) == 0
    predicted = pd.read_csv(tmp_path / "p.csv")
    columns = [c for c in predicted.columns if c.startswith("prob_")]
    assert abs(served[columns].to_numpy() - predicted[columns].to_numpy()).max() < 1e-5


def test_predict_takes_the_trial_key_the_console_prints(trial_run, tmp_path, capsys):
    uri, run_id = trial_run
    assert predict_main([KEY, *IMAGES, "--study", "mine", "--tracking-uri", uri]) == 0
    captured = capsys.readouterr()
    assert f"trial run {run_id}" in captured.err and len(captured.out.splitlines()) == len(IMAGES)
    assert predict_main(["random|cbr_tiny|n=4|seed=0", *IMAGES, "--tracking-uri", uri]) == 2
    assert "no finished trial 'random|cbr_tiny|n=4|seed=0'" in capsys.readouterr().err


def test_log_models_best_logs_one_model_per_init_for_its_best_validation_trial(trial_run):
    uri, run_id = trial_run
    trials = pd.DataFrame({"init": ["imagenet", "imagenet", "random"], "best_val_auc": [0.9, 0.7, 0.6],
                           "run_id": [run_id, "other", "third"], "param.tracking.log_models": ["best"] * 3})
    assert list(best_trials(trials)["run_id"]) == [run_id, "third"]
    assert log_best_models(uri, trials.iloc[:2], ("normal", "covid")) != []
    assert log_best_models(uri, trials.iloc[:2], ("normal", "covid")) == []  # already logged: never twice
    assert log_best_models(uri, trials.assign(**{"param.tracking.log_models": "all"}), ("normal", "covid")) == []
