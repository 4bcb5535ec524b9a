"""Shared by H2 and H3: speed as epochs to a fraction of each run's own plateau, and the runs that never learned."""
from __future__ import annotations

import pandas as pd

from xfer.analysis.hypotheses.base import Comparison, Context, is_init, untestable, value_comparison

EPOCH_STEP = 1.0  # epochs are whole numbers: identical contrasts are rounding, not certainty


def speed_label(ctx: Context) -> str:
    return f"epochs to {ctx.cfg.convergence_fraction:.0%} of the run's own val AUC gain over 0.5"


def never_learned(trials: pd.DataFrame, inits: list[str]) -> str:
    """'runs that never learned …: init: count (names)' for the inits compared; '' where none."""
    if "learned" not in trials:
        return ""
    parts = []
    for init in inits:
        rows = trials[(trials["init"] == init) & ~trials["learned"].fillna(True).astype(bool)]
        names = rows["trial_key"] if "trial_key" in rows else rows["run_id"]
        parts.append(f"{init}: {len(rows)}" + (f" ({', '.join(map(str, names))})" if len(rows) else ""))
    if not any(": 0" not in p for p in parts):
        return ""
    return ("runs that never learned (val AUC within chance of 0.5 throughout), left out of the speed contrast: "
            + "; ".join(parts))


def speed_comparison(h: str, ctx: Context, base: str, faster: str, note: str = "") -> Comparison:
    """base − `faster` epochs to the own-plateau target (positive: `faster` is faster), paired on model, n, seed."""
    trials = ctx.trials
    label = f"{base} − {faster}, {speed_label(ctx)}"
    if "epochs_to_target" not in trials:
        return untestable(h, label, "needs val-AUC histories", unit="epochs")
    notes = "; ".join(n for n in (note, never_learned(trials, [base, faster])) if n)
    return value_comparison(h, label, trials, "epochs_to_target",
                            [(is_init(trials, base), 1.0), (is_init(trials, faster), -1.0)], "epochs",
                            ctx.cfg.convergence_margin, notes, resolution=EPOCH_STEP)
