"""The study plan: one source of trial keys and counts; a resumed state or Tune experiment is used only unchanged."""
import dataclasses
import warnings

import pytest
import yaml

from helpers import ROOT
from xfer.config import InitConfig
from xfer.load import parse_study
from xfer.paths import CorruptCacheWarning
from xfer.plan import TrialSpec, evaluation_phase, trial_count
from xfer.trial import keyed_resume


def smoke():
    return parse_study(yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text()), base_dir=ROOT / "experiments")


def test_the_plan_counts_and_names_every_trial_of_the_grid_once():
    study = smoke()
    phase = evaluation_phase(study)
    keys = [u.key for u in phase.units]
    t = study.trials
    assert len(keys) == len(set(keys)) == trial_count(study) == phase.trials == \
        len(t.init) * len(t.models) * len(t.n_per_class) * len(t.seeds) * study.data.split.folds
    assert all("/" not in u.name and ":" not in u.name for u in phase.units)


def test_a_tuned_recipe_reaches_its_cell_but_not_the_trial_key():
    study = smoke()
    cell = (study.trials.init[0].name, study.trials.models[0], study.trials.n_per_class[0])
    phase = evaluation_phase(study, {cell: (("train.lr", 0.01),)})
    tuned = [s for u in phase.units for s in u.specs if s.cell == cell]
    assert tuned and all(s.train_values == (("train.lr", 0.01),) for s in tuned)
    assert all(s.recipe == () for u in phase.units for s in u.specs if s.cell != cell)
    assert [u.key for u in phase.units] == [u.key for u in evaluation_phase(study).units]
    assert phase.fingerprint(study) != evaluation_phase(study).fingerprint(study), "resume must see the new recipe"


def test_an_edited_setting_or_an_added_seed_changes_what_a_resume_must_match():
    study = smoke()
    base = evaluation_phase(study).fingerprint(study)
    edited = dataclasses.replace(study, train=dataclasses.replace(study.train, lr=study.train.lr * 2))
    seeded = dataclasses.replace(study, trials=dataclasses.replace(study.trials, seeds=(0, 1)))
    assert evaluation_phase(edited).fingerprint(edited) != base
    assert evaluation_phase(seeded).fingerprint(seeded) != base
    assert evaluation_phase(study).fingerprint(study) == base


def test_a_saved_state_is_used_only_by_its_own_trial_under_its_own_settings():
    saved = {}
    _, hook = keyed_resume(None, lambda epoch, metrics, state: saved.update(state()), "k", "reuse-a")
    hook(5, {}, lambda: {"epoch": 5})
    assert saved == {"epoch": 5, "trial_key": "k", "reuse_key": "reuse-a"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert keyed_resume(saved, None, "k", "reuse-a")[0] == saved
    with pytest.warns(CorruptCacheWarning, match="starts afresh"):
        assert keyed_resume(saved, None, "k", "reuse-b")[0] is None  # the study was edited: lr, data, …
    with pytest.warns(CorruptCacheWarning):
        assert keyed_resume(saved, None, "other", "reuse-a")[0] is None


def test_trial_keys_stay_as_logged_by_earlier_versions():
    assert TrialSpec(InitConfig("random"), "cbr_tiny", 4, 1, fold=2, repeat=1).key == \
        "random|cbr_tiny|n=4|seed=1|fold=2|repeat=1"
    assert TrialSpec(InitConfig("imagenet"), "cbr_tiny", "all", 0, sweep=(("train.lr", 0.01),)).key == \
        "imagenet|cbr_tiny|n=all|seed=0|train.lr=0.01"


def test_each_n_may_have_its_own_seeds_and_the_plan_runs_exactly_those():
    raw = yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())
    raw["trials"]["seeds"] = {4: 3, "all": [7]}
    study = parse_study(raw, base_dir=ROOT / "experiments")
    specs = [s for u in evaluation_phase(study).units for s in u.specs]
    assert {s.seed for s in specs if s.n_per_class == 4} == {0, 1, 2}
    assert {s.seed for s in specs if s.n_per_class == "all"} == {7}
    assert trial_count(study) == len(study.trials.init) * (3 + 1) * study.data.split.folds
    assert study.trials.all_seeds == (0, 1, 2, 7)


def test_seeds_per_n_are_checked_against_the_sizes():
    from xfer.config import ConfigError

    raw = yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())
    raw["trials"]["seeds"] = {4: 0, 20: 3}
    with pytest.raises(ConfigError) as caught:
        parse_study(raw, base_dir=ROOT / "experiments")
    text = str(caught.value)
    assert "trials.seeds.20: not a size of trials.n_per_class" in text
    assert "trials.seeds: no seeds for n = all" in text and "trials.seeds.4: give a count >= 1" in text
