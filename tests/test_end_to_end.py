"""experiments/smoke.yaml through Ray Tune into a temporary MLflow store: runs, params, histories."""
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Run the smoke study twice (the second run must reuse everything) and return the MLflow client."""
    tmp = tmp_path_factory.mktemp("smoke")
    study = yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())
    study["output_dir"] = str(tmp / "out")
    study["data"]["cache_dir"] = str(tmp / "cache")  # stages train afresh in this test
    (tmp / "smoke.yaml").write_text(yaml.safe_dump(study))
    first = run_cli(["xfer.run", str(tmp / "smoke.yaml")], tmp)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    (tmp / "first_console.txt").write_text(first.stdout + first.stderr)  # what the researcher saw
    second = run_cli(["xfer.run", str(tmp / "smoke.yaml"), "--no-report"], tmp)
    assert second.returncode == 0, second.stderr[-5000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    return client, client.get_experiment_by_name("smoke"), tmp, study, first.stdout + second.stdout


def test_one_finished_run_per_trial(smoke):
    client, exp, _, study, _ = smoke
    trials = client.search_runs([exp.experiment_id], "tags.`xfer.kind` = 'trial'")
    t = study["trials"]
    folds = study["data"]["split"].get("folds", 1)
    expected = len(t["init"]) * len(t["models"]) * len(t["n_per_class"]) * len(t["seeds"]) * folds
    keys = [r.data.tags["xfer.trial_key"] for r in trials]
    assert len(keys) == expected == len(set(keys)), "the second run must not duplicate trials"
    assert all(r.info.status == "FINISHED" for r in trials)


def test_params_tags_and_metric_histories(smoke):
    client, exp, _, study, _ = smoke
    key = "meanvar|cbr_tiny|n=4|seed=0|fold=1|repeat=0"
    run = client.search_runs([exp.experiment_id], f"tags.`xfer.trial_key` = '{key}'")[0]
    params, tags = run.data.params, run.data.tags
    assert params["init.strategy"] == "meanvar" and params["train.lr"] == "0.003"
    assert params["n_train"] == "8" and params["model"] == "cbr_tiny"
    assert params["init.source"].endswith("checkpoint.pt")
    assert tags["init"] == "meanvar" and tags["seed"] == "0" and tags["n_per_class"] == "4"
    assert tags["fold"] == "1" and tags["repeat"] == "0"
    history = client.get_metric_history(run.info.run_id, "val_auc")
    assert [m.step for m in history] == list(range(1, study["train"]["epochs"] + 1))
    assert 0 <= run.data.metrics["test_auc"] <= 1
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
    assert "checkpoint/best.pt" in artifacts


def test_stage_ran_once_and_is_reused_in_its_own_experiment(smoke):
    client, exp, tmp, _, output = smoke
    assert client.search_runs([exp.experiment_id], "tags.`xfer.kind` = 'stage'") == []
    stage_experiment = client.get_experiment_by_name("xfer-stages")
    stages = client.search_runs([stage_experiment.experiment_id], "tags.`xfer.kind` = 'stage'")
    assert len(stages) == 1 and stages[0].info.status == "FINISHED"
    assert output.count("): training") == 1, "the second study run must not retrain the stage"
    manifests = list((tmp / "cache" / "stages").glob("*/manifest.json"))
    assert len(manifests) == 1


def test_report_written(smoke):
    _, _, tmp, _, _ = smoke
    report = tmp / "out" / "report" / "report.html"
    assert report.exists() and report.stat().st_size > 1000


def test_console_has_stage_progress_one_line_per_trial_and_the_closing_leaderboard(smoke):
    _, _, tmp, study, _ = smoke
    lines = (tmp / "first_console.txt").read_text().splitlines()
    trials = [line for line in lines if "[xfer] trial " in line]
    t = study["trials"]
    expected = len(t["init"]) * len(t["models"]) * len(t["n_per_class"]) * len(t["seeds"]) * \
        study["data"]["split"].get("folds", 1)
    assert len(lines) < 60, "\n".join(lines)
    assert len(trials) == expected and all("test AUC" in line and "ETA" in line for line in trials)
    assert trials[-1].split("[xfer] trial ")[1].startswith(f"{expected}/{expected} ")
    assert any("stage smoke_natural-cbr_tiny epoch 1/" in line and "ETA" in line for line in lines)
    assert any("stage smoke_natural-cbr_tiny done" in line and "accuracy" in line for line in lines)
    closing = lines[[i for i, line in enumerate(lines) if "leaderboard (test AUC" in line][0]:]
    assert sum("Δ vs random" in line for line in closing) == (len(t["init"]) - 1) * len(t["n_per_class"])
    assert any("report: " in line for line in closing) and any("xfer ui " in line for line in closing)
    assert not any("+----" in line or "Trial status" in line for line in lines), "Tune's tables are off"


def test_the_best_trial_of_each_init_has_a_model_that_predicts_as_xfer_predict_by_trial_key(smoke, tmp_path):
    import pandas as pd

    client, exp, tmp, study, _ = smoke
    runs = client.search_runs([exp.experiment_id], "tags.`xfer.kind` = 'trial'")
    with_model = [r for r in runs if "xfer.model" in r.data.tags]  # tracking.log_models: best (the default)
    assert sorted(r.data.tags["init"] for r in with_model) == sorted(i["strategy"] for i in study["trials"]["init"])
    run = with_model[0]
    images = sorted(str(p) for p in (ROOT.parent / "shared" / "data" / "covid-actualmed" / "images").glob("*.png"))[:4]
    mlflow.set_tracking_uri(f"sqlite:///{tmp / 'mlflow.db'}")
    served = mlflow.pyfunc.load_model(run.data.tags["xfer.model"]).predict(pd.DataFrame({"path": images}))
    key = run.data.tags["xfer.trial_key"]
    cli = run_cli(["xfer.cli", "predict", key, "--study", str(tmp / "out"), *images, "--out", str(tmp_path / "p.csv")],
                  tmp)
    assert cli.returncode == 0, cli.stderr[-3000:]
    predicted = pd.read_csv(tmp_path / "p.csv")
    columns = [c for c in predicted.columns if c.startswith("prob_")]
    assert list(predicted["path"]) == images and len(served) == len(images)
    assert abs(served[columns].to_numpy() - predicted[columns].to_numpy()).max() < 1e-5


def test_the_store_holds_one_copy_of_each_trials_weights(smoke):
    client, exp, tmp, _, _ = smoke
    trials = client.search_runs([exp.experiment_id], "tags.`xfer.kind` = 'trial'")
    weights = [p for p in (tmp / "mlartifacts" / "smoke").rglob("*") if p.suffix in (".pt", ".pth")]
    assert len(weights) == len(trials) and all(p.parent.name == "checkpoint" for p in weights)


def test_trial_run_has_dataset_inputs_predictions_with_files_and_confusion_image(smoke):
    client, exp, _, _, _ = smoke
    run = client.search_runs([exp.experiment_id], "tags.`xfer.kind` = 'trial'", max_results=1)[0]
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"train", "validation", "test"}
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "eval")}
    assert {"eval/confusion_matrix.png", "eval/test_predictions.csv"} <= artifacts
    study_run = client.search_runs([exp.experiment_id], "tags.`xfer.kind` = 'study'")[0]
    assert any(k.startswith("leaderboard/") and k.endswith("/test_auc") for k in study_run.data.metrics)
    assert exp.tags.get("mlflow.note.content", "").startswith("smoke test")
