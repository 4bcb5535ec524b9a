"""H1: pretraining helps at small n, and the gain shrinks as n grows (test AUC, image level)."""
from __future__ import annotations

from xfer.analysis.collect import n_order
from xfer.analysis.hypotheses.base import (SAME_WEIGHTS, Comparison, Context, auc_comparison, auc_difference,
                                           hypothesis, is_init, random_and_pretrained, same_weights, untestable)


@hypothesis("H1", "Pretraining helps at small n, and the gain shrinks as n grows")
def pretraining_helps_small_n(ctx: Context) -> list[Comparison]:
    """Pretrained − random test AUC at the smallest n, and that gain minus the gain at the largest n (each n
    paired on its own seeds: a study may give the small n more)."""
    trials = ctx.trials
    base, pretrained = random_and_pretrained(trials)
    if base is None or not pretrained:
        return [untestable("H1", "pretrained − random test AUC", "needs random-init and pretrained trials")]
    ns = sorted(trials["n_per_class"].unique(), key=n_order)
    small, large = ns[0], ns[-1]
    keys = ("model", "seed", "repeat")
    out = []
    for init in pretrained:
        if same_weights(trials, init, base):
            out.append(untestable("H1", f"{init} − {base}", SAME_WEIGHTS, SAME_WEIGHTS))
            continue
        gain = [(is_init(trials, init, small), 1.0), (is_init(trials, base, small), -1.0)]
        out.append(auc_comparison("H1", f"{init} − {base}, test AUC at n={small}", ctx, gain, keys))
        label = f"gain of {init} at n={small} − gain at n={large}"
        if small == large:
            out.append(untestable("H1", label, "the study has only one n_per_class"))
            continue
        gain_large = [(is_init(trials, init, large), 1.0), (is_init(trials, base, large), -1.0)]
        out.append(auc_difference("H1", label, ctx, gain, gain_large, keys))
    return out
