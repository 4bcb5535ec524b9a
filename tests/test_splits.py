"""Patient-level splits, the leak check and nested n-per-class subsets, on hand-made records."""
from collections import Counter

import numpy as np
import pytest

from xfer.config import SplitConfig
from xfer.data import PatientLeakError, Record, Split, check_no_patient_in_two_splits, nested_subsets, \
    patient_level_split
from xfer.data.records import SkippedImagesWarning


def synthetic_records() -> list[Record]:
    """40 patients per class; patient 0 of each class has 30 follow-up images, the others 1–3."""
    records = []
    for label in (0, 1):
        for p in range(40):
            for k in range(30 if p == 0 else 1 + p % 3):
                records.append(Record(f"/img/{label}_{p}_{k}.png", label, f"c{label}-p{p}", "synthetic"))
    return records


def test_patient_with_many_images_stays_in_one_split():
    records = synthetic_records()
    split = patient_level_split(records, SplitConfig(val_fraction=0.2, test_fraction=0.25, seed=3))
    check_no_patient_in_two_splits(split, records)
    for patient in ("c0-p0", "c1-p0"):
        homes = {name for name in ("train", "val", "test")
                 for i in getattr(split, name) if records[i].patient_id == patient}
        assert len(homes) == 1
    assert sorted(split.train + split.val + split.test) == list(range(len(records)))


def test_split_is_stratified_and_near_the_fractions():
    records = synthetic_records()
    split = patient_level_split(records, SplitConfig(val_fraction=0.2, test_fraction=0.25, seed=0))
    for label in (0, 1):
        total = sum(r.label == label for r in records)
        for part, fraction in ((split.test, 0.25), (split.val, 0.2)):
            count = sum(records[i].label == label for i in part)
            assert abs(count / total - fraction) < 0.1  # by images, though grouped by patient


def test_split_is_deterministic_for_a_seed():
    records = synthetic_records()
    config = SplitConfig(seed=7)
    assert patient_level_split(records, config) == patient_level_split(records, config)
    assert patient_level_split(records, config) != patient_level_split(records, SplitConfig(seed=8))


def test_tiny_class_keeps_a_training_patient():
    records = [Record(f"/a{i}", 0, f"a{i}", "s") for i in range(20)] + [Record("/b0", 1, "b0", "s"),
                                                                          Record("/b1", 1, "b1", "s")]
    split = patient_level_split(records, SplitConfig())
    assert {records[i].label for i in split.train} == {0, 1}
    assert {records[i].label for i in split.test} == {0, 1}


def test_predefined_test_folder_and_shared_ids_dropped_from_train():
    records = ([Record(f"/train/{p}_{k}", p % 2, f"person{p}", "k", "train") for p in range(30) for k in range(2)]
               + [Record(f"/test/{p}", p % 2, f"person{p}", "k", "test") for p in range(25, 35)])
    with pytest.warns(SkippedImagesWarning, match="10 images of 5 patients"):
        split = patient_level_split(records, SplitConfig(val_fraction=0.2, predefined_test="test"))
    assert [records[i].folder for i in split.test] == ["test"] * 10
    assert all(records[i].folder == "train" for i in split.train + split.val)
    check_no_patient_in_two_splits(split, records)
    with pytest.raises(ValueError, match="predefined_test='holdout'.*'test', 'train'"):
        patient_level_split(records, SplitConfig(predefined_test="holdout"))


def test_leak_error_names_the_patient_and_both_splits():
    records = [Record("/a", 0, "anna", "s"), Record("/b", 1, "bob", "s"), Record("/a2", 0, "anna", "s")]
    with pytest.raises(PatientLeakError, match=r"patient 'anna' is in both train and test.*/a2"):
        check_no_patient_in_two_splits(Split(train=(0,), val=(1,), test=(2,)), records)
    check_no_patient_in_two_splits(Split(train=(0, 2), val=(1,), test=()), records)


def test_nested_subsets_are_n_per_class_and_nested():
    labels = np.array([i % 3 for i in range(90)])
    train = [i for i in range(90) if i % 5]  # 72 indices, 24 per class
    subsets = nested_subsets(train, labels, (2, 5, 20, "all"), seed=1)
    for n in (2, 5, 20):
        assert Counter(labels[i] for i in subsets[n]) == {0: n, 1: n, 2: n}
        assert set(subsets[n]) <= set(train)
    assert set(subsets[2]) <= set(subsets[5]) <= set(subsets[20]) <= set(subsets["all"]) == set(train)
    assert nested_subsets(train, labels, (5,), seed=1)[5] == subsets[5]  # same subset whatever else is asked
    assert nested_subsets(train, labels, (5,), seed=2)[5] != subsets[5]


def test_nested_subsets_larger_than_a_class_is_an_error():
    with pytest.raises(ValueError, match="n_per_class=30.*'all'"):
        nested_subsets(range(20), [0, 1] * 10, (30,), seed=0)
