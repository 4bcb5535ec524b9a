"""H2: pretrained inits converge faster (epochs to a fraction of each run's own plateau, so level is not speed)."""
from __future__ import annotations

from xfer.analysis.hypotheses.base import Comparison, Context, hypothesis, random_and_pretrained, untestable
from xfer.analysis.hypotheses.convergence_speed import speed_comparison, speed_label


@hypothesis("H2", "Pretrained inits converge faster")
def pretrained_converge_faster(ctx: Context) -> list[Comparison]:
    """Random − pretrained epochs to the own-plateau target (positive = pretrained faster)."""
    base, pretrained = random_and_pretrained(ctx.trials)
    if base is None or not pretrained:
        return [untestable("H2", f"random − pretrained {speed_label(ctx)}", "needs random-init and pretrained "
                                                                            "trials", unit="epochs")]
    return [speed_comparison("H2", ctx, base, init) for init in pretrained]
