"""The one pooler of out-of-fold test predictions: an arm's (init, model, n, seed, repeat) fold runs → one table."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from xfer.analysis.delong import auc_influence
from xfer.record import probabilities

ARM_KEYS = ("init", "model", "n_per_class", "seed", "repeat")


class PoolingError(ValueError):
    """An image scored twice within one arm: the folds of a repeat overlap, or a repeat was run twice."""


def pool_runs(predictions: dict[str, pd.DataFrame], run_ids: Sequence[str], arm: str = "arm") -> pd.DataFrame:
    """The runs' test predictions stacked (with their run_id), sorted by image; raises PoolingError naming `arm`
    and the runs when an image is scored twice."""
    pooled = pd.concat([predictions[r].assign(run_id=r) for r in run_ids], ignore_index=True)
    twice = pooled[pooled.duplicated("index", keep=False)]
    if not twice.empty:
        image = twice["index"].iloc[0]
        raise PoolingError(f"{arm}: image {image} is scored by runs "
                           f"{sorted(set(twice.loc[twice['index'] == image, 'run_id']))}; each image must be tested "
                           "once per repeat (delete the duplicate runs, or tell apart the arms they belong to)")
    return pooled.sort_values("index").reset_index(drop=True)


def describe_arm(keys: Sequence[str], values: Sequence) -> str:
    return "arm (" + ", ".join(f"{k}={v}" for k, v in zip(keys, values)) + ")"


def pooled_auc_influence(pooled: pd.DataFrame, positive: int) -> tuple[float, np.ndarray]:
    """The AUC of pooled predictions as trials report it (positive class; macro one-vs-rest above two classes)
    and each row's DeLong influence."""
    probs = probabilities(pooled)
    return auc_influence(pooled["label"].to_numpy(), probs, positive)


def pooled_predictions(trials: pd.DataFrame, predictions: dict[str, pd.DataFrame],
                       keys: Sequence[str] = ARM_KEYS) -> pd.DataFrame:
    """One row per (arm, test image): every fold run's test predictions with its arm keys and fold, so an arm's
    rows are its out-of-fold predictions; raises PoolingError naming an arm that scores an image twice."""
    keys = [k for k in keys if k in trials]
    scored = trials[trials["run_id"].isin(set(predictions))]
    if scored.empty:
        return pd.DataFrame(columns=[*keys, "fold", "run_id", "index"])
    fold = scored.set_index("run_id")["fold"] if "fold" in scored else pd.Series(0, index=scored["run_id"])
    parts = [pool_runs(predictions, list(g["run_id"]), describe_arm(keys, values)).assign(**dict(zip(keys, values)))
             for values, g in scored.groupby(keys, sort=False)]
    pooled = pd.concat(parts, ignore_index=True)
    pooled["fold"] = pooled["run_id"].map(fold).to_numpy()
    return pooled.sort_values([*keys, "index"]).reset_index(drop=True)


def arm_aucs(trials: pd.DataFrame, predictions: dict[str, pd.DataFrame], positive: int,
             keys: Sequence[str]) -> pd.Series:
    """Per arm (a value of `keys`), the AUC of its runs' pooled predictions; NaN for an arm with a run lacking them."""
    out = {}
    for values, g in trials.groupby(list(keys), dropna=False):
        runs = list(g["run_id"])
        out[values] = (pooled_auc_influence(pool_runs(predictions, runs, describe_arm(keys, values)), positive)[0]
                       if all(r in predictions for r in runs) else np.nan)
    return pd.Series(out, dtype=float).rename_axis(list(keys))


def incomplete_arms(pooled: pd.DataFrame) -> pd.DataFrame:
    """Arms that score fewer images than the most complete arm (a fold missing or failed): keys and count."""
    keys = [k for k in ARM_KEYS if k in pooled]
    counts = pooled.groupby(keys).size().rename("images").reset_index()
    return counts[counts["images"] < counts["images"].max()].reset_index(drop=True)
