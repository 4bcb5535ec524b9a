"""Out-of-fold test predictions pooled per (init, model, n, seed, repeat): one prediction table per arm."""
from __future__ import annotations

import pandas as pd

from xfer import track
from xfer.analysis.collect import FOLD_TAGS, load_trials, open_experiment, read_csv_artifact

ARM_KEYS = ("init", "model", "n_per_class", "seed", "repeat")


class PoolingError(ValueError):
    """An image scored twice within one arm: the folds of a repeat overlap, or a repeat was run twice."""


def pooled_predictions(trials: pd.DataFrame, predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per (arm, test image): every fold run's test predictions with its arm keys and fold, so an arm's
    rows are its out-of-fold predictions; raises PoolingError naming an arm that scores an image twice."""
    parts = [predictions[row.run_id].assign(**{k: getattr(row, k) for k in (*ARM_KEYS, "fold", "run_id")})
             for row in trials.itertuples(index=False) if row.run_id in predictions]
    if not parts:
        return pd.DataFrame(columns=[*ARM_KEYS, "fold", "run_id", "index"])
    pooled = pd.concat(parts, ignore_index=True)
    twice = pooled[pooled.duplicated([*ARM_KEYS, "index"], keep=False)]
    if not twice.empty:
        first = twice.iloc[0]
        arm = ", ".join(f"{k}={first[k]}" for k in ARM_KEYS)
        raise PoolingError(f"arm ({arm}): image {first['index']} is scored by runs "
                           f"{sorted(set(twice.loc[twice['index'] == first['index'], 'run_id']))}; "
                           "each image must be tested once per repeat (delete the duplicate runs)")
    return pooled.sort_values([*ARM_KEYS, "index"]).reset_index(drop=True)


def incomplete_arms(pooled: pd.DataFrame) -> pd.DataFrame:
    """Arms that score fewer images than the most complete arm (a fold missing or failed): keys and count."""
    counts = pooled.groupby(list(ARM_KEYS)).size().rename("images").reset_index()
    return counts[counts["images"] < counts["images"].max()].reset_index(drop=True)


def study_pooled_predictions(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """pooled_predictions of every finished trial of an MLflow experiment (its eval/test_predictions.csv)."""
    client, experiment_id = open_experiment(tracking_uri, experiment)
    trials = load_trials(client, experiment_id)
    trials = trials[trials["status"] == "FINISHED"].assign(**{k: trials.get(k, 0) for k in FOLD_TAGS}).fillna(
        {k: 0 for k in FOLD_TAGS})
    predictions = {r: p for r in trials["run_id"]
                   if (p := read_csv_artifact(client, r, track.PREDICTIONS_ARTIFACT)) is not None}
    return pooled_predictions(trials, predictions)
