"""The six hypothesis tests read a real MLflow (sqlite) store laid out as xfer's tracker writes it.

Metric values are synthetic with known effects, so each verdict is predictable."""
import json

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

from xfer.analysis.collect import load_study_runs
from xfer.analysis.convergence import convergence_epochs
from xfer.analysis.hypotheses import evaluate_hypotheses, verdict_table
from xfer.analysis.probes import CKA_COLUMNS
from xfer.config import AnalysisConfig
from xfer.report import main as report_main

# init label → (strategy, test AUC at n=5, at n=50, epochs constant of the val-AUC curve)
INITS = {"random": ("random", 0.60, 0.85, 4.0), "imagenet": ("imagenet", 0.75, 0.87, 1.0),
         "meanvar": ("meanvar", 0.62, 0.85, 2.0), "chexpert": ("chexpert", 0.80, 0.90, 1.0),
         "grayscale": ("grayscale_imagenet", 0.75, 0.87, 1.0)}
SEEDS = (0, 1, 2, 3)
EPOCHS = 12
CFG = AnalysisConfig(bootstrap_samples=500, bootstrap_seed=0)


def log_trial(client: MlflowClient, experiment_id: str, init: str, model: str, n: str, seed: int, rng) -> None:
    strategy, auc_small, auc_large, tau = INITS[init]
    auc = (auc_small if n == "5" else auc_large) + rng.normal(0, 0.01)
    key = f"{init}|{model}|n={n}|seed={seed}"
    tags = {"xfer.kind": "trial", "xfer.study": "synthetic", "xfer.trial_key": key, "init": init,
            "strategy": strategy, "model": model, "n_per_class": n, "seed": str(seed), "dataset": "actualmed"}
    run_id = client.create_run(experiment_id, run_name=key, tags=tags).info.run_id
    source = {"random": "none", "chexpert": "stage:xray_intermediate"}.get(strategy, "stage:natural")
    params = [Param("init.source", source), Param("model", model), Param("n_per_class", n), Param("seed", str(seed))]
    curve = [(auc + 0.05) * (1 - np.exp(-e / (tau + rng.uniform(0, 0.3)))) for e in range(1, EPOCHS + 1)]
    metrics = [Metric("val_auc", v, 0, e) for e, v in enumerate(curve, start=1)]
    metrics += [Metric("val_loss", 1 - v, 0, e) for e, v in enumerate(curve, start=1)]
    final = {"test_auc": auc, "best_val_auc": max(curve), "best_epoch": EPOCHS, "epochs_trained": EPOCHS}
    for c in ("normal", "covid"):
        final.update({f"test_auc_{c}": auc, f"test_precision_{c}": 0.7, f"test_recall_{c}": 0.7, f"test_f1_{c}": 0.7})
    metrics += [Metric(k, v, 0, 0) for k, v in final.items()]
    client.log_batch(run_id, metrics=metrics, params=params)
    client.set_terminated(run_id, "FINISHED")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("synthetic")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("synthetic", artifact_location=str(tmp / "artifacts"))
    rng = np.random.default_rng(0)
    for init in INITS:
        for n in ("5", "50"):
            for seed in SEEDS:
                log_trial(client, experiment_id, init, "cbr_tiny", n, seed, rng)
                if init == "random":
                    log_trial(client, experiment_id, init, "resnet18", n, seed, rng)
    failed = client.create_run(experiment_id, tags={"xfer.kind": "trial", "xfer.trial_key": "broken", "init": "random",
                                                    "strategy": "random", "model": "cbr_tiny", "n_per_class": "5",
                                                    "seed": "9"}).info.run_id
    client.set_terminated(failed, "FAILED")
    return uri, tmp


@pytest.fixture(scope="module")
def verdicts(store):
    study = load_study_runs(store[0], "synthetic")
    trials = study.trials.merge(convergence_epochs(study.histories), on="run_id")
    return verdict_table(evaluate_hypotheses(trials, study_cka(), CFG)).set_index("comparison")


def study_cka():
    return pd.DataFrame(columns=CKA_COLUMNS)


def test_collect_reads_finished_trials_histories_and_failures(store):
    study = load_study_runs(store[0], "synthetic")
    assert len(study.trials) == len(INITS) * 2 * len(SEEDS) + 2 * len(SEEDS)
    assert list(study.failed["trial_key"]) == ["broken"]
    assert study.classes == ("normal", "covid")
    assert set(study.histories["metric"]) == {"val_auc", "val_loss"}
    assert study.histories.groupby("run_id").size().eq(2 * EPOCHS).all()


def test_pretraining_helps_at_small_n_and_the_gain_shrinks(verdicts):
    assert verdicts.loc["imagenet − random, test AUC at n=5", "verdict"] == "supported"
    assert verdicts.loc["gain of imagenet at n=5 − gain at n=50", "verdict"] == "supported"
    assert verdicts.loc["imagenet − random, test AUC at n=5", "n_pairs"] == len(SEEDS)


def test_pretrained_inits_converge_faster_and_meanvar_recovers_part(verdicts):
    assert verdicts.loc["random − imagenet, epochs to 90% of final val AUC", "verdict"] == "supported"
    meanvar = verdicts.loc["random − meanvar, epochs to 90% of final val AUC"]
    assert meanvar["verdict"] == "supported"
    assert "of imagenet's speed-up" in meanvar["reason"]  # its source, matched by init.source


def test_xray_sources_and_grayscale_and_small_cnns(verdicts):
    assert verdicts.loc["chexpert − imagenet, test AUC", "verdict"] == "supported"
    assert verdicts.loc["grayscale − imagenet, test AUC", "verdict"] == "supported"  # non-inferior
    assert verdicts.loc["cbr_tiny − resnet18, test AUC (random init)", "verdict"] == "supported"  # equivalent


def test_feature_reuse_without_cka_is_inconclusive_and_says_why(verdicts):
    h6 = verdicts[verdicts["hypothesis"] == "H6"].iloc[0]
    assert h6["verdict"] == "inconclusive" and "no CKA" in h6["reason"]


def test_too_few_seeds_is_inconclusive(store):
    study = load_study_runs(store[0], "synthetic")
    trials = study.trials.merge(convergence_epochs(study.histories), on="run_id")
    few = verdict_table(evaluate_hypotheses(trials[trials["seed"] < 2], study_cka(), CFG)).set_index("comparison")
    row = few.loc["imagenet − random, test AUC at n=5"]
    assert row["verdict"] == "inconclusive" and row["reason"].startswith("too few seeds")


def test_report_cli_on_an_output_folder_explains_missing_sections(store, capsys):
    uri, tmp = store
    out = tmp / "out"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"tracking_uri": uri, "experiment": "synthetic"}))
    assert report_main([str(out)]) == 0
    html_path = out / "report" / "report.html"
    assert capsys.readouterr().out.strip() == str(html_path)
    html = html_path.read_text()
    assert (out / "report" / "figures" / "learning_curves.png").stat().st_size > 0
    assert "supported" in html and "H5" in html
    assert "no probe images are stored" in html  # CKA / Grad-CAM / t-SNE need checkpoints and images
    client = MlflowClient(uri)
    study_run = client.search_runs([client.get_experiment_by_name("synthetic").experiment_id],
                                   "tags.`xfer.kind` = 'study'")[0]
    logged = {a.path for a in client.list_artifacts(study_run.info.run_id, "report")}
    assert {"report/report.html", "report/figures", "report/tables"} <= logged
    assert report_main([str(tmp)]) == 2  # a folder without study.json
    assert "no study.json" in capsys.readouterr().err


def test_unknown_experiment_error_names_the_known_ones(store):
    with pytest.raises(LookupError, match="synthetic"):
        load_study_runs(store[0], "no-such-study")
