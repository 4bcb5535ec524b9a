"""Convergence speed: epochs until a run's validation AUC first reaches a fraction of its final value."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xfer.analysis.collect import sort_by_n

FRACTIONS = (0.9, 0.95)


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

