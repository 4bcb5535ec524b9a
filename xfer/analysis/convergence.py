"""Convergence speed: epochs until validation AUC reaches a target common to the strategies compared (hypothesis
tests), or a fraction of the run's own final value (descriptive table)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xfer.analysis.collect import sort_by_n

FRACTIONS = (0.9, 0.95)
TARGET_KEYS = ("model", "n_per_class", "seed", "repeat", "fold")  # runs sharing a target (those present)


def epochs_to_fraction_of_best(epochs: np.ndarray, values: np.ndarray, fraction: float) -> float:
    """First epoch whose value reaches `fraction` × the run's final value (NaN if never).

    The run's final value is its best validation AUC: the best epoch's checkpoint is the model a
    trial keeps (Raghu et al. 2019 count steps to a fraction of final performance).
    """
    epochs = np.asarray(epochs, dtype=float)
    values = np.asarray(values, dtype=float)
    keep = ~np.isnan(values)
    epochs, values = epochs[keep], values[keep]
    if values.size == 0:
        return float("nan")
    order = np.argsort(epochs)
    epochs, values = epochs[order], values[order]
    reached = np.nonzero(values >= fraction * values.max())[0]
    return float(epochs[reached[0]])


def fraction_column(fraction: float) -> str:
    """Column name for epochs to a fraction, e.g. 0.9 → `epochs_to_90`."""
    return f"epochs_to_{round(fraction * 100):d}"


def convergence_epochs(histories: pd.DataFrame, metric: str = "val_auc",
                       fractions: tuple[float, ...] = FRACTIONS) -> pd.DataFrame:
    """One row per run: run_id and epochs to each fraction of the run's best `metric`."""
    rows = []
    for run_id, h in histories[histories["metric"] == metric].groupby("run_id"):
        row = {"run_id": run_id}
        for f in fractions:
            row[fraction_column(f)] = epochs_to_fraction_of_best(h["epoch"], h["value"], f)
        rows.append(row)
    return pd.DataFrame(rows, columns=["run_id", *map(fraction_column, fractions)])


def convergence_table(trials: pd.DataFrame, fractions: tuple[float, ...] = FRACTIONS) -> pd.DataFrame:
    """Mean ± SD over seeds of epochs to each fraction, per init, model and n (trials carry the epochs columns)."""
    cols = [fraction_column(f) for f in fractions]
    keys = ["init", "model", "n_per_class"]
    grouped = trials.groupby(keys, sort=False)
    out = grouped[cols].agg(["mean", "std"])
    out.columns = [f"{c}_{stat}" for c, stat in out.columns]
    out["seeds"] = grouped.size()
    out = out.reset_index()
    return sort_by_n(out)



def first_epoch_reaching(epochs: np.ndarray, values: np.ndarray, target: float) -> float:
    """First epoch whose value reaches `target` (NaN if never)."""
    order = np.argsort(epochs)
    epochs, values = np.asarray(epochs, float)[order], np.asarray(values, float)[order]
    reached = np.nonzero(values >= target)[0]
    return float(epochs[reached[0]]) if reached.size else float("nan")


def epochs_to_common_target(histories: pd.DataFrame, trials: pd.DataFrame, fraction: float = 0.9,
                            metric: str = "val_auc") -> pd.DataFrame:
    """Per run: epochs until `metric` reaches 0.5 + fraction × (best value among the runs sharing its model, n,
    seed, repeat and fold − 0.5). A run that never reaches it is censored at one epoch past the group's last
    logged epoch (`reached_target` False): it counts as slower than any run that got there, never as fast."""
    keys = [k for k in TARGET_KEYS if k in trials]
    curves = histories[histories["metric"] == metric].dropna(subset=["value"])
    curves = curves.merge(trials[["run_id", *keys]], on="run_id")
    rows = []
    for _, group in curves.groupby(keys):
        target = 0.5 + fraction * (group["value"].max() - 0.5)
        censored_at = group["epoch"].max() + 1
        for run_id, run in group.groupby("run_id"):
            epoch = first_epoch_reaching(run["epoch"].to_numpy(), run["value"].to_numpy(), target)
            reached = not np.isnan(epoch)
            rows.append({"run_id": run_id, "epochs_to_target": epoch if reached else float(censored_at),
                         "reached_target": reached, "target_val_auc": target})
    return pd.DataFrame(rows, columns=["run_id", "epochs_to_target", "reached_target", "target_val_auc"])
