"""H6: feature reuse — pretrained lower blocks change less than those of a scale-matched control, beyond a margin."""
from __future__ import annotations

import pandas as pd

from xfer.analysis.hypotheses.base import (Comparison, Context, hypothesis, is_init, random_and_pretrained,
                                           statistics_control, untestable, value_comparison)


def reuse_by_half(cka: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Per trial: mean CKA(initial, fine-tuned) over the lower and the upper half of its blocks."""
    rows = []
    for run_id, run in cka.groupby("run_id"):
        values = run.sort_values("depth")["cka"].to_numpy()
        half = len(values) // 2
        if half:
            rows.append({"run_id": run_id, "cka_lower": values[:half].mean(), "cka_upper": values[-half:].mean()})
    halves = pd.DataFrame(rows, columns=["run_id", "cka_lower", "cka_upper"])
    return trials.merge(halves, on="run_id")


def floor_note(floor: pd.DataFrame | None) -> str:
    if floor is None or floor.empty:
        return "floor (CKA of two independent random inits) not measured"
    parts = []
    for model, f in floor.groupby("model"):
        values = f.sort_values("depth")["cka"].to_numpy()
        half = max(len(values) // 2, 1)
        parts.append(f"{model} lower {values[:half].mean():.2f}, upper {values[-half:].mean():.2f}")
    return "floor (CKA of two independent random inits): " + "; ".join(parts)


@hypothesis("H6", "Feature reuse: pretrained lower blocks change less than random-init ones, more so than upper "
                  "blocks")
def lower_layers_change_less(ctx: Context) -> list[Comparison]:
    """Δ = CKA(initial, fine-tuned) of a pretrained init − that of its control, paired on model, n and seed:
    Δ(lower half of blocks) and Δ(lower) − Δ(upper) beyond the CKA margin. The control is the mean-var init of
    the same source where the study has one (same weight scale, no features: scale alone is not reuse), else
    random init."""
    trials, cka, margin = ctx.trials, ctx.cka, ctx.cfg.cka_margin
    base, pretrained = random_and_pretrained(trials)
    if cka.empty or base is None or not pretrained:
        why = "no CKA was measured (no checkpoints or analysis images)" if cka.empty else "needs random-init trials"
        return [untestable("H6", "Δ CKA(initial, fine-tuned), pretrained − random", why, unit="CKA")]
    halves = reuse_by_half(cka[["run_id", "depth", "cka"]], trials)
    halves = halves.assign(cka_gap=halves["cka_lower"] - halves["cka_upper"])
    out, floor = [], floor_note(ctx.cka_floor)
    for init in pretrained:
        control = statistics_control(trials, init)
        ref = control or base
        note = floor if control else (f"{floor}; no mean-var control of {init}'s source in the study: a larger "
                                      "weight scale alone also makes a layer change less")
        terms = [(is_init(halves, init), 1.0), (is_init(halves, ref), -1.0)]
        out.append(value_comparison("H6", f"{init} − {ref}, Δ CKA of the lower blocks", halves, "cka_lower", terms,
                                    "CKA", margin, note, "beyond", margin))
        out.append(value_comparison("H6", f"{init} − {ref}, Δ(lower) − Δ(upper) CKA", halves, "cka_gap", terms,
                                    "CKA", margin, note, "beyond", margin))
    return out
