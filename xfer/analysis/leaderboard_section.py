"""The leaderboard as the report's first section: its display table, the sweep table, the summed confusion matrices
and the warnings (never-learned runs, saturated validation)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from xfer.analysis.collect import n_order
from xfer.analysis.leaderboard import (CONDITIONAL, SATURATED_VAL_AUC, external_label, leaderboard, swept_columns,
                                       t_interval, with_report_verdicts)


def display_table(board: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard as the report shows it: CIs as '[low, high]' text, one column per quantity."""
    def interval(low, high):
        return "–" if np.isnan(low) else f"[{low:.3f}, {high:.3f}]"

    swept = [c for c in board.columns if c.startswith("train.")]
    out = board[["init", "model", "n_per_class", *swept, "runs"]].copy()
    out["test AUC"] = board["test_auc"]
    out["95% CI"] = [interval(lo, hi) for lo, hi in zip(board["ci_low"], board["ci_high"])]
    out["Δ vs random"] = board["diff_vs_random"]
    out["Δ 95% CI"] = [interval(lo, hi) for lo, hi in zip(board["diff_ci_low"], board["diff_ci_high"])]
    out["verdict (adjusted)"] = board["verdict"]
    out["never learned"] = [f"{k}/{n}" if k else "" for k, n in zip(board["collapsed"], board["trials"])]
    if "mde" in board and board["mde"].notna().any():
        out["mde"] = board["mde"]
    for column in (c for c in board.columns if c.startswith("external/")):
        out[f"external: {external_label(column)}"] = board[column]
    out["best val AUC"] = board["best_val_auc"]
    out["val saturated"] = [f"{k}/{n}" if k else "" for k, n in zip(board["saturated_val"], board["trials"])]
    out["test images"] = board["n_test"]
    return out


def sweep_table(trials: pd.DataFrame) -> pd.DataFrame:
    """Per swept train value (and init): test AUC mean and 95% CI over all other axes, to compare the values."""
    rows = []
    for column in swept_columns(trials):
        for (value, init), g in trials.groupby([column, "init"]):
            mean, low, high, _ = t_interval(g["test_auc"])
            rows.append({"setting": column[len("param."):], "value": value, "init": init, "trials": len(g),
                         "test AUC": mean, "95% CI": "–" if np.isnan(low) else f"[{low:.3f}, {high:.3f}]",
                         "best val AUC": g["best_val_auc"].mean()})
    return pd.DataFrame(rows)


def summed_confusion(trials: pd.DataFrame, confusion: dict) -> dict[str, np.ndarray]:
    """Per init (× model), the confusion matrices of its runs at the largest n, summed over seeds and folds."""
    largest = max(trials["n_per_class"].unique(), key=n_order)
    out: dict[str, np.ndarray] = {}
    several = trials["model"].nunique() > 1
    for _, t in trials[trials["n_per_class"] == largest].iterrows():
        if t["run_id"] in confusion:
            key = f"{t['init']} / {t['model']}" if several else str(t["init"])
            out[key] = out.get(key, 0) + np.asarray(confusion[t["run_id"]])
    return {f"{k}, n={largest}": v for k, v in sorted(out.items())}


def leaderboard_section(trials: pd.DataFrame, verdicts: list, confusion: dict | None = None,
                        classes: tuple[str, ...] = (), folder: Path | None = None,
                        predictions: dict | None = None) -> str:
    """The report's first section: the answer per strategy × model × n, with the caveats that qualify it, and
    the confusion matrices behind it (written into `folder/figures`)."""
    from xfer.analysis import figures, html  # matplotlib: only when a report is written

    board = with_report_verdicts(leaderboard(trials, predictions=predictions), verdicts)
    n_test = board["n_test"].max()
    saturated = int((trials["best_val_auc"] >= SATURATED_VAL_AUC).sum())
    folds = "fold" in trials
    arm = (f"an arm is one seed × repeat, its test AUC that of its folds' {board['arm'].iloc[0]} (every image "
           "tested once)" if folds else "an arm is one seed's run")
    external = [external_label(c) for c in board.columns if c.startswith("external/")]
    conditional = (board["inference"] == CONDITIONAL).any()
    parts = [html.paragraph(
        f"Test AUC per init × model × n per class ({arm}), and Δ vs random, the paired difference to the "
        f"untrained-init arm of the same model, n, seed{' and repeat' if folds else ''}. Their 95% intervals carry "
        "both sources of error: the test set (patients resampled within class, DeLong) and the seeds "
        f"{'and repeats ' if folds else ''}as clusters (t with degrees of freedom the seeds can support), so they "
        "cover the difference a fresh test set from the same population would show. Verdicts are Holm-adjusted "
        "over this table (a row that is one of the hypotheses' H1 comparisons below shows that comparison, "
        "adjusted over the whole report); the mde column is the minimum detectable effect at Holm's first step. "
        f"Test set: {int(n_test) if n_test == n_test else 'unknown'} images per arm"
        f"{'' if folds else ', the same for every run'}."
        + (" Rows without test predictions show a t interval over arms only: it is conditional on this test set "
           "(images that happen to favour one init move every seed alike), so those rows make no better/worse "
           "claim." if conditional else "")
        + (f" External sets, mean over arms ({', '.join(external)}): AUC where a set has both classes, else the "
           "sensitivity or specificity it can measure, at the trial's own threshold; no comparison is made on "
           "them." if external else ""))]
    never = board[board["collapsed"] > 0]
    if len(never):
        arms_named = "; ".join(f"{r['init']} / {r['model']} at n={r['n_per_class']}: {r['collapsed']} of {r['trials']}"
                               for _, r in never.iterrows())
        parts.append(html.warning(
            f"runs that never learned (best validation AUC within chance of 0.5): {arms_named}. They are averaged in "
            "(AUC ≈ 0.5), which lowers the arm's mean and widens its interval; check the learning rate, epochs and "
            "data of these arms."))
    if saturated:
        parts.append(html.warning(
            f"{saturated} of {len(trials)} trials reached a best validation AUC ≥ {SATURATED_VAL_AUC}: the validation "
            "split is too small or too easy to rank epochs, so early stopping picked among ties. Read test AUC, "
            "not validation AUC; enlarge data.split.val_fraction to fix."))
    parts.append(html.table(display_table(board), row_class=None))
    sweep = sweep_table(trials)
    if not sweep.empty:
        parts.append(html.paragraph("Swept train settings: test AUC per value (all other axes pooled)."))
        parts.append(html.table(sweep))
    matrices = summed_confusion(trials, confusion) if confusion else {}
    if matrices and folder is not None:
        (folder / "figures").mkdir(parents=True, exist_ok=True)
        path = figures.confusion_grid(matrices, classes, folder / "figures" / "confusion_matrices.png")
        over = "seeds and folds" if "fold" in trials else "seeds"
        parts.append(html.figure(path, f"Confusion matrices at the largest n, summed over {over} "
                                       "(rows: true class; threshold: the most probable class)", folder))
    return html.section("Answer: test AUC per strategy", *parts)
