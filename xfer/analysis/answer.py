"""The report's first lines: at each n (and model), which strategy had the highest test AUC, by how much over
random init, and whether the study could tell — read off the leaderboard the report shows, nothing recomputed."""
from __future__ import annotations

import numpy as np
import pandas as pd

from xfer.analysis.collect import n_order

DECIDED = ("better", "worse", "supported", "not supported", "comparable", "not worse")


def interval(low: float, high: float) -> str:
    return "" if np.isnan(low) else f" (95% CI [{low:+.3f}, {high:+.3f}])"


def could_tell(row: pd.Series) -> str:
    """The row's verdict in words: decided, or not with the smallest difference the study could have detected."""
    verdict = str(row["verdict"])
    mde = row.get("mde", np.nan)
    if verdict in DECIDED:
        return f"the study could tell: {verdict}"
    detectable = f"; it could detect differences of {mde:.3f} AUC or more" if mde == mde else ""
    return f"the study could not tell ({verdict}{detectable})"


def answer_lines(board: pd.DataFrame) -> list[str]:
    """One sentence per model × n: the best test AUC, its difference over random init, and the verdict on it."""
    several = board["model"].nunique() > 1
    lines = []
    ordered = sorted(board.groupby(["model", "n_per_class"], sort=False), key=lambda kv: (kv[0][0], n_order(kv[0][1])))
    for (model, n), rows in ordered:
        best = rows.loc[rows["test_auc"].idxmax()]
        where = f"{model}, n={n} per class" if several else f"n={n} per class"
        lead = f"{where}: {best['init']} had the highest test AUC, {best['test_auc']:.3f}"
        if np.isnan(best["diff_vs_random"]):  # random init itself (the baseline) came first
            others = rows[rows["diff_vs_random"].notna()]
            if others.empty:
                lines.append(f"{lead}; no other strategy at this n.")
                continue
            runner = others.loc[others["test_auc"].idxmax()]
            lines.append(f"{lead}: no pretrained init beat random; the best, {runner['init']}, was "
                         f"{runner['diff_vs_random']:+.3f}{interval(runner['diff_ci_low'], runner['diff_ci_high'])}"
                         f" — {could_tell(runner)}.")
            continue
        lines.append(f"{lead}, {best['diff_vs_random']:+.3f} over random init"
                     f"{interval(best['diff_ci_low'], best['diff_ci_high'])} — {could_tell(best)}"
                     f"{baseline_caveat(rows)}.")
    return lines


def baseline_caveat(rows: pd.DataFrame) -> str:
    """Where most random-init runs at this n never learned, the gain is over chance, not over a trained baseline."""
    base = rows[rows["diff_vs_random"].isna() & (rows["verdict"] == "baseline")]
    if base.empty or "collapsed" not in base:
        return ""
    never, runs = int(base["collapsed"].sum()), int(base["runs"].sum())
    if never * 2 <= runs:
        return ""
    return (f"; but random init never learned in {never} of {runs} runs here, so this is a gain over chance, not "
            f"over a baseline that trains")
