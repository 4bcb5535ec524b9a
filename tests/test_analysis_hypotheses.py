"""The six hypothesis tests read a real MLflow (sqlite) store laid out as xfer's tracker writes it.

Metric values and test predictions are synthetic with known effects, so each verdict is predictable."""
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from scipy.stats import norm

from xfer.analysis.collect import load_study_runs
from xfer.analysis import hypotheses
from xfer.analysis.hypotheses import SAME_WEIGHTS, evaluate_hypotheses, verdict_table
from xfer.analysis.probes import CKA_COLUMNS
from xfer.config import AnalysisConfig
from xfer.inits import INITS as STRATEGIES
from xfer.report import main as report_main

# init label → (strategy, test AUC at n=5, at n=50, epochs constant of the val-AUC curve)
INITS = {"random": ("random", 0.60, 0.85, 4.0), "imagenet": ("imagenet", 0.75, 0.87, 1.0),
         "meanvar": ("meanvar", 0.62, 0.85, 2.0), "chexpert": ("chexpert", 0.80, 0.90, 1.0),
         "grayscale": ("grayscale_imagenet", 0.75, 0.87, 1.0)}
SOURCES = {"random": "none", "chexpert": "stage:xray_intermediate", "grayscale_imagenet": "stage:grayscale_natural"}
SEEDS = (0, 1, 2, 3)
EPOCHS = 12
IMAGES = 600  # one fixed test split shared by every trial
CFG = AnalysisConfig(equivalence_margin=0.1, convergence_margin=3.0)
TEST_IMAGES = np.random.default_rng(7)
PATIENTS = np.arange(IMAGES) // 2  # two images per patient
LABELS = (TEST_IMAGES.random(IMAGES // 2) < 0.5).astype(int)[PATIENTS]
SHARED = TEST_IMAGES.normal(0, 1, IMAGES)  # what makes an image easy or hard for every model


def synthetic_predictions(auc: float, rng) -> pd.DataFrame:
    """Test predictions whose AUC is about `auc`: label × separation + the image's difficulty + trial noise."""
    score = LABELS * np.sqrt(2 * 1.09) * norm.ppf(auc) + SHARED + rng.normal(0, 0.3, IMAGES)
    prob = 1 / (1 + np.exp(-score))
    return pd.DataFrame({"index": np.arange(IMAGES), "patient_id": PATIENTS, "label": LABELS,
                         "prob_normal": 1 - prob, "prob_covid": prob})


def log_trial(client: MlflowClient, experiment_id: str, init: str, model: str, n: str, seed: int, rng,
              predictions: dict) -> None:
    strategy, auc_small, auc_large, tau = INITS[init]
    auc = (auc_small if n == "5" else auc_large) + rng.normal(0, 0.01)
    key = f"{init}|{model}|n={n}|seed={seed}"
    tags = {"xfer.kind": "trial", "xfer.study": "synthetic", "xfer.trial_key": key, "init": init,
            "strategy": strategy, "model": model, "n_per_class": n, "seed": str(seed), "dataset": "actualmed"}
    run_id = client.create_run(experiment_id, run_name=key, tags=tags).info.run_id
    source = SOURCES.get(strategy, "stage:natural")
    params = [Param("init.source", source), Param("model", model), Param("n_per_class", n), Param("seed", str(seed))]
    curve = [0.95 * (1 - np.exp(-e / (tau + rng.uniform(0, 0.3)))) for e in range(1, EPOCHS + 1)]  # speed differs
    metrics = [Metric("val_auc", v, 0, e) for e, v in enumerate(curve, start=1)]
    metrics += [Metric("val_loss", 1 - v, 0, e) for e, v in enumerate(curve, start=1)]
    final = {"test_auc": auc, "best_val_auc": max(curve), "best_epoch": EPOCHS, "epochs_trained": EPOCHS}
    for c in ("normal", "covid"):
        final.update({f"test_auc_{c}": auc, f"test_precision_{c}": 0.7, f"test_recall_{c}": 0.7, f"test_f1_{c}": 0.7})
    metrics += [Metric(k, v, 0, 0) for k, v in final.items()]
    client.log_batch(run_id, metrics=metrics, params=params)
    client.set_terminated(run_id, "FINISHED")
    predictions[run_id] = synthetic_predictions(auc, rng)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("synthetic")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment("synthetic", artifact_location=str(tmp / "artifacts"))
    rng, predictions = np.random.default_rng(0), {}
    for init in INITS:
        for n in ("5", "50"):
            for seed in SEEDS:
                log_trial(client, experiment_id, init, "cbr_tiny", n, seed, rng, predictions)
                if init == "random":
                    log_trial(client, experiment_id, init, "resnet18", n, seed, rng, predictions)
    failed = client.create_run(experiment_id, tags={"xfer.kind": "trial", "xfer.trial_key": "broken", "init": "random",
                                                    "strategy": "random", "model": "cbr_tiny", "n_per_class": "5",
                                                    "seed": "9"}).info.run_id
    client.set_terminated(failed, "FAILED")
    return uri, tmp, predictions


def study_verdicts(store, trials_filter=None, cfg=CFG) -> pd.DataFrame:
    study = load_study_runs(store[0], "synthetic")
    trials = study.trials if trials_filter is None else study.trials[trials_filter(study.trials)]
    table = verdict_table(evaluate_hypotheses(trials, study_cka(), cfg, store[2], study.histories))
    return table.set_index("comparison")


@pytest.fixture(scope="module")
def verdicts(store):
    return study_verdicts(store)


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
    small = verdicts.loc["imagenet − random, test AUC at n=5"]
    assert small["verdict"] == "supported", small["reason"]
    assert verdicts.loc["gain of imagenet at n=5 − gain at n=50", "verdict"] == "supported"
    assert (small["seeds"], small["test_images"], small["patients"]) == (len(SEEDS), IMAGES, IMAGES // 2)
    assert small["mde"] < CFG.equivalence_margin and small["p_holm"] >= small["p"]


def test_pretrained_inits_converge_faster_and_meanvar_recovers_part(verdicts):
    label = "epochs to 90% of the run's own val AUC gain over 0.5"
    assert verdicts.loc[f"random − imagenet, {label}", "verdict"] == "supported"
    meanvar = verdicts.loc[f"random − meanvar, {label}"]
    assert meanvar["verdict"] == "supported"
    assert re.search(r"recovers \d+% \(95% CI .* Fieller\) of imagenet's speed-up", meanvar["reason"])


def test_xray_sources_and_grayscale_and_small_cnns(verdicts):
    assert verdicts.loc["chexpert − imagenet, test AUC", "verdict"] == "supported"
    assert verdicts.loc["grayscale − imagenet, test AUC", "verdict"] == "supported"  # non-inferior
    assert verdicts.loc["cbr_tiny − resnet18, test AUC (random init)", "verdict"] == "supported"  # equivalent


def test_inits_with_the_same_initial_weights_are_not_compared(store):
    study = load_study_runs(store[0], "synthetic")
    trials = study.trials.assign(**{"param.init.source": study.trials["param.init.source"].replace(
        "stage:grayscale_natural", "stage:natural")})  # grayscale_imagenet given the RGB stage: the cheap variant
    table = verdict_table(evaluate_hypotheses(trials, study_cka(), CFG, store[2])).set_index("comparison")
    row = table.loc["grayscale − imagenet, test AUC"]
    assert row["verdict"] == SAME_WEIGHTS and row["reason"] == SAME_WEIGHTS


def test_feature_reuse_without_cka_is_inconclusive_and_says_why(verdicts):
    h6 = verdicts[verdicts["hypothesis"] == "H6"].iloc[0]
    assert h6["verdict"] == "inconclusive" and "no CKA" in h6["reason"]


def test_too_few_seeds_is_inconclusive(store):
    few = study_verdicts(store, lambda t: t["seed"] < 2)
    row = few.loc["imagenet − random, test AUC at n=5"]
    assert row["verdict"] == "inconclusive" and row["reason"].startswith("too few seeds: 2 seed/repeat cluster(s)")


def test_test_auc_comparisons_without_predictions_say_what_they_need(store):
    study = load_study_runs(store[0], "synthetic")
    table = verdict_table(evaluate_hypotheses(study.trials, study_cka(), CFG)).set_index("comparison")
    row = table.loc[table["hypothesis"] == "H1"].iloc[0]
    assert row["verdict"] == "inconclusive" and "test_predictions.csv" in row["reason"]


def test_hypotheses_ask_strategies_what_they_are_instead_of_naming_them():
    source = "".join(p.read_text() for p in Path(hypotheses.__file__).parent.glob("*.py"))
    named = [name for name in STRATEGIES if f'"{name}"' in source or f"'{name}'" in source]
    assert not named, f"hypotheses.py names strategies {named}; read xfer.inits.strategy_info instead"


def test_report_cli_on_an_output_folder_explains_missing_sections(store, capsys):
    uri, tmp, _ = store
    out = tmp / "out"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"tracking_uri": uri, "experiment": "synthetic"}))
    assert report_main([str(out)]) == 0
    html_path = out / "report" / "report.html"
    assert capsys.readouterr().out.strip() == str(html_path)
    html = html_path.read_text()
    assert (out / "report" / "figures" / "learning_curves.png").stat().st_size > 0
    assert "Test set:" in html and "Holm" in html and "H5" in html
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


def test_feature_reuse_needs_a_delta_beyond_the_margin_against_the_mean_var_control():
    rng = np.random.default_rng(5)
    rows, cka = [], []
    # imagenet's lower blocks change a hair less than mean-var's (Δ 0.002, tight): scale, not reuse
    for init, lower in (("random", 0.30), ("imagenet", 0.702), ("meanvar", 0.70)):
        for seed in range(6):
            run = f"{init}-{seed}"
            rows.append({"run_id": run, "init": init, "strategy": init, "model": "cbr_tiny", "n_per_class": "5",
                         "seed": seed, "param.init.source": "none" if init == "random" else "stage:natural"})
            cka += [{"run_id": run, "depth": d, "cka": (lower if d < 2 else 0.2) + rng.normal(0, 0.0005)}
                    for d in range(4)]
    table = verdict_table(evaluate_hypotheses(pd.DataFrame(rows), pd.DataFrame(cka), CFG)).set_index("comparison")
    row = table.loc["imagenet − meanvar, Δ CKA of the lower blocks"]
    assert row["p"] < 0.05 or row["estimate"] > 0  # a real but negligible Δ ...
    assert row["verdict"] != "supported" and "smallest effect that matters" in row["reason"]  # ... is not reuse
