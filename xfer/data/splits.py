"""Patient-level train/val/test splits (fixed, or the folds of a grouped K-fold), the leak check, and nested
n-per-class subsets."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from xfer.config import SplitConfig
from xfer.data.records import Record, warn_skipped

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Record indices of each split (sorted)."""

    train: tuple[int, ...]
    val: tuple[int, ...]
    test: tuple[int, ...]


class PatientLeakError(ValueError):
    """A patient whose images are in two splits."""


class FoldError(ValueError):
    """A cross-validation fold whose test, validation or training part lacks a class."""


def split_for(records: Sequence[Record], split: SplitConfig, fold: Optional[int] = None, repeat: int = 0) -> Split:
    """The fixed split (`split.folds` unset), else fold `fold` of repeat `repeat` of the grouped K-fold (fold
    None: fold 0, e.g. the report's probe images)."""
    if not split.folds:
        return patient_level_split(records, split)
    return fold_splits(records, split, repeat)[fold or 0]


def fold_splits(records: Sequence[Record], split: SplitConfig, repeat: int = 0) -> list[Split]:
    """Patient-level, class-stratified K-fold (sklearn StratifiedGroupKFold, seeded by split.seed + repeat):
    fold k tests its part; validation is `val_fraction` of the other parts' images, by patient.

    Every record is tested in exactly one fold; raises FoldError when a part of some fold lacks a class.
    """
    from sklearn.model_selection import StratifiedGroupKFold  # a second of imports, for cross-validation only

    labels = np.array([r.label for r in records])
    groups = np.array([r.patient_id for r in records])
    folds = StratifiedGroupKFold(n_splits=split.folds, shuffle=True, random_state=split.seed + repeat)
    rng = np.random.default_rng([split.seed, repeat])
    out = []
    for k, (rest, test) in enumerate(folds.split(np.zeros(len(records)), labels, groups)):
        val, train = _split_by_patient(records, sorted(int(i) for i in rest), (split.val_fraction,), rng)
        out.append(Split(tuple(train), tuple(val), tuple(sorted(int(i) for i in test))))
    _check_every_class_in_every_part(out, labels, split, repeat)
    return out


def _check_every_class_in_every_part(folds: list[Split], labels: np.ndarray, split: SplitConfig,
                                     repeat: int) -> None:
    """Raise FoldError naming each fold part without some class (binary AUC needs both in test and validation)."""
    classes = set(labels.tolist())
    lacking = []
    for k, fold in enumerate(folds):
        for name in SPLIT_NAMES:
            missing = classes - set(labels[list(getattr(fold, name))].tolist())
            if missing:
                lacking.append(f"fold {k} {name} has no image of class index {sorted(missing)}")
    if lacking:
        patients = "every class needs at least as many patients as folds, plus some for validation"
        raise FoldError(f"data.split.folds={split.folds} (repeat {repeat}): {'; '.join(lacking)}; {patients} — "
                        "use fewer folds or more data")


def patient_level_split(records: Sequence[Record], split: SplitConfig) -> Split:
    """Stratified by label, grouped by patient, deterministic for `split.seed`.

    Fractions count images; with `predefined_test` the records in that folder are the test set
    and `val_fraction` is taken from the rest (whose patients also in the test folder are dropped).
    """
    rng = np.random.default_rng(split.seed)
    everything = list(range(len(records)))
    if split.predefined_test is None:
        test, val, train = _split_by_patient(records, everything, (split.test_fraction, split.val_fraction), rng)
        return Split(tuple(train), tuple(val), tuple(test))
    test = [i for i in everything if records[i].folder == split.predefined_test]
    if not test:
        folders = sorted({r.folder for r in records})
        raise ValueError(f"split.predefined_test={split.predefined_test!r}: no image is in that folder; "
                         f"folders found: {folders} (only class_folders and npz datasets have folders)")
    test_patients = {records[i].patient_id for i in test}
    rest = [i for i in everything if records[i].folder != split.predefined_test]
    shared = [i for i in rest if records[i].patient_id in test_patients]
    # the same id in two folders may be the same child: keep the published test set, drop from train
    warn_skipped(f"images of {len({records[i].patient_id for i in shared})} patients also in the "
                 f"{split.predefined_test!r} folder", [records[i].path for i in shared], "patient_level_split")
    rest = [i for i in rest if records[i].patient_id not in test_patients]
    val, train = _split_by_patient(records, rest, (split.val_fraction,), rng)
    return Split(tuple(train), tuple(val), tuple(sorted(test)))


def _split_by_patient(records: Sequence[Record], indices: list[int], fractions: tuple[float, ...],
                      rng: np.random.Generator) -> list[list[int]]:
    """Per class, patients (largest first, shuffled among equals, as sklearn's GroupKFold) go one by
    one to the part furthest below its share of images.

    Returns len(fractions) + 1 sorted index lists, the last one (train) taking the remainder. The
    first patients of a class go one to each part (the last part first, then the fractions in order),
    so a class with few patients still trains and, with three or more, is in every part.
    """
    images_of: dict[str, list[int]] = defaultdict(list)
    for i in indices:
        images_of[records[i].patient_id].append(i)
    patients_of_class: dict[int, list[str]] = defaultdict(list)
    for patient in sorted(images_of):
        labels = Counter(records[i].label for i in images_of[patient])
        majority = min(labels, key=lambda label: (-labels[label], label))
        patients_of_class[majority].append(patient)
    shares = [*fractions, 1.0 - sum(fractions)]
    open_parts = [j for j, share in enumerate(shares) if share > 0]
    first_order = [len(fractions)] + [j for j in open_parts if j < len(fractions)]
    parts: list[list[int]] = [[] for _ in shares]
    for label in sorted(patients_of_class):
        shuffled = [patients_of_class[label][j] for j in rng.permutation(len(patients_of_class[label]))]
        patients = sorted(shuffled, key=lambda p: -len(images_of[p]))  # stable: equals stay shuffled
        total = sum(len(images_of[p]) for p in patients)
        counts = [0] * len(shares)
        for k, patient in enumerate(patients):
            part = (first_order[k] if k < len(first_order)
                    else max(open_parts, key=lambda j: (shares[j] * total - counts[j], -j)))
            parts[part].extend(images_of[patient])
            counts[part] += len(images_of[patient])
    return [sorted(part) for part in parts]


def check_no_patient_in_two_splits(split: Split, records: Sequence[Record]) -> None:
    """Raise PatientLeakError naming each patient found in two splits."""
    where: dict[str, str] = {}
    leaks = []
    for name in SPLIT_NAMES:
        for i in getattr(split, name):
            patient = records[i].patient_id
            first = where.setdefault(patient, name)
            if first != name:
                leaks.append(f"patient {patient!r} is in both {first} and {name} (record {i}: {records[i].path})")
    if leaks:
        shown = "\n  ".join(leaks[:10]) + (f"\n  ... and {len(leaks) - 10} more" if len(leaks) > 10 else "")
        raise PatientLeakError(f"{len(leaks)} image(s) leak across splits:\n  {shown}\n"
                               "split with patient_level_split so every patient stays in one split")


def nested_subsets(indices: Sequence[int], labels: Sequence[int], sizes: Sequence[Union[int, str]],
                   seed: int) -> dict[Union[int, str], tuple[int, ...]]:
    """n images per class of `indices` for each n in `sizes` ("all": every index); each smaller
    subset is inside each larger one for the same seed. `labels[i]` is the label of index i."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    indices = sorted(int(i) for i in indices)
    by_class = defaultdict(list)
    for i in indices:
        by_class[int(labels[i])].append(i)
    # one fixed order per class; a subset of n is the first n, so subsets nest
    order = {c: [members[j] for j in rng.permutation(len(members))] for c, members in sorted(by_class.items())}
    subsets: dict[Union[int, str], tuple[int, ...]] = {}
    for size in sizes:
        if size == "all":
            subsets[size] = tuple(indices)
            continue
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"n_per_class must be a positive integer or 'all', got {size!r}")
        short = {c: len(members) for c, members in order.items() if len(members) < size}
        if short:
            raise ValueError(f"n_per_class={size} is more than the training images of class(es) {short} "
                             "(class index: images); use a smaller n or 'all'")
        subsets[size] = tuple(sorted(i for members in order.values() for i in members[:size]))
    return subsets
