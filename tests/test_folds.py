"""Cross-validated trials: patient-level stratified K-fold, validation and nested subsets inside each fold's
training part, fold/repeat grid axes, checks before any trial, and out-of-fold predictions pooled per arm."""
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from xfer.analysis.pooled import PoolingError, incomplete_arms, pooled_predictions
from xfer.config import ConfigError, InitConfig, SplitConfig
from xfer.data import Record, check_no_patient_in_two_splits
from xfer.data.prepare import prepare_data
from xfer.data.splits import fold_splits
from xfer.load import parse_study
from xfer.plan import TrialSpec
from xfer.trial import trial_data
from xfer.plan import evaluation_phase, evaluation_specs

ROOT = Path(__file__).resolve().parents[1]
FOLDS = SplitConfig(val_fraction=0.2, seed=0, folds=4, repeats=2)


def synthetic_records() -> list[Record]:
    """30 patients of class 0 and 20 of class 1, with 1–3 images each (follow-ups)."""
    return [Record(f"/img/{label}_{p}_{k}.png", label, f"c{label}-p{p}", "synthetic")
            for label, patients in ((0, 30), (1, 20)) for p in range(patients) for k in range(1 + p % 3)]


def smoke_study(**split) -> dict:
    raw = yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())
    raw["data"]["split"] = {"val_fraction": 0.2, "seed": 0, **split}
    return raw


def test_no_patient_in_two_folds():
    records = synthetic_records()
    for repeat in range(2):
        folds = fold_splits(records, FOLDS, repeat)
        tested_in = {}
        for k, fold in enumerate(folds):
            check_no_patient_in_two_splits(fold, records)  # train, val and test of one fold
            for i in fold.test:
                assert tested_in.setdefault(records[i].patient_id, k) == k


def test_every_image_is_tested_exactly_once_per_repeat():
    records = synthetic_records()
    for repeat in range(2):
        tested = [i for fold in fold_splits(records, FOLDS, repeat) for i in fold.test]
        assert sorted(tested) == list(range(len(records)))
    assert fold_splits(records, FOLDS, 0) != fold_splits(records, FOLDS, 1), "repeats reshuffle the folds"
    assert fold_splits(records, FOLDS, 1) == fold_splits(records, FOLDS, 1), "and are seeded"


def test_folds_are_stratified_by_class():
    records = synthetic_records()
    share = np.mean([r.label for r in records])
    for fold in fold_splits(records, FOLDS):
        test_share = np.mean([records[i].label for i in fold.test])
        assert abs(test_share - share) < 0.12
        assert set(Counter(records[i].label for i in fold.val)) == {0, 1}


def test_validation_comes_from_the_training_folds_disjoint_by_patient():
    records = synthetic_records()
    for fold in fold_splits(records, FOLDS):
        val_patients = {records[i].patient_id for i in fold.val}
        assert val_patients.isdisjoint(records[i].patient_id for i in fold.train)
        assert val_patients.isdisjoint(records[i].patient_id for i in fold.test)
        assert 0.1 < len(fold.val) / (len(fold.val) + len(fold.train)) < 0.3


def test_nested_subsets_are_drawn_inside_each_folds_training_part(tmp_path):
    raw = smoke_study(folds=3)
    raw["data"]["cache_dir"] = str(tmp_path / "cache")
    study = parse_study(raw, base_dir=ROOT / "experiments")
    tested = []
    for fold in range(3):
        prepared = prepare_data(study.data, ROOT, fold=fold)
        small, large = (trial_data(study, prepared, TrialSpec(InitConfig("random"), "cbr_tiny", n, 0, fold=fold))
                        for n in (4, "all"))
        assert set(small.train_idx) <= set(large.train_idx) == set(prepared.split.train)
        assert Counter(prepared.labels[small.train_idx]) == {0: 4, 1: 4}
        tested += prepared.split.test
    assert sorted(tested) == list(range(len(prepared.records))), "every labelled image is tested once"


def test_a_fold_without_some_class_is_a_config_error_before_any_trial():
    with pytest.raises(ConfigError, match=r"data\.split\.folds=20.*has no image of class"):
        parse_study(smoke_study(folds=20), base_dir=ROOT / "experiments")
    with pytest.raises(ConfigError, match=r"trials\.n_per_class: 12 is more than fold"):
        raw = smoke_study(folds=3)
        raw["trials"]["n_per_class"] = [4, 12]
        parse_study(raw, base_dir=ROOT / "experiments")
    with pytest.raises(ConfigError, match=r"data\.split\.repeats: needs data\.split\.folds"):
        parse_study(smoke_study(repeats=2), base_dir=ROOT / "experiments")


def test_fold_and_repeat_are_grid_axes_and_in_the_trial_key():
    study = parse_study(smoke_study(folds=3, repeats=2), base_dir=ROOT / "experiments")
    specs = [u.specs[0] for u in evaluation_phase(study).units]
    assert {(s.fold, s.repeat) for s in specs} == {(f, r) for f in range(3) for r in range(2)}
    assert len(specs) == 6 * len(list(evaluation_specs(parse_study(smoke_study(), base_dir=ROOT / "experiments"))))
    assert {s.fold for s in evaluation_specs(parse_study(smoke_study(), base_dir=ROOT / "experiments"))} == {None}
    spec = TrialSpec(InitConfig("random"), "cbr_tiny", 4, 1, fold=2, repeat=1)
    assert spec.key == "random|cbr_tiny|n=4|seed=1|fold=2|repeat=1"
    assert spec.tags("s", "d").to_mlflow()["fold"] == "2" and spec.tags("s", "d").to_mlflow()["repeat"] == "1"
    assert TrialSpec(InitConfig("random"), "cbr_tiny", 4, 1).key == "random|cbr_tiny|n=4|seed=1"


def fold_predictions(images: list[int], seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.random(len(images))
    return pd.DataFrame({"index": images, "patient_id": [f"p{i}" for i in images], "label": [i % 2 for i in images],
                         "prob_normal": 1 - p, "prob_covid": p})


def test_out_of_fold_predictions_pool_into_one_table_per_arm():
    folds = [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    trials = pd.DataFrame([{"run_id": f"{init}{k}", "init": init, "model": "cbr_tiny", "n_per_class": "4",
                            "seed": 0, "repeat": 0, "fold": k} for init in ("random", "imagenet") for k in range(3)])
    predictions = {f"{init}{k}": fold_predictions(images, k) for init in ("random", "imagenet")
                   for k, images in enumerate(folds)}
    pooled = pooled_predictions(trials, predictions)
    for _, arm in pooled.groupby("init"):
        assert sorted(arm["index"]) == list(range(9)) and set(arm["fold"]) == {0, 1, 2}
    assert incomplete_arms(pooled).empty
    del predictions["imagenet2"]
    assert incomplete_arms(pooled_predictions(trials, predictions))["init"].tolist() == ["imagenet"]
    predictions["imagenet2"] = fold_predictions(folds[1], 2)  # a fold scoring images another fold scored
    with pytest.raises(PoolingError, match="init=imagenet.*tested once per repeat"):
        pooled_predictions(trials, predictions)
