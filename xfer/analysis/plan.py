"""How many seeds a comparison needs: its variance components from finished runs → minimum detectable effect at
k seeds, and the fewest seeds that reach a target (the core of `xfer plan`; pure functions, no I/O)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from scipy import stats as st

from xfer.analysis.stats import Components

MAX_SEEDS = 1000


@dataclass(frozen=True)
class SeedPlan:
    """One comparison's plan: the mde at the pilot's seeds, the seeds a target needs (None: more seeds cannot
    reach it, the shared test-set part alone is too large) and the mde there."""

    comparison: str
    pilot_seeds: int
    mde_now: float
    target: float
    seeds_needed: int | None
    mde_at_needed: float
    floor: float  # the mde with infinitely many seeds: the test set's own limit


def mde_at(components: Components, seeds: int, alpha: float = 0.05, power: float = 0.8,
           comparisons: int = 1) -> float:
    """Minimum detectable effect of the comparison with `seeds` seeds, as the report would print it: two-sided
    t test at Holm's first step α / comparisons, with the report's own variance and df."""
    df = components.df(seeds)
    return float((st.t.ppf(1 - alpha / comparisons / 2, df) + st.t.ppf(power, df))
                 * np.sqrt(components.variance(seeds)))


def seeds_for(components: Components, target: float, alpha: float = 0.05, power: float = 0.8,
              comparisons: int = 1, most: int = MAX_SEEDS) -> int | None:
    """The fewest seeds (≥ 3) whose mde is at most `target`; None if even `most` seeds do not reach it."""
    floor = mde_floor(components, alpha, power, comparisons)
    if floor >= target:
        return None
    low, high = 3, most
    if mde_at(components, high, alpha, power, comparisons) > target:
        return None
    while low < high:  # the mde falls with seeds
        mid = (low + high) // 2
        low, high = (mid + 1, high) if mde_at(components, mid, alpha, power, comparisons) > target else (low, mid)
    return low


def mde_floor(components: Components, alpha: float = 0.05, power: float = 0.8, comparisons: int = 1) -> float:
    """The mde no number of seeds goes below: the shared test-set variance at its own df."""
    df = components.image_df
    return float((st.t.ppf(1 - alpha / comparisons / 2, df) + st.t.ppf(power, df)) * np.sqrt(components.shared))


def plan_comparison(name: str, components: Components, target: float, alpha: float = 0.05, power: float = 0.8,
                    comparisons: int = 1) -> SeedPlan:
    """A comparison's SeedPlan from its pilot's variance components (`stats.variance_components`)."""
    needed = seeds_for(components, target, alpha, power, comparisons)
    return SeedPlan(name, components.seeds, mde_at(components, components.seeds, alpha, power, comparisons),
                    target, needed,
                    mde_at(components, needed, alpha, power, comparisons) if needed else float("nan"),
                    mde_floor(components, alpha, power, comparisons))


@dataclass(frozen=True)
class PlannedComparison:
    """One comparison of the plan: its pilot's mde and seeds, the seeds the target needs and their cost."""

    n_per_class: str
    comparison: str
    pilot_seeds: int
    estimate: float
    mde_now: float  # as the report's leaderboard prints it (Holm's first step over the family)
    seeds_needed: Optional[int]  # None: the shared test-set part alone is above the target
    floor: float
    seconds_per_trial: float
    components: Optional[Components] = None  # the pilot's variance components: the mde at any seed count
    family: int = 1  # comparisons in Holm's family


def worst_mde(plans: Sequence[PlannedComparison], seeds: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The largest mde over `plans` (one n's comparisons) at `seeds` seeds, Holm's family as planned."""
    return max(mde_at(p.components, seeds, alpha, power, p.family) if p.components else math.nan for p in plans) \
        if plans else math.nan


def by_n(plans: Sequence[PlannedComparison]) -> dict[str, list[PlannedComparison]]:
    """The plans grouped by training-set size, in their order."""
    groups: dict[str, list[PlannedComparison]] = {}
    for p in plans:
        groups.setdefault(p.n_per_class, []).append(p)
    return groups


def seconds_per_seed(plans: Sequence[PlannedComparison], trials_per_seed: int, slots: int) -> dict[str, float]:
    """Wall seconds one more seed costs at each n: its trials at the pilot's mean seconds per trial, `slots` at
    once (NaN where no duration was recorded)."""
    out = {}
    for n, group in by_n(plans).items():
        measured = [p.seconds_per_trial for p in group if math.isfinite(p.seconds_per_trial)]
        out[n] = trials_per_seed * sum(measured) / len(measured) / slots if measured else math.nan
    return out


def allocate(plans: Sequence[PlannedComparison], seconds_per_seed: dict[str, float], budget: float,
             least: int = 3, most: int = MAX_SEEDS, alpha: float = 0.05, power: float = 0.8) -> dict[str, int]:
    """Seeds per n within `budget` seconds that make the worst mde over every n as small as they can (greedy:
    the next seed goes to the n whose worst comparison is least precise, while it fits the budget); every n
    gets at least `least`."""
    groups = by_n(plans)
    seeds = {n: least for n in groups}
    spent = sum(seconds_per_seed[n] * least for n in groups)
    while True:
        worst = {n: worst_mde(group, seeds[n], alpha, power) for n, group in groups.items()
                 if seeds[n] < most and spent + seconds_per_seed[n] <= budget}
        if not worst:
            return seeds
        n = max(worst, key=worst.get)
        seeds[n] += 1
        spent += seconds_per_seed[n]


def plan_comparisons(trials, predictions: dict, durations: dict[str, float], target: float, alpha: float = 0.05,
                     power: float = 0.8, inits: Optional[Sequence[str]] = None,
                     sizes: Optional[Sequence] = None) -> list[PlannedComparison]:
    """Every (n, init − baseline) comparison that the finished trials' test predictions can pair (`inits`,
    `sizes`: their order, default the trials'), Holm's family being all of them, as in the leaderboard."""
    from xfer.analysis.leaderboard import ARM_MATCH, is_baseline
    from xfer.analysis.paired import image_scores
    from xfer.analysis.stats import variance_components

    scores = image_scores(trials, predictions)
    if scores is None:
        return []
    baselines = sorted(trials.loc[trials["strategy"].map(is_baseline), "init"].unique())
    if not baselines:
        return []
    present, sized = set(trials["init"]), set(trials["n_per_class"].astype(str))
    inits = [i for i in (inits or sorted(present)) if i in present and i != baselines[0]]
    sizes = [str(n) for n in (sizes or sorted(sized)) if str(n) in sized]
    family = len(inits) * len(sizes)
    out = []
    for n in sizes:
        at_n = trials["n_per_class"].astype(str) == n
        for init in inits:
            terms = [(at_n & (trials["init"] == init), 1.0), (at_n & (trials["init"] == baselines[0]), -1.0)]
            cells = scores.cells(trials, terms, ARM_MATCH)
            if len(cells) < 2:
                continue
            components = variance_components(cells, scores.images)
            plan = plan_comparison(f"{init} − {baselines[0]}", components, target, alpha, power, comparisons=family)
            runs = trials.loc[at_n & trials["init"].isin([init, baselines[0]]), "run_id"]
            measured = [durations[r] for r in runs if r in durations]
            seconds = float(np.mean(measured)) if measured else math.nan
            out.append(PlannedComparison(n, plan.comparison, plan.pilot_seeds, components.estimate, plan.mde_now,
                                         plan.seeds_needed, plan.floor, seconds, components, family))
    return out
