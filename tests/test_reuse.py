"""Runs are never silently reused: a finished trial is reused only when its reuse key (config that changes
results, the resolved source's identity, fold, subset image ids) matches."""
import dataclasses
import warnings
from pathlib import Path

import mlflow
import pytest
import yaml

from xfer import record, track
from xfer.config import InitConfig, StudyConfig
from xfer.load import parse_study
from xfer.reuse import reuse_key, source_identity
from xfer.stages import plan_stage, train_stage
from xfer.plan import TrialSpec
from xfer.trial import run_trial

ROOT = Path(__file__).resolve().parents[1]
IMAGES = {"train": ["a.png", "b.png"], "val": ["c.png"], "test": ["d.png"]}
AXES = {"model": "cbr_tiny", "n_per_class": 4, "seed": 0}


def tiny_study(tmp_path: Path, **train) -> StudyConfig:
    """Actualmed at 32 px, cbr_tiny, one epoch."""
    raw = yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())
    raw["data"].update(cache_dir=str(tmp_path / "cache"), split={"val_fraction": 0.2, "test_fraction": 0.3, "seed": 0})
    raw["train"] = {"epochs": 1, "batch_size": 8, **train}
    return parse_study(raw, base_dir=ROOT / "experiments")


def test_the_reuse_key_covers_what_changes_a_result_and_nothing_else(tmp_path):
    study = tiny_study(tmp_path)
    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"first")
    init = InitConfig("imagenet", str(weights))
    key = reuse_key(study, init, IMAGES, ROOT, AXES)
    assert reuse_key(dataclasses.replace(study, ray=dataclasses.replace(study.ray, max_concurrent=7)),
                     init, IMAGES, ROOT, AXES) == key, "where trials run does not change them"
    assert reuse_key(dataclasses.replace(study, train=dataclasses.replace(study.train, lr=0.1)),
                     init, IMAGES, ROOT, AXES) != key
    assert reuse_key(study, InitConfig("meanvar", str(weights)), IMAGES, ROOT, AXES) != key
    assert reuse_key(study, init, dict(IMAGES, train=["a.png", "e.png"]), ROOT, AXES) != key
    assert reuse_key(study, init, IMAGES, ROOT, dict(AXES, fold=1, repeat=0)) != key
    weights.write_bytes(b"second")  # the same file name, new weights (a retrained stage, a replaced file)
    assert reuse_key(study, init, IMAGES, ROOT, AXES) != key
    assert source_identity(InitConfig("imagenet", "torchvision:resnet18.IMAGENET1K_V1"), ROOT)["name"] == \
        "torchvision:resnet18.IMAGENET1K_V1"


def write_recipe(folder: Path, epochs: int) -> Path:
    raw = yaml.safe_load((ROOT / "pretrain" / "smoke_natural.yaml").read_text())
    raw["train"]["epochs"] = epochs
    folder.mkdir()
    (folder / "smoke_natural.yaml").write_text(yaml.safe_dump(raw))
    return folder


def trained_stage(folder: Path, epochs: int, uri: str, experiment_id: str) -> str:
    job = plan_stage("smoke_natural", "cbr_tiny", [write_recipe(folder, epochs)])
    return train_stage(job, None, folder / "cache", uri, experiment_id)


@pytest.mark.slow  # ~30 s: two stages and five trials
def test_a_changed_stage_recipe_or_init_source_reruns_trials_and_an_unchanged_study_reuses_them(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = track.ensure_experiment(uri, "reuse")
    study = tiny_study(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one-epoch stages stay at chance
        stage_v1 = trained_stage(tmp_path / "v1", 1, uri, experiment_id)
        stage_v2 = trained_stage(tmp_path / "v2", 2, uri, experiment_id)  # the recipe changed

        def run(study: StudyConfig, init: InitConfig) -> str:
            return run_trial(study, TrialSpec(init, "cbr_tiny", 4, 0), uri, experiment_id, base_dir=ROOT)["run_id"]

        pretrained = InitConfig("imagenet", stage_v1)
        first = {"random": run(study, InitConfig("random")), "imagenet": run(study, pretrained)}
        again = {"random": run(study, InitConfig("random")), "imagenet": run(study, pretrained)}
        assert again == first, "an unchanged study reuses every finished run"
        wider = dataclasses.replace(study, trials=dataclasses.replace(study.trials, n_per_class=(4, 8, "all")))
        assert run(wider, InitConfig("random")) == first["random"], "the n=4 subset did not change"

        assert run(study, InitConfig("imagenet", stage_v2)) != first["imagenet"], "a new stage recipe reruns"
        assert run(study, InitConfig("meanvar", stage_v1, label="imagenet")) != first["imagenet"], \
            "a new strategy under the same label reruns"
        assert run(tiny_study(tmp_path, lr=0.01), InitConfig("random")) != first["random"]
    runs = mlflow.MlflowClient(uri).search_runs([experiment_id], track.kind_filter(record.TRIAL))
    assert len(runs) == 5 and all(r.info.status == "FINISHED" for r in runs)
