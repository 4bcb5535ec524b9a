"""Matching trials into paired contrasts: per matched key, trial values or test-image AUC influences.

An arm is the trials of one (init, model, n, seed[, repeat]); with cross-validation its folds' out-of-fold
predictions are pooled, so every arm scores the same labelled images once. A contrast is a weighted sum of arms
(a − b, or (a − b at small n) − (a − b at large n)) matched on keys such as model, n and seed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from xfer.analysis.pooled import pool_runs, pooled_auc_influence
from xfer.analysis.stats import ImageCell
from xfer.config import positive_index
from xfer.record import prob_classes

CLUSTER_KEYS = ("seed", "repeat")  # what is resampled besides test images (those present)
Term = tuple[pd.Series, float]  # (mask over trials, weight)


def swept_columns(trials: pd.DataFrame) -> list[str]:
    """The `param.train.*` columns whose value differs between trials of one (init, model, n) cell: the study's
    sweep axes. A value fixed per arm (an arm's own learning rate) or per cell (a tuning phase's recipe) is part of
    the arm and never splits a comparison."""
    cell = [c for c in ("init", "model", "n_per_class") if c in trials]

    def swept(column: str) -> bool:
        groups = trials.groupby(cell)[column] if cell else [(None, trials[column])]
        return any(values.nunique(dropna=True) > 1 for _, values in groups)

    return sorted(c for c in trials.columns if c.startswith("param.train.") and swept(c))


def present(trials: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """The keys that are columns of `trials`, in order (repeat and fold exist only in cross-validated studies),
    then the sweep axes: trials are only ever matched or pooled with trials of the same swept values."""
    return [k for k in keys if k in trials] + [c for c in swept_columns(trials) if c not in keys]


def matched(trials: pd.DataFrame, terms: Sequence[Term], keys: Sequence[str]) -> list[tuple[dict, list[list[str]]]]:
    """For each key value found in every term: (key values, the run ids of each term's arm)."""
    keys = present(trials, keys)
    per_term = []
    for mask, _ in terms:
        arms: dict[tuple, list[str]] = {}
        for run_id, *key in trials.loc[mask, ["run_id", *keys]].itertuples(index=False):
            arms.setdefault(tuple(key), []).append(run_id)
        per_term.append(arms)
    common = sorted(set.intersection(*(set(t) for t in per_term)), key=str) if per_term else []
    return [(dict(zip(keys, key)), [t[key] for t in per_term]) for key in common]


def value_contrasts(trials: pd.DataFrame, column: str, terms: Sequence[Term],
                    keys: Sequence[str]) -> tuple[np.ndarray, list]:
    """(contrast values, their seed clusters): Σ weight × mean `column` of each arm, per matched key."""
    if column not in trials:
        return np.array([]), []
    values = trials.set_index("run_id")[column]
    out, clusters = [], []
    for key, runs in matched(trials, terms, keys):
        out.append(sum(w * values.loc[r].astype(float).mean() for (_, w), r in zip(terms, runs)))
        clusters.append(tuple(key.get(k) for k in CLUSTER_KEYS if k in key))
    return np.array(out, dtype=float), clusters


@dataclass
class ImageScores:
    """The trials' test predictions: per arm (pooled folds) its AUC and per-image DeLong influences."""

    predictions: dict[str, pd.DataFrame]  # run_id → eval/test_predictions.csv (index, patient_id, label, prob_*)
    positive: int  # column of the positive class (binary AUC); macro one-vs-rest above two classes
    images: pd.DataFrame = field(init=False)  # index image id (sorted); patient, label
    _arms: dict = field(init=False, default_factory=dict)

    def __post_init__(self):
        rows = pd.concat([p[["index", "patient_id", "label"]] for p in self.predictions.values()])
        self.images = (rows.drop_duplicates("index").set_index("index")
                       .rename(columns={"patient_id": "patient"}).sort_index())

    def arm(self, run_ids: Sequence[str]) -> tuple[float, np.ndarray] | None:
        """AUC and influence (aligned to `images`, 0 where unscored) of the pooled predictions of these runs;
        None if any run has no predictions."""
        key = tuple(sorted(run_ids))
        if key not in self._arms:
            if not all(r in self.predictions for r in key):
                return None
            pooled = pool_runs(self.predictions, key)
            auc, influence = pooled_auc_influence(pooled, self.positive)
            full = np.zeros(len(self.images))
            full[np.searchsorted(self.images.index.to_numpy(), pooled["index"].to_numpy())] = influence
            self._arms[key] = (auc, full)
        return self._arms[key]

    def cells(self, trials: pd.DataFrame, terms: Sequence[Term], keys: Sequence[str]) -> list[ImageCell]:
        """One ImageCell per matched key whose arms all have predictions."""
        out = []
        for key, runs in matched(trials, terms, keys):
            arms = [self.arm(r) for r in runs]
            if any(a is None or np.isnan(a[0]) for a in arms):
                continue
            estimate = sum(w * a[0] for (_, w), a in zip(terms, arms))
            influence = sum(w * a[1] for (_, w), a in zip(terms, arms))
            out.append(ImageCell(tuple(key.get(k) for k in CLUSTER_KEYS if k in key), float(estimate), influence))
        return out


def positive_class(trials: pd.DataFrame, classes: Sequence[str]) -> int:
    """The study's positive class as its trials logged it (param data.positive_class), else the last class."""
    named = trials.get("param.data.positive_class", pd.Series(dtype=str)).dropna()
    return positive_index(tuple(classes), named.iloc[0] if len(named) else None)


def image_scores(trials: pd.DataFrame, predictions: dict[str, pd.DataFrame] | None) -> ImageScores | None:
    """ImageScores of the trials that logged predictions (classes from the prob_ columns); None without any."""
    predictions = {r: p for r, p in (predictions or {}).items() if r in set(trials["run_id"])}
    if not predictions:
        return None
    classes = prob_classes(next(iter(predictions.values())))
    return ImageScores(predictions, positive_class(trials, classes))
