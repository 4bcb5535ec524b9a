"""H4: X-ray-domain sources beat natural-image sources on X-rays; grayscale ≥ RGB pretraining (test AUC)."""
from __future__ import annotations

from xfer.analysis.hypotheses.base import (SAME_WEIGHTS, Comparison, Context, auc_comparison, hypothesis, inits_where,
                                           is_init, same_weights, untestable)


@hypothesis("H4", "X-ray-domain sources beat natural-image sources on X-rays; grayscale ≥ RGB pretraining")
def xray_sources_win(ctx: Context) -> list[Comparison]:
    """x-ray − natural-source test AUC (> 0), grayscale-natural − natural test AUC (non-inferior)."""
    trials = ctx.trials
    natural = inits_where(trials, pretrained=True, domain="natural")
    keys = ("model", "n_per_class", "seed", "repeat")
    out = []
    for domain, claim in (("xray", "greater"), ("grayscale_natural", "non_inferior")):
        others = inits_where(trials, pretrained=True, domain=domain)
        if not others or not natural:
            out.append(untestable("H4", f"{domain} − natural source test AUC", f"needs {domain}- and natural-source "
                                                                               "pretrained trials"))
        for init in others:
            for ref in natural:
                label = f"{init} − {ref}, test AUC"
                if same_weights(trials, init, ref):
                    out.append(untestable("H4", label, SAME_WEIGHTS, SAME_WEIGHTS))
                    continue
                out.append(auc_comparison("H4", label, ctx, [(is_init(trials, init), 1.0),
                                                             (is_init(trials, ref), -1.0)], keys, claim))
    return out
