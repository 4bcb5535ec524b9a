"""How many seeds a comparison needs: its variance components from finished runs → minimum detectable effect at
k seeds, and the fewest seeds that reach a target (the core of `xfer plan`; pure functions, no I/O)."""
from __future__ import annotations

from dataclasses import dataclass

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
