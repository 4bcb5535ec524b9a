"""H3: mean-var init (source statistics, no features) recovers part of its source's convergence speed-up."""
from __future__ import annotations

import pandas as pd

from xfer.analysis.hypotheses.base import (PAIR_KEYS, Comparison, Context, hypothesis, info, inits_where, is_init,
                                           random_and_pretrained, untestable, weights_identity)
from xfer.analysis.hypotheses.convergence_speed import speed_comparison, speed_label
from xfer.analysis.paired import value_contrasts
from xfer.analysis.stats import fieller_ratio


def meanvar_source(trials: pd.DataFrame, drawn: str) -> str | None:
    """The pretrained init with the same resolved source as a statistics-drawing init (a natural-domain one first)."""
    pretrained = inits_where(trials, pretrained=True, weights="copied")
    source = weights_identity(trials, drawn)[-1]
    same = [i for i in pretrained if weights_identity(trials, i)[-1] == source]
    natural = inits_where(trials, pretrained=True, domain=info(trials, drawn).domain)
    ranked = sorted(same or natural, key=lambda i: i not in natural)
    return ranked[0] if ranked else None


def recovered_share(trials: pd.DataFrame, base: str, drawn: str, source: str) -> str:
    """How much of the source's speed-up (random − source epochs) the drawn init recovers, with Fieller's CI."""
    by_cluster = []
    for init in (drawn, source):
        values, clusters = value_contrasts(trials, "epochs_to_target",
                                           [(is_init(trials, base), 1.0), (is_init(trials, init), -1.0)], PAIR_KEYS)
        by_cluster.append(pd.Series(values, index=pd.MultiIndex.from_tuples(clusters)).groupby(level=list(
            range(len(clusters[0])))).mean() if clusters else pd.Series(dtype=float))
    both = pd.concat(by_cluster, axis=1).dropna()
    if len(both) < 2 or both[1].mean() <= 0:
        return f"{source} itself is not faster than {base} here: no speed-up to recover"
    share, low, high = fieller_ratio(both[0].to_numpy(), both[1].to_numpy())
    return (f"recovers {share:.0%} (95% CI {low:.0%} to {high:.0%}, Fieller) of {source}'s speed-up of "
            f"{both[1].mean():.2g} epochs")


@hypothesis("H3", "Mean-var init (source statistics, no features) recovers part of its source's convergence speed-up")
def meanvar_recovers_speedup(ctx: Context) -> list[Comparison]:
    """Random − drawn-init epochs to the own-plateau target (positive = faster), with the share of the source's
    speed-up it recovers."""
    trials = ctx.trials
    base, _ = random_and_pretrained(trials)
    drawn_inits = inits_where(trials, weights="drawn")
    if base is None or not drawn_inits or "epochs_to_target" not in trials:
        return [untestable("H3", f"random − mean-var {speed_label(ctx)}",
                           "needs random-init and mean-var trials with val-AUC histories", unit="epochs")]
    out = []
    for drawn in drawn_inits:
        source = meanvar_source(trials, drawn)
        note = recovered_share(trials, base, drawn, source) if source else "its source init is not in the study"
        out.append(speed_comparison("H3", ctx, base, drawn, note))
    return out
