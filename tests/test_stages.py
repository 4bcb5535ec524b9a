"""Stage recipes: dependency order, cache keys, cycles."""
import json
import warnings
from pathlib import Path

import pytest
import yaml

from xfer.checkpoint import CheckpointMeta, save_checkpoint
from xfer.models import build_model
from xfer.stages import (StageError, StageNotLearnedWarning, cached_checkpoint, ensure_stages, file_sha256, plan_stage,
                         stage_dir)

ROOT = Path(__file__).resolve().parents[1]


def write_recipe(folder: Path, name: str, source: str | None = None, epochs: int = 1, batch_size: int = 64) -> None:
    raw = yaml.safe_load((ROOT / "pretrain" / "smoke_natural.yaml").read_text())
    raw["stage"] = name
    raw["train"]["epochs"] = epochs
    raw["train"]["batch_size"] = batch_size
    raw["init"] = {"strategy": "imagenet", "source": source} if source else {"strategy": "random"}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(raw))


def test_dependencies_are_planned_first_and_keys_chain(tmp_path):
    write_recipe(tmp_path, "base")
    write_recipe(tmp_path, "middle", "stage:base")
    write_recipe(tmp_path, "top", "stage:middle")
    top = plan_stage("top", "cbr_tiny", [tmp_path])
    chain = [top.config.stage, top.depends_on.config.stage, top.depends_on.depends_on.config.stage]
    assert chain == ["top", "middle", "base"]
    assert top.config.model == top.depends_on.depends_on.config.model == "cbr_tiny"
    before = top.key
    write_recipe(tmp_path, "base", epochs=2)  # a change two stages down invalidates every dependant
    after = plan_stage("top", "cbr_tiny", [tmp_path])
    assert after.key != before and after.depends_on.key != top.depends_on.key
    assert plan_stage("top", "cbr_small", [tmp_path]).key != after.key  # the model is part of the key


def test_cycle_is_named(tmp_path):
    write_recipe(tmp_path, "a", "stage:b")
    write_recipe(tmp_path, "b", "stage:a")
    with pytest.raises(StageError, match="cycle: a -> b -> a"):
        plan_stage("a", None, [tmp_path])


def test_missing_recipe_names_the_folders(tmp_path):
    with pytest.raises(StageError, match=f"no recipe nowhere.yaml in {tmp_path}"):
        plan_stage("nowhere", None, [tmp_path])


def test_nothing_cached_for_a_new_key(tmp_path):
    write_recipe(tmp_path, "base")
    assert cached_checkpoint(plan_stage("base", None, [tmp_path]), tmp_path / "cache") is None


def write_cached_stage(job, cache_root: Path, test_auc: float) -> None:
    folder = stage_dir(job, cache_root)
    save_checkpoint(folder / "checkpoint.pt", build_model("cbr_tiny", 2, 1).state_dict(), CheckpointMeta("cbr_tiny"))
    (folder / "manifest.json").write_text(json.dumps(
        {"stage": job.config.stage, "model": job.config.model, "epochs": 4, "final_metrics": {"test_auc": test_auc},
         "checkpoint_sha256": file_sha256(folder / "checkpoint.pt")}))


def test_a_stage_at_chance_is_reported_when_used(tmp_path):
    """natural-vgg16 once ended at chance (AUC 0.5) and its trials silently started from a broken source."""
    write_recipe(tmp_path, "good")
    write_recipe(tmp_path, "dead", epochs=2)
    good, dead = plan_stage("good", None, [tmp_path]), plan_stage("dead", None, [tmp_path])
    write_cached_stage(good, tmp_path / "cache", 0.91)
    write_cached_stage(dead, tmp_path / "cache", 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StageNotLearnedWarning)
        ensure_stages([good], tmp_path / "cache", "unused", "0")
    with pytest.warns(StageNotLearnedWarning, match=r"stage dead-cbr_tiny did not learn: held-out AUC 0.500"):
        paths = ensure_stages([good, dead], tmp_path / "cache", "unused", "0")
    assert paths[dead.key] == str(stage_dir(dead, tmp_path / "cache") / "checkpoint.pt")


def test_a_long_stage_epoch_prints_batches_images_per_second_and_its_eta_and_a_short_one_prints_none(
        tmp_path, monkeypatch, capsys):
    from xfer import console, track
    from xfer.stages import train_stage

    quick = console.StageProgress("quick", 1)
    for done in range(5):  # an epoch well under PROGRESS_AFTER_S: only the epoch line, later
        quick.batch(1, done, 5, done * 64)
    assert capsys.readouterr().out == ""

    monkeypatch.chdir(ROOT)  # the recipe's data root is relative to the repository
    monkeypatch.setattr(console, "PROGRESS_AFTER_S", 0.0)  # every batch of the epoch counts as "long"
    monkeypatch.setattr(console, "PROGRESS_EVERY_S", 0.0)
    write_recipe(tmp_path, "natural", batch_size=32)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one tiny epoch may end at chance
        train_stage(plan_stage("natural", None, [tmp_path]), None, tmp_path / "cache", uri,
                    track.ensure_experiment(uri, "stages"))
    lines = capsys.readouterr().out.splitlines()
    batches = [line for line in lines if " batch " in line]
    total = int(batches[0].split(" batch ")[1].split()[0].split("/")[1])
    assert total == 10  # 320 training images (400 of cifar10-subset's train folder less 20% validation) / 32
    assert [int(line.split(" batch ")[1].split("/")[0]) for line in batches] == list(range(1, total))
    assert all(line.startswith("[xfer] stage natural-cbr_tiny epoch 1/1  batch ") and " images/s  epoch ETA " in line
               for line in batches)
    assert lines.index(batches[-1]) < next(i for i, line in enumerate(lines) if "epoch 1/1  loss" in line)
