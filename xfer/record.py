"""A trial run as MLflow keeps it: its tags, param columns, predictions table and artifact paths, versioned.

The one writer is `xfer.trial`; every reader (analysis, report, predict) goes through these names. Runs logged
before the record carried a version read as version 1: the same layout, so today's studies stay readable.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

RECORD_VERSION = 2
VERSION_TAG = "xfer.record_version"

# the tags analysis finds trial runs by (the kind/study/key tag names are shared with stage and study runs)
KIND_TAG = "xfer.kind"
STUDY_TAG = "xfer.study"
TRIAL_KEY_TAG = "xfer.trial_key"
STUDY_HASH_TAG = "xfer.study_hash"
PHASE_TAG = "xfer.phase"  # "evaluation" (the verdicts' trials) or "tuning" (recipe search: never in a verdict)
OUTCOME_TAG = "xfer.outcome"  # "stopped_early": a scheduler (ASHA) stopped the trial; FINISHED, but not a result
STOPPED_EARLY = "stopped_early"
TRIAL = "trial"
EVALUATION, TUNING = "evaluation", "tuning"

# MLflow's search filter for the trial runs a study is judged by (tuning trials choose recipes, nothing else)
EVALUATION_TRIALS = f"tags.`{KIND_TAG}` = '{TRIAL}' and tags.`{PHASE_TAG}` IS NULL"

# artifact paths inside a trial run
CHECKPOINT_ARTIFACT = "checkpoint/best.pt"
PREDICTIONS_ARTIFACT = "eval/test_predictions.csv"
CONFUSION_ARTIFACT = "eval/confusion_matrix.json"
CONFUSION_FIGURE_ARTIFACT = "eval/confusion_matrix.png"
EXTERNAL_PREDICTIONS_ARTIFACT = "eval/external/{name}_predictions.csv"

PROB_PREFIX = "prob_"  # predictions tables: one probability column per class
PARAM_PREFIX = "param."  # analysis frames: one column per logged param


class RecordVersionError(ValueError):
    """A trial run written by a newer xfer than this one."""


@dataclass(frozen=True)
class TrialTags:
    """The tags of one trial run: who it belongs to and the axes that place it in the study."""

    study: str
    key: str
    init: str
    strategy: str
    model: str
    n_per_class: str
    seed: int
    dataset: str = ""
    fold: Optional[int] = None  # cross-validated studies: the test fold …
    repeat: Optional[int] = None  # … and its K-fold repeat
    sweep: tuple[tuple[str, str], ...] = ()  # swept `train.*` values, as logged
    phase: str = EVALUATION
    version: int = RECORD_VERSION

    AXES = ("init", "strategy", "model", "n_per_class", "seed", "dataset")
    FOLDS = ("fold", "repeat")

    def to_mlflow(self) -> dict[str, str]:
        tags = {KIND_TAG: TRIAL, STUDY_TAG: self.study, TRIAL_KEY_TAG: self.key, VERSION_TAG: str(self.version),
                **{axis: str(getattr(self, axis)) for axis in self.AXES}, **dict(self.sweep)}
        tags.update({name: str(getattr(self, name)) for name in self.FOLDS if getattr(self, name) is not None})
        if self.phase != EVALUATION:
            tags[PHASE_TAG] = self.phase
        return tags

    @classmethod
    def from_mlflow(cls, run_id: str, tags: Mapping[str, str]) -> "TrialTags":
        """The tags of a logged trial run; a run missing an axis tag or from a newer xfer is refused by name."""
        missing = [t for t in cls.AXES[:5] if t not in tags]
        if missing:
            raise ValueError(f"trial run {run_id} lacks tags {missing}; it was not logged by xfer's tracker")
        version = int(tags.get(VERSION_TAG, 1))
        if version > RECORD_VERSION:
            raise RecordVersionError(f"trial run {run_id} has record version {version}; this xfer reads up to "
                                     f"{RECORD_VERSION}: upgrade xfer to read it")
        folds = {name: int(tags[name]) for name in cls.FOLDS if name in tags}
        return cls(study=tags.get(STUDY_TAG, ""), key=tags.get(TRIAL_KEY_TAG, ""), init=tags["init"],
                   strategy=tags["strategy"], model=tags["model"], n_per_class=tags["n_per_class"],
                   seed=int(tags["seed"]), dataset=tags.get("dataset", ""), **folds,
                   sweep=tuple(sorted((k, v) for k, v in tags.items() if k.startswith("train."))),
                   phase=tags.get(PHASE_TAG, EVALUATION), version=version)

    def row(self) -> dict[str, Any]:
        """The analysis frame's columns for this trial (fold/repeat only where cross-validated)."""
        row = {"trial_key": self.key, **{axis: getattr(self, axis) for axis in self.AXES}}
        row.update({name: getattr(self, name) for name in self.FOLDS if getattr(self, name) is not None})
        return row


def param_column(name: str) -> str:
    """The analysis frame's column of a logged param (`n_test` → `param.n_test`)."""
    return PARAM_PREFIX + name


def prob_column(class_name: str) -> str:
    return PROB_PREFIX + class_name


def prob_classes(frame: pd.DataFrame) -> tuple[str, ...]:
    """The classes of a predictions table, in column order."""
    return tuple(c[len(PROB_PREFIX):] for c in frame.columns if c.startswith(PROB_PREFIX))


def probabilities(frame: pd.DataFrame) -> np.ndarray:
    """(images, classes) probabilities of a predictions table."""
    return frame[[prob_column(c) for c in prob_classes(frame)]].to_numpy(dtype=float)


def predictions_table(columns: Mapping[str, Sequence], probs: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """A predictions table: the identifying columns given (index, file/path, patient_id, label), then one
    probability column per class."""
    return pd.DataFrame({**columns, **{prob_column(c): probs[:, k] for k, c in enumerate(classes)}})


def write_predictions(table: pd.DataFrame, path) -> None:
    """Exact float32 probabilities (9 significant digits): rounding would tie confident images."""
    table.to_csv(path, index=False, float_format="%.9g")
