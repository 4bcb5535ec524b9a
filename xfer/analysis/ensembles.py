"""Average and validation-weighted ensembles of the best trial of each strategy × model, on the shared test split."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xfer.analysis.collect import n_order
from xfer.metrics import classification_metrics
from xfer.record import prob_column

REPORTED = ("test_auc", "test_accuracy", "test_sensitivity", "test_specificity")


def best_members(trials: pd.DataFrame) -> pd.DataFrame:
    """Per n_per_class, the trial with the best validation AUC of each (init, model)."""
    ranked = trials.sort_values("best_val_auc", ascending=False)
    return ranked.drop_duplicates(["n_per_class", "init", "model"]).reset_index(drop=True)


def val_weights(val_aucs: np.ndarray) -> np.ndarray:
    """Weights ∝ validation AUC above chance (0.5); equal weights if no member beats chance."""
    above = np.clip(np.asarray(val_aucs, dtype=float) - 0.5, 0, None)
    return above / above.sum() if above.sum() > 0 else np.full(len(above), 1 / len(above))


def aligned_probabilities(predictions: list[pd.DataFrame], classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probs stacked members × N × C) after checking every member saw the same test images."""
    frames = [p.sort_values("index").reset_index(drop=True) for p in predictions]
    first = frames[0]
    for f in frames[1:]:
        if not np.array_equal(f["index"], first["index"]) or not np.array_equal(f["label"], first["label"]):
            raise ValueError("ensemble members were tested on different test images; "
                             "they must come from one study (same data and split)")
    columns = [prob_column(c) for c in classes]
    return first["label"].to_numpy(), np.stack([f[columns].to_numpy(dtype=float) for f in frames])


def ensemble_rows(members: pd.DataFrame, predictions: list[pd.DataFrame], classes: tuple[str, ...],
                  positive: int) -> list[dict]:
    """Member rows plus average and val-weighted ensemble rows, all scored on the same test split."""
    labels, probs = aligned_probabilities(predictions, classes)
    weights = val_weights(members["best_val_auc"].to_numpy())
    rows = []
    for (_, m), p, w in zip(members.iterrows(), probs, weights):
        scores = classification_metrics(labels, p, classes, positive, "test_")
        rows.append({"member": f"{m['init']} / {m['model']} (seed {m['seed']})", "kind": "member",
                     "best_val_auc": m["best_val_auc"], "weight": w, **{k: scores[k] for k in REPORTED}})
    for name, combined in (("average", probs.mean(0)), ("val-weighted", np.tensordot(weights, probs, axes=1))):
        scores = classification_metrics(labels, combined, classes, positive, "test_")
        rows.append({"member": f"ensemble: {name}", "kind": "ensemble", "best_val_auc": np.nan, "weight": np.nan,
                     **{k: scores[k] for k in REPORTED}})
    return rows


def ensemble_table(trials: pd.DataFrame, predictions: dict[str, pd.DataFrame], classes: tuple[str, ...],
                   positive: int) -> pd.DataFrame:
    """For each n with ≥ 2 strategy/model bests that logged predictions: members then the two ensembles
    (cross-validated studies: of fold 0, repeat 0, so every member scores the same test images)."""
    rows = []
    if "fold" in trials:
        trials = trials[(trials["fold"] == 0) & (trials["repeat"] == 0)]
    best = best_members(trials[trials["run_id"].isin(list(predictions))])
    for n in sorted(best["n_per_class"].unique(), key=n_order):
        members = best[best["n_per_class"] == n]
        if len(members) < 2:
            continue
        for row in ensemble_rows(members, [predictions[r] for r in members["run_id"]], classes, positive):
            rows.append({"n_per_class": n, **row})
    return pd.DataFrame(rows)
