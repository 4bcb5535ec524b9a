"""Paired effect sizes, bootstrap confidence intervals and the verdict rules of the hypothesis tests."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

MIN_PAIRS = 3  # fewer paired trials than this cannot support or refute anything
Claim = Literal["greater", "non_inferior", "equivalent"]


@dataclass(frozen=True)
class Effect:
    """Summary of paired differences (a − b): count, mean, Cohen's d_z and a bootstrap CI of the mean."""

    n_pairs: int
    mean_difference: float
    cohens_d: float
    ci_low: float
    ci_high: float
    level: float = 0.95


def bootstrap_ci(differences: np.ndarray, samples: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean; the same seed gives the same interval."""
    d = np.asarray(differences, dtype=float)
    if d.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(samples, d.size))].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def cohens_d_paired(differences: np.ndarray) -> float:
    """Cohen's d for paired data (d_z): mean difference over the SD of the differences."""
    d = np.asarray(differences, dtype=float)
    if d.size < 2:
        return float("nan")
    sd = d.std(ddof=1)
    if sd == 0:
        return float(np.sign(d.mean()) * np.inf) if d.mean() != 0 else 0.0
    return float(d.mean() / sd)


def paired_effect(differences: np.ndarray, samples: int = 2000, seed: int = 0, level: float = 0.95) -> Effect:
    """Effect of paired differences (already a − b, one per matched pair)."""
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    low, high = bootstrap_ci(d, samples, seed, level)
    mean = float(d.mean()) if d.size else float("nan")
    return Effect(int(d.size), mean, cohens_d_paired(d), low, high, level)


def decide(effect: Effect, claim: Claim = "greater", margin: float = 0.0,
           min_pairs: int = MIN_PAIRS) -> tuple[str, str]:
    """(verdict, reason): supported / not supported / inconclusive from the CI of a paired effect.

    greater: CI above 0 supports, CI below 0 refutes. non_inferior: CI above −margin supports,
    CI below −margin refutes. equivalent: CI inside ±margin supports, CI outside it refutes.
    """
    if effect.n_pairs < min_pairs:
        return "inconclusive", f"too few seeds: {effect.n_pairs} paired trial(s), need at least {min_pairs}"
    low, high = effect.ci_low, effect.ci_high
    ci = f"{effect.level:.0%} CI [{low:.3g}, {high:.3g}]"
    if claim == "greater":
        if low > 0:
            return "supported", f"{ci} is above zero"
        if high < 0:
            return "not supported", f"{ci} is below zero: the opposite holds"
        return "inconclusive", f"{ci} crosses zero"
    if claim == "non_inferior":
        if low > -margin:
            return "supported", f"{ci} is above −{margin:g} (non-inferiority margin)"
        if high < -margin:
            return "not supported", f"{ci} is below −{margin:g}: clearly worse"
        return "inconclusive", f"{ci} crosses the non-inferiority margin −{margin:g}"
    if claim == "equivalent":
        if -margin < low and high < margin:
            return "supported", f"{ci} lies within ±{margin:g} (equivalence margin)"
        if low > margin or high < -margin:
            return "not supported", f"{ci} lies outside ±{margin:g}: a real difference"
        return "inconclusive", f"{ci} crosses the equivalence margin ±{margin:g}"
    raise ValueError(f"unknown claim {claim!r}; use greater, non_inferior or equivalent")
