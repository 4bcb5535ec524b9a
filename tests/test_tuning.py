"""The tuning phase: a per-arm recipe chosen on validation by Ray Tune (search + ASHA), never from the test set."""
import dataclasses
import json
import subprocess
import sys

import mlflow
import pytest
import yaml

from helpers import ROOT, short_temp_dir, ray_env, trial_runs, write_study
from xfer import track
from xfer.config import ConfigError, InitConfig
from xfer.load import parse_study
from xfer.plan import TrialSpec
from xfer.record import TUNING
from xfer.trial import run_trial
from xfer.tuning import cells, parse_domain, tuning_trial_count

TUNING_SMOKE = ROOT / "experiments" / "tuning_smoke.yaml"


def tuning_study(**tuning):
    raw = yaml.safe_load(TUNING_SMOKE.read_text())
    raw["tuning"].update(tuning)
    return parse_study(raw, base_dir=ROOT / "experiments")


def test_a_tuning_block_is_checked_before_any_trial():
    with pytest.raises(ConfigError) as caught:
        tuning_study(space={"train.lr": "logunifrom(1e-5, 1e-1)", "train.wings": [1, 2],
                            "train.weight_decay": "uniform(1, 0)"}, seeds=[0, 100], samples=0)
    text = str(caught.value)
    assert "tuning.space.train.lr: give a list of values or loguniform" in text
    assert "tuning.space.train.wings: not a train setting" in text
    assert "tuning.space.train.weight_decay: uniform(1, 0) needs 0 < lo < hi" in text
    assert "tuning.seeds: [0] are also evaluation seeds" in text and "tuning.samples: must be >= 1" in text
    with pytest.raises(ConfigError, match="grid needs a list of values"):
        tuning_study(search="grid")


def test_the_plan_counts_tuning_trials_per_cell_configuration_and_seed():
    study = tuning_study()
    assert tuning_trial_count(study) == len(cells(study)) * 6 * 2
    assert tuning_trial_count(tuning_study(search="grid", space={"train.lr": [0.1, 0.01, 0.001]})) == \
        len(cells(study)) * 3 * 2
    assert parse_domain("loguniform(1e-5, 1e-1)") == ("loguniform", 1e-5, 0.1) and parse_domain("1e-3") is None


def test_a_tuning_trial_never_reads_the_test_set(tmp_path, monkeypatch):
    """The function that scores the test set raises here: a tuning trial still finishes, an evaluation one cannot."""
    import xfer.pipeline

    study = dataclasses.replace(tuning_study(), train=dataclasses.replace(tuning_study().train, epochs=1))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = track.ensure_experiment(uri, "t")

    def test_set_read(*args, **kwargs):
        raise AssertionError("the test set was scored")

    monkeypatch.setattr(xfer.pipeline, "predict_probs", test_set_read)
    tuned = run_trial(study, TrialSpec(InitConfig("random"), "cbr_tiny", "all", 100, phase=TUNING), uri,
                      experiment_id, base_dir=ROOT / "experiments")
    run = mlflow.MlflowClient(uri).get_run(tuned["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["xfer.phase"] == "tuning"
    assert not [m for m in run.data.metrics if m.startswith(("test_", "external/"))]
    assert run.data.params["n_test"] == "0" and "best_val_auc" in run.data.metrics
    assert not mlflow.MlflowClient(uri).list_artifacts(tuned["run_id"], "eval")
    with pytest.raises(AssertionError, match="the test set was scored"):
        run_trial(study, TrialSpec(InitConfig("random"), "cbr_tiny", "all", 0), uri, experiment_id,
                  base_dir=ROOT / "experiments")


@pytest.mark.slow
def test_the_tuning_smoke_chooses_a_recipe_per_arm_on_validation_and_asha_stops_are_neither_failures_nor_reruns(
        tmp_path):
    study = write_study(TUNING_SMOKE, tmp_path, {})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    temp_dir = short_temp_dir("xtune")
    env = ray_env(temp_dir, MLFLOW_TRACKING_URI=uri)
    run = subprocess.run([sys.executable, "-m", "xfer.run", str(study), "--no-report"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    runs = trial_runs(uri, "tuning_smoke")
    tuning = [r for r in runs if r.data.tags.get("xfer.phase") == "tuning"]
    evaluation = [r for r in runs if "xfer.phase" not in r.data.tags]
    assert len(tuning) == tuning_trial_count(parse_study(yaml.safe_load(study.read_text()), base_dir=tmp_path)) or \
        len(tuning) < 24, "one run per tuning trial started (ASHA stops a configuration before its second seed)"
    stopped = [r for r in tuning if r.data.tags.get("xfer.outcome") == "stopped_early"]
    assert stopped, "ASHA stopped no configuration"
    assert all(r.info.status == "FINISHED" for r in tuning), "a stopped configuration is neither failed nor killed"
    assert all(not any(m.startswith("test_") for m in r.data.metrics) for r in tuning), "tuning read the test set"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["failed"] == 0 and summary["trials"] == len(evaluation) == 4
    recipes = {(r["init"]): r["values"]["train.lr"] for r in
               json.loads((tmp_path / "out" / "tuning_recipes.json").read_text())}
    for r in evaluation:
        assert float(r.data.params["train.lr"]) == pytest.approx(recipes[r.data.tags["init"]]), \
            "an evaluation trial trains with its cell's chosen recipe"
    assert (tmp_path / "out" / "tuning_sensitivity.png").stat().st_size > 0

    again = subprocess.run([sys.executable, "-m", "xfer.run", str(study), "--no-report"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=1500)
    assert again.returncode == 0, again.stderr[-4000:]
    assert "reusing the finished tuning run" in again.stdout + again.stderr
    assert len(trial_runs(uri, "tuning_smoke")) == len(runs), "nothing re-run: tuning reused, trials reused"


@pytest.mark.slow
def test_two_arms_whose_best_learning_rate_differs_by_construction_get_different_recipes(tmp_path):
    """A frozen random backbone (only the linear head trains) wants a large lr; the whole network from random
    init diverges at it (measured on these images: full 0.88 at 0.003 vs 0.50 at 0.3; head-only 0.54 vs 0.83)."""
    study = write_study(TUNING_SMOKE, tmp_path, {
        "name": "by_construction", "trials.seeds": [0],
        "trials.init": [{"strategy": "random"}, {"strategy": "random", "label": "frozen", "train": {"freeze_epochs": 99}}],
        "tuning": {"space": {"train.lr": [0.003, 0.3]}, "search": "grid", "scheduler": "none", "seeds": [100, 101]}})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = ray_env(short_temp_dir("xtune2"), MLFLOW_TRACKING_URI=uri)
    run = subprocess.run([sys.executable, "-m", "xfer.run", str(study), "--no-report"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    chosen = {r["init"]: r["values"]["train.lr"] for r in
              json.loads((tmp_path / "out" / "tuning_recipes.json").read_text())}
    assert chosen == {"random": 0.003, "frozen": 0.3}


def test_a_recipe_tuned_per_cell_is_part_of_the_arm_not_a_sweep_axis():
    import pandas as pd

    from xfer.analysis.paired import swept_columns

    cells = [("random", 5, "0.01"), ("random", 20, "0.003"), ("imagenet", 5, "0.001"), ("imagenet", 20, "0.0003")]
    tuned = pd.DataFrame([{"init": i, "model": "m", "n_per_class": n, "seed": s, "param.train.lr": lr}
                          for i, n, lr in cells for s in (0, 1)])
    assert swept_columns(tuned) == [], "each cell has one lr: pairing random and imagenet at each n stays possible"
    swept = pd.concat([tuned, tuned.assign(**{"param.train.lr": "0.1"})])
    assert swept_columns(swept) == ["param.train.lr"]


def test_the_search_is_tunes_own_optuna_searcher_and_asha_that_lets_a_unit_reach_its_summary():
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from xfer.tuning import search_for

    study = tuning_study(search="optuna")
    search = search_for(study, seed=0)
    assert isinstance(search.search_alg, OptunaSearch) and isinstance(search.scheduler, ASHAScheduler)
    assert search.scheduler._max_t == study.train.epochs * len(study.tuning.seeds) + 1  # the summary report too
    assert (search.metric, search.mode, search.samples, search.trials) == ("tuning_score", "max", 6, 6)
    grid = search_for(tuning_study(search="grid", space={"train.lr": [0.1, 0.01]}, scheduler="none"), seed=0)
    assert grid.scheduler is None and (grid.samples, grid.trials) == (1, 2)


@pytest.mark.parametrize("n", ["all", 5])  # a numeric n is an int in the recipes and read back as one from the csv
def test_the_report_shows_the_recipe_each_arm_trained_with_and_how_many_configurations_asha_stopped(tmp_path, n):
    from xfer.analysis.document import tuning_section
    from xfer.tuning import recipes_to_json

    (tmp_path / "tuning_recipes.json").write_text(recipes_to_json({("random", "cbr_tiny", n): (("train.lr", 0.008),)}))
    (tmp_path / "tuning_trials.csv").write_text(
        "init,model,n_per_class,train.lr,tuning_score,epochs,outcome,run_id\n"
        f"random,cbr_tiny,{n},0.008,0.93,9,finished,a\nrandom,cbr_tiny,{n},0.05,0.5,2,stopped early,b\n")
    section = tuning_section(tmp_path / "report")
    assert "Tuned recipes" in section and "0.008" in section and "stopped early (ASHA)" in section
    assert tuning_section(tmp_path / "elsewhere" / "report") == "", "a study without a tuning phase has no section"
