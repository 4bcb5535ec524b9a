"""An arm's own training values (`trials.init[i].train`): they override the study's train block for that arm only,
are checked at load, are logged as the trial's train params, and never split the arms' comparisons."""
import pandas as pd
import pytest

from tests.test_config import ROOT, smoke_raw
from tests.test_leaderboard import trials as leaderboard_trials
from xfer.analysis.leaderboard import leaderboard
from xfer.analysis.paired import swept_columns
from xfer.config import ConfigError, flatten
from xfer.load import parse_stage, parse_study
from xfer.sweep import apply_sweep

EXPERIMENTS = ROOT / "experiments"


def study_with_arm_train(train: dict, sweep: dict | None = None):
    raw = smoke_raw()
    raw["trials"]["init"][0]["train"] = train
    if sweep:
        raw["trials"]["sweep"] = sweep
    return parse_study(raw, "study.yaml", EXPERIMENTS)


def test_an_arms_train_values_override_the_study_train_block_for_that_arm_only():
    study = study_with_arm_train({"lr": 0.0001, "epochs": 5})
    random_arm, meanvar_arm = study.trials.init[0], study.trials.init[1]
    assert random_arm.train_values == (("train.epochs", 5), ("train.lr", 0.0001))
    own = apply_sweep(study, random_arm.train_values)  # what the trainable does before run_trial
    assert (own.train.lr, own.train.epochs, own.train.batch_size) == (0.0001, 5, study.train.batch_size)
    assert flatten(own)["train.lr"] == 0.0001  # so the trial's MLflow params carry the arm's value
    shared = apply_sweep(study, meanvar_arm.train_values)
    assert (shared.train.lr, shared.train.epochs) == (0.003, 3)


def test_wrong_arm_train_values_are_config_errors_naming_the_field():
    with pytest.raises(ConfigError) as error:
        study_with_arm_train({"lr": "fast", "learning_rate": 0.1, "epochs": 2}, sweep={"train.epochs": [2, 4]})
    message = str(error.value)
    assert "trials.init[0].train.lr: expected a number, got 'fast'" in message
    assert "trials.init[0].train.learning_rate: not a train setting" in message
    assert "trials.init[0].train.epochs: train.epochs is also in trials.sweep" in message


def test_a_stage_init_takes_no_train_values():
    raw = {"stage": "s", "model": "cbr_tiny", "init": {"strategy": "random", "train": {"lr": 0.1}},
           "data": smoke_raw()["data"], "train": {"epochs": 1}}
    with pytest.raises(ConfigError, match="init.train: a stage trains with its own train block"):
        parse_stage(raw, "stage.yaml", EXPERIMENTS)


def test_an_arms_own_learning_rate_is_no_sweep_axis_and_arms_are_still_compared():
    frame = leaderboard_trials()
    frame["param.train.lr"] = frame["init"].map({"random": "0.0003", "imagenet": "0.001"})  # fixed per arm
    assert swept_columns(frame) == []
    board = leaderboard(frame)
    assert board.loc[board["init"] == "imagenet", "diff_vs_random"].round(1).eq(0.1).all()
    swept = pd.concat([frame, frame.assign(**{"param.train.lr": "0.01"})], ignore_index=True)
    assert swept_columns(swept) == ["param.train.lr"]  # varies within an arm: a real sweep axis
