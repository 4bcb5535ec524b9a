"""Stage recipes: dependency order, cache keys, cycles."""
from pathlib import Path

import pytest
import yaml

from xfer.stages import StageError, cached_checkpoint, plan_stage

ROOT = Path(__file__).resolve().parents[1]


def write_recipe(folder: Path, name: str, source: str | None = None, epochs: int = 1) -> None:
    raw = yaml.safe_load((ROOT / "pretrain" / "smoke_natural.yaml").read_text())
    raw["stage"] = name
    raw["train"]["epochs"] = epochs
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
