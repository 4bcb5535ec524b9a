"""Trials and stages share one initial-model builder and one train-and-test function."""
import warnings
from pathlib import Path

import torch

from xfer import track
from xfer.checkpoint import CheckpointMeta, read_checkpoint, read_trial_checkpoint, save_checkpoint
from xfer.config import InitConfig, StageConfig
from xfer.load import parse_study
from xfer.models import build_model
from xfer.pipeline import initial_model, rebuild_initial_model, weights_hash
from xfer.stages import StageJob, train_stage
from xfer.plan import TrialSpec
from xfer.trial import run_trial

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
KERMANY = {"name": "kermany", "layout": "label_csv", "root": str(DATA / "kermany-pneumonia-sample"),
           "metadata": "labels.csv", "label_column": "label", "patient_column": "patient_id"}


def test_a_trial_and_a_stage_of_the_same_config_train_the_same_weights(tmp_path):
    study = parse_study({"name": "same", "data": {"datasets": [KERMANY], "classes": ["NORMAL", "PNEUMONIA"],
                                                  "image_size": 32, "cache_dir": str(tmp_path / "cache")},
                         "trials": {"init": [{"strategy": "random"}], "models": ["cbr_tiny"], "seeds": [0]},
                         "train": {"epochs": 1, "batch_size": 16}})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = track.ensure_experiment(uri, "same")
    trial = run_trial(study, TrialSpec(InitConfig("random"), "cbr_tiny", "all", 0), uri, experiment_id)
    stage = StageJob(StageConfig("same", study.data, "cbr_tiny", InitConfig("random"), study.train), None, "k")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch may stay at chance
        stage_path = train_stage(stage, None, tmp_path / "cache", uri, experiment_id)

    trial_checkpoint = read_trial_checkpoint(trial["run_id"], uri)
    stage_checkpoint = read_checkpoint(stage_path)
    assert trial_checkpoint.state_dict.keys() == stage_checkpoint.state_dict.keys()
    for key, value in trial_checkpoint.state_dict.items():
        assert torch.equal(value, stage_checkpoint.state_dict[key]), key
    assert stage_checkpoint.meta.stage == "same" and trial_checkpoint.meta.init == "random"
    logged = track.client(uri).get_run(trial["run_id"]).data.params["init.weights_hash"]
    assert logged == weights_hash(rebuild_initial_model(trial_checkpoint.meta))

    initial = rebuild_initial_model(trial_checkpoint.meta)  # the checkpoint's own record rebuilds its start
    torch.manual_seed(0)
    fresh = build_model("cbr_tiny", 2, 1)
    assert all(torch.equal(initial.state_dict()[k], v) for k, v in fresh.state_dict().items())


def test_identical_initial_weights_hash_alike_and_a_stage_source_differs_from_random(tmp_path):
    torch.manual_seed(123)
    source = build_model("cbr_tiny", 10, 3)
    path = save_checkpoint(tmp_path / "natural.pt", source.state_dict(),
                           CheckpointMeta(normalization="imagenet", in_channels=3))
    random_a, _ = initial_model("cbr_tiny", 2, 1, InitConfig("random"), seed=0)
    random_b, _ = initial_model("cbr_tiny", 2, 1, InitConfig("random", label="random_again"), seed=0)
    staged, _ = initial_model("cbr_tiny", 2, 1, InitConfig("imagenet", source=str(path)), seed=0)
    assert weights_hash(random_a) == weights_hash(random_b)
    assert weights_hash(random_a) != weights_hash(staged)
    assert weights_hash(random_a) != weights_hash(initial_model("cbr_tiny", 2, 1, InitConfig("random"), seed=1)[0])
