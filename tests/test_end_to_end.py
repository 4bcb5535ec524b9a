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


def test_stage_ran_once_and_is_reused(smoke):
    client, exp, tmp, _, output = smoke
    stages = client.search_runs([exp.experiment_id], "tags.`xfer.kind` = 'stage'")
    assert len(stages) == 1 and stages[0].info.status == "FINISHED"
    assert output.count("stage smoke_natural-cbr_tiny") == 1, "the second study run must not retrain the stage"
    manifests = list((tmp / "cache" / "stages").glob("*/manifest.json"))
    assert len(manifests) == 1


def test_report_written(smoke):
    _, _, tmp, _, _ = smoke
    report = tmp / "out" / "report" / "report.html"
    assert report.exists() and report.stat().st_size > 1000
