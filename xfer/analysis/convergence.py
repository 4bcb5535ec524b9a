"""Convergence speed: epochs until validation AUC reaches a target common to the strategies compared (hypothesis
tests), or a fraction of the run's own final value (descriptive table)."""
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



def first_epoch_reaching(epochs: np.ndarray, values: np.ndarray, target: float) -> float:
    """First epoch whose value reaches `target` (NaN if never)."""
    order = np.argsort(epochs)
    epochs, values = np.asarray(epochs, float)[order], np.asarray(values, float)[order]
    reached = np.nonzero(values >= target)[0]
    return float(epochs[reached[0]]) if reached.size else float("nan")


def chance_tolerance(trials: pd.DataFrame) -> pd.Series:
    """Per trial, how far from 0.5 a validation AUC may lie by chance alone: 3 × the null SE of an AUC on its
    validation split (param.n_val, classes taken as balanced), at least 0.02; 0.05 where n_val is not logged."""
    n_val = pd.to_numeric(trials.get("param.n_val", pd.Series(np.nan, index=trials.index)), errors="coerce")
    return (3 / np.sqrt(3 * n_val)).clip(lower=0.02).fillna(0.05)


def collapsed(trials: pd.DataFrame) -> pd.Series:
    """Runs that never learned: best validation AUC within chance of 0.5, so every epoch was (xfer's trials keep
    the best epoch's value)."""
    if "best_val_auc" not in trials:
        return pd.Series(False, index=trials.index)
    return (trials["best_val_auc"] - 0.5 <= chance_tolerance(trials)).fillna(False)


def epochs_to_own_plateau(histories: pd.DataFrame, trials: pd.DataFrame, fraction: float = 0.9,
                          metric: str = "val_auc") -> pd.DataFrame:
    """Per run: epochs until `metric` reaches 0.5 + fraction × (the run's own best − 0.5), a speed that does not
    move with the height of the plateau. Runs that never learned (`collapsed`) get NaN: they are neither fast
    nor slow, and are reported apart."""
    never = set(trials.loc[collapsed(trials), "run_id"])
    curves = histories[histories["metric"] == metric].dropna(subset=["value"])
    rows = []
    for run_id, run in curves[curves["run_id"].isin(set(trials["run_id"]))].groupby("run_id"):
        target = 0.5 + fraction * (run["value"].max() - 0.5)
        learned = run_id not in never
        epoch = first_epoch_reaching(run["epoch"].to_numpy(), run["value"].to_numpy(), target) if learned else np.nan
        rows.append({"run_id": run_id, "epochs_to_target": epoch, "learned": learned, "target_val_auc": target})
    return pd.DataFrame(rows, columns=["run_id", "epochs_to_target", "learned", "target_val_auc"])
