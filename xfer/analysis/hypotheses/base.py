"""What every hypothesis shares: the typed context it reads, the registry it joins, and planned comparisons.

A hypothesis is one function `(Context) -> list[Comparison]` in its own module, registered with `@hypothesis`;
the family (xfer.analysis.hypotheses.family) Holm-adjusts whatever the registry holds. Strategies are asked what
they are (`xfer.inits.strategy_info`: pretrained, weights, source domain); no strategy is named here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pandas as pd

from xfer.analysis.collect import n_order
from xfer.analysis.paired import ImageScores, Term, present, value_contrasts
from xfer.analysis.stats import Claim, Effect, no_effect
from xfer.analysis.strata import Stratum, combined_effect, combined_value_effect
from xfer.config import AnalysisConfig
from xfer.inits import strategy_info
from xfer.registry import Registry

PAIR_KEYS = ("model", "n_per_class", "seed", "repeat", "fold")  # those present
STRATUM = "n_per_class"  # a contrast pooled over n is the mean of each n's own contrast
SAME_WEIGHTS = "same weights — not compared"
WEIGHTS_HASH = "param.init.weights_hash"  # a hash of the initial weights, where trials log one


@dataclass(frozen=True)
class Context:
    """What a hypothesis may read: the finished trials (with `epochs_to_target`, `reached_target` and `collapsed`
    where val-AUC histories exist), the test-image scores, per-block CKA and its floor, and the settings."""

    trials: pd.DataFrame
    scores: ImageScores | None
    cka: pd.DataFrame
    cka_floor: pd.DataFrame | None
    cfg: AnalysisConfig


@dataclass(frozen=True)
class Comparison:
    """One planned comparison before the family is adjusted; `fixed` is a verdict reached without testing."""

    hypothesis: str
    comparison: str
    effect: Effect
    power_margin: float  # smallest difference worth detecting, in the effect's unit
    claim: Claim = "greater"
    margin: float = 0.0  # decision threshold of beyond / non_inferior / equivalent claims
    note: str = ""
    fixed: str = ""
    why: str = ""


@dataclass(frozen=True)
class Hypothesis:
    """A registered hypothesis: its claim in words and the function that plans its comparisons."""

    name: str
    claim: str
    plan: Callable[[Context], list[Comparison]]


HYPOTHESES: Registry[Hypothesis] = Registry("hypothesis")


def hypothesis(name: str, claim: str) -> Callable:
    """Register `plan(context) -> list[Comparison]` as hypothesis `name` (reports list them in name order)."""
    def add(plan: Callable[[Context], list[Comparison]]) -> Callable[[Context], list[Comparison]]:
        HYPOTHESES.register(name)(Hypothesis(name, claim, plan))
        return plan

    return add


def untestable(h: str, comparison: str, why: str, verdict: str = "inconclusive", unit: str = "AUC") -> Comparison:
    """A comparison the study cannot make (missing strategies, predictions or measurements, or same weights)."""
    return Comparison(h, comparison, no_effect(unit), float("nan"), fixed=verdict, why=why)


def infos(trials: pd.DataFrame) -> dict:
    """Init label → its strategy's declared StrategyInfo."""
    first = trials.drop_duplicates("init")
    return {i: strategy_info(s) for i, s in zip(first["init"], first["strategy"])}


def info(trials: pd.DataFrame, init: str):
    return infos(trials[trials["init"] == init])[init]


def inits_where(trials: pd.DataFrame, **declared) -> list[str]:
    """Init labels whose strategy declares the given StrategyInfo values, e.g. pretrained=True."""
    return sorted(i for i, d in infos(trials).items() if all(getattr(d, k) == v for k, v in declared.items()))


def weights_identity(trials: pd.DataFrame, init: str) -> tuple:
    """What fixes an init's starting weights: their logged hash, else how they arise and the resolved source."""
    rows = trials[trials["init"] == init]
    if WEIGHTS_HASH in rows and rows[WEIGHTS_HASH].notna().all():
        return tuple(sorted(rows[WEIGHTS_HASH].unique()))
    source = tuple(sorted(rows.get("param.init.source", pd.Series(["?"])).fillna("?").unique()))
    return info(trials, init).weights, source


def same_weights(trials: pd.DataFrame, a: str, b: str) -> bool:
    return a != b and weights_identity(trials, a) == weights_identity(trials, b)


def is_init(trials: pd.DataFrame, init: str, n=None) -> pd.Series:
    mask = trials["init"] == init
    return mask if n is None else mask & (trials["n_per_class"] == n)


def random_and_pretrained(trials: pd.DataFrame) -> tuple[str | None, list[str]]:
    """The framework-init baseline (None if absent) and the pretrained inits."""
    baselines = inits_where(trials, weights="default")
    return (baselines[0] if baselines else None), inits_where(trials, pretrained=True)


def statistics_control(trials: pd.DataFrame, pretrained: str) -> str | None:
    """The statistics-drawing (mean-var) init of the same source as a pretrained init: its scale without its
    features; None where the study has none."""
    source = weights_identity(trials, pretrained)[-1]
    drawn = [i for i in inits_where(trials, weights="drawn") if weights_identity(trials, i)[-1] == source]
    return drawn[0] if drawn else None


def per_n(trials: pd.DataFrame, terms: list[Term], keys: tuple[str, ...]) -> list[tuple[list[Term], tuple]]:
    """(terms, keys) per n when a contrast matched on `keys` pools over n (n leaves the keys), else the one."""
    if STRATUM not in keys or STRATUM not in trials:
        return [(terms, keys)]
    inner = tuple(k for k in keys if k != STRATUM)
    return [([(mask & (trials[STRATUM] == n), w) for mask, w in terms], inner)
            for n in sorted(trials[STRATUM].unique(), key=n_order)]


def pooled(groups: list) -> list[tuple[float, object]]:
    """Equal weights over the n's a pooled contrast has; those measured at a single seed cluster are left out
    where another n has more (their seed spread is unknown)."""
    groups = [g for g in groups if len(g)]
    kept = [g for g in groups if len(clusters_of(g)) >= 2] or groups
    return [(1.0 / len(kept), g) for g in kept]


def clusters_of(group) -> set:
    return set(group.index) if isinstance(group, pd.Series) else {c.cluster for c in group}


def image_comparison(h: str, label: str, ctx: Context, strata: list[Stratum], keys: tuple[str, ...],
                     claim: Claim, note: str) -> Comparison:
    if not strata:
        return untestable(h, label, "no trials with predictions share " + ", ".join(present(ctx.trials, keys)))
    margin = ctx.cfg.equivalence_margin
    return Comparison(h, label, combined_effect(strata, ctx.scores.images), margin, claim,
                      margin if claim != "greater" else 0.0, note)


NO_PREDICTIONS = ("needs the trials' test predictions (eval/test_predictions.csv) to resample test images; pass "
                  "predictions to evaluate_hypotheses")


def auc_comparison(h: str, label: str, ctx: Context, terms: list[Term], keys: tuple[str, ...],
                   claim: Claim = "greater", note: str = "", trials: pd.DataFrame | None = None) -> Comparison:
    """A test-AUC contrast at the image level (patients within class × seed clusters), matched on `keys`; with n
    among them, the mean over n of each n's contrast over all its own seeds (`strata.combined_effect`)."""
    trials = ctx.trials if trials is None else trials
    if ctx.scores is None:
        return untestable(h, label, NO_PREDICTIONS)
    groups = [ctx.scores.cells(trials, t, k) for t, k in per_n(trials, terms, keys)]
    return image_comparison(h, label, ctx, pooled(groups), keys, claim, note)


def auc_difference(h: str, label: str, ctx: Context, first: list[Term], second: list[Term],
                   keys: tuple[str, ...]) -> Comparison:
    """A test-AUC contrast (`first`) minus another made on other runs (a gain at two n's): each paired within
    itself on `keys` over all its own seeds, the two sharing the test images (`strata.combined_effect`)."""
    if ctx.scores is None:
        return untestable(h, label, NO_PREDICTIONS)
    groups = [ctx.scores.cells(ctx.trials, terms, keys) for terms in (first, second)]
    return image_comparison(h, label, ctx, list(zip((1.0, -1.0), groups)) if all(groups) else [], keys,
                            "greater", "")


def value_comparison(h: str, label: str, trials: pd.DataFrame, column: str, terms: list[Term], unit: str,
                     power_margin: float, note: str = "", claim: Claim = "greater", margin: float = 0.0,
                     resolution: float = 0.0) -> Comparison:
    """A contrast of a per-trial value (epochs, CKA), t interval over seed clusters; pooled over n as the mean
    of each n's contrast over its own seeds (`strata.combined_value_effect`)."""
    groups = []
    for t, k in per_n(trials, terms, PAIR_KEYS):
        values, clusters = value_contrasts(trials, column, t, k)
        groups.append(pd.Series(values, index=pd.Index(clusters, tupleize_cols=False), dtype=float).dropna())
    effect = combined_value_effect(pooled(groups), unit, resolution=resolution)
    return Comparison(h, label, effect, power_margin, claim, margin, note)
