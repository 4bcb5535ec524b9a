"""Paired effects with honest intervals, Holm's family-wise adjustment, minimum detectable effects, verdicts.

An image-level effect resamples test patients within class (DeLong influences) and seeds/repeats as clusters;
a cluster effect is a t interval over seed/repeat means. Neither is a percentile bootstrap over a few values.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd
from scipy import stats as st

from xfer.analysis.delong import influence_variance

MIN_CLUSTERS = 3  # fewer seeds/repeats than this cannot support or refute anything
Claim = Literal["greater", "beyond", "non_inferior", "equivalent"]


@dataclass(frozen=True)
class Effect:
    """A paired difference (a − b): estimate, standard error, t interval, and the clusters/images it rests on."""

    estimate: float
    se: float
    df: float
    ci_low: float
    ci_high: float
    clusters: int  # distinct seeds × repeats: the guard counts these, not pairs
    pairs: int  # matched cells (e.g. model × n × seed)
    images: int = 0  # test images (0: not an image-level comparison)
    patients: int = 0
    unit: str = "AUC"
    level: float = 0.95


def t_effect(estimate: float, se: float, df: float, clusters: int, pairs: int, images: int = 0, patients: int = 0,
             unit: str = "AUC", level: float = 0.95) -> Effect:
    """An Effect with its t interval estimate ± t(df) × se."""
    half = st.t.ppf(0.5 + level / 2, df) * se if df > 0 and np.isfinite(se) else float("nan")
    return Effect(float(estimate), float(se), float(df), estimate - half, estimate + half, clusters, pairs, images,
                  patients, unit, level)


def no_effect(unit: str = "AUC") -> Effect:
    """The Effect of a comparison that has no data."""
    return t_effect(float("nan"), float("nan"), 0, 0, 0, unit=unit)


@dataclass(frozen=True)
class ImageCell:
    """One matched contrast (e.g. init a − init b for one model, n and seed) scored on test images."""

    cluster: tuple  # (seed, repeat): what is resampled besides the images
    estimate: float  # the contrast of AUCs
    influence: np.ndarray  # per test image (in the order of `images`), the same contrast of DeLong influences


SEED_PART_CONFIDENCE = 0.8  # the df take the seed excess at this upper limit (measured: bench/RESULTS.md, issue 20)


@dataclass(frozen=True)
class Components:
    """The variance of a mean contrast over seeds, by source: what this test set does to every seed alike
    (`shared`, `image_df` df), each seed's own spread (`per_seed`, s − 1 df; its own image noise included)
    and the part of it that is image noise (`own_noise`, estimated from the images: a floor)."""

    estimate: float
    shared: float
    per_seed: float
    own_noise: float
    image_df: float
    seeds: int

    def variance(self, seeds: int | None = None) -> float:
        """Var of the mean contrast over `seeds` seeds (default: those observed)."""
        k = seeds or self.seeds
        return self.shared + max(self.per_seed, self.own_noise) / k

    def df(self, seeds: int | None = None, confidence: float = SEED_PART_CONFIDENCE) -> float:
        """Satterthwaite df over the shared part plus each seed's image noise (both known from the test images,
        `image_df`) and the seed excess beyond that noise (s − 1 df) at its upper `confidence` limit, so a
        between-seed spread that came out small never buys more df than its s − 1 support. `seeds`: the df a
        study with that many seeds would report, at this per-seed spread (default: those observed)."""
        k = seeds or self.seeds
        if k < 2:
            return self.image_df
        return satterthwaite(self.shared + self.own_noise / k, self.image_df,
                             [(seed_excess(self.per_seed, self.own_noise, k, confidence), k - 1)])


def seed_excess(per_seed: float, own_noise: float, seeds: int, confidence: float = SEED_PART_CONFIDENCE) -> float:
    """The variance a mean over `seeds` seeds owes to the seed spread beyond each seed's own image noise, the
    spread taken at its upper `confidence` limit (s − 1 df); 0 below two seeds."""
    if seeds < 2:
        return 0.0
    upper = per_seed * (seeds - 1) / st.chi2.ppf(1 - confidence, seeds - 1)
    return max(upper - own_noise, 0.0) / seeds


def satterthwaite(images: float, image_df: float, excesses: Sequence[tuple[float, float]],
                  uncertainty: float = 0.0) -> float:
    """Satterthwaite df of an image part (`image_df`) plus seed parts [(variance, df)]; `uncertainty`: the
    sampling variance of further estimated terms (a covariance), which adds to the total's uncertainty; the
    seeds' df alone where no part has variance."""
    total = images + sum(v for v, _ in excesses)
    if total <= 0:
        return float(sum(d for _, d in excesses)) or image_df
    return total ** 2 / (images ** 2 / image_df + sum(v ** 2 / d for v, d in excesses if d > 0) + uncertainty / 2)


def by_cluster(cells: Sequence[ImageCell]) -> dict[tuple, ImageCell]:
    """One cell per seed cluster: the cells of one cluster averaged (e.g. over models)."""
    groups: dict[tuple, list[ImageCell]] = {}
    for cell in cells:
        groups.setdefault(cell.cluster, []).append(cell)
    return {k: ImageCell(k, float(np.mean([c.estimate for c in g])), np.mean([c.influence for c in g], axis=0))
            for k, g in groups.items()}


def image_strata(images: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, float]:
    """(class per image, patient per image, the images' df: patients − classes)."""
    strata, patients = images["label"].to_numpy(), images["patient"].astype(str).to_numpy()
    return strata, patients, float(max(len(np.unique(patients)) - len(np.unique(strata)), 1))


def variance_components(cells: Sequence[ImageCell], images: pd.DataFrame) -> Components:
    """Components of a contrast's seed clusters (cells averaged within a cluster first), by the method of moments:
    test patients resampled within class (DeLong, cluster-robust) and the seed-to-seed spread. `images`: one row
    per test image (columns `patient`, `label`) in the order of the cells' influences."""
    clusters = by_cluster(cells).values()
    estimates = np.array([c.estimate for c in clusters])
    influences = np.array([c.influence for c in clusters])
    strata, patients, image_df = image_strata(images)
    s = len(estimates)
    image_var = influence_variance(influences.mean(0), strata, patients)
    if s < 2:
        return Components(float(estimates.mean()), image_var, 0.0, 0.0, image_df, s)
    own = np.mean([influence_variance(i, strata, patients) for i in influences])
    own_noise = max(own - image_var, 0.0) * s / (s - 1)  # each seed's own image noise
    shared = max(image_var - own_noise / s, 0.0)
    return Components(float(estimates.mean()), shared, float(estimates.var(ddof=1)), own_noise, image_df, s)


def image_level_effect(cells: Sequence[ImageCell], images: pd.DataFrame, level: float = 0.95) -> Effect:
    """Mean contrast over seed clusters with variance from both sources (`variance_components`) and their
    Satterthwaite df, the seed excess at its upper confidence limit (`Components.df`)."""
    c = variance_components(cells, images)
    patients = images["patient"].astype(str).nunique()
    return t_effect(c.estimate, np.sqrt(c.variance()), c.df(), c.seeds, len(cells), len(images), patients,
                    level=level)


def cluster_effect(values: np.ndarray, clusters: Sequence, unit: str, level: float = 0.95,
                   resolution: float = 0.0) -> Effect:
    """Mean of paired differences averaged within each seed/repeat cluster first; t interval over clusters.
    `resolution`: the measurement's step (1 for whole epochs); the spread is never taken below its rounding
    error (step²/12), so identical contrasts are not read as a zero standard error."""
    frame = pd.DataFrame({"value": np.asarray(values, dtype=float), "cluster": list(clusters)}).dropna()
    means = frame.groupby("cluster")["value"].mean().to_numpy()
    s = len(means)
    if s == 0:
        return no_effect(unit)
    se = np.sqrt(max(means.var(ddof=1), resolution ** 2 / 12) / s) if s > 1 else float("nan")
    return t_effect(means.mean(), se, s - 1, s, len(frame), unit=unit, level=level)


def fieller_ratio(numerator: np.ndarray, denominator: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Ratio of means Σa/Σb over paired cluster values with Fieller's interval (unbounded: ±inf)."""
    a, b = np.asarray(numerator, float), np.asarray(denominator, float)
    s = len(a)
    if s < 2 or b.mean() == 0:
        return float("nan"), float("nan"), float("nan")
    ma, mb = a.mean(), b.mean()
    cov = np.cov(a, b, ddof=1) / s
    t2 = st.t.ppf(0.5 + level / 2, s - 1) ** 2
    qa, qb, qc = mb ** 2 - t2 * cov[1, 1], -2 * (ma * mb - t2 * cov[0, 1]), ma ** 2 - t2 * cov[0, 0]
    disc = qb ** 2 - 4 * qa * qc
    if qa <= 0 or disc < 0:
        return float(ma / mb), float("-inf"), float("inf")
    root = np.sqrt(disc)
    return float(ma / mb), float((-qb - root) / (2 * qa)), float((-qb + root) / (2 * qa))


def decision_p(effect: Effect, claim: Claim, margin: float) -> tuple[float, bool]:
    """(two-sided p, supports) for the decision the estimate points to; p < α ⇔ the (1 − α) CI decides.

    greater: against 0. beyond: against +margin (an effect that matters). non_inferior: against −margin. equivalent: two one-sided tests at ±margin (supports),
    or the nearer margin when the estimate lies outside (refutes)."""
    est, se, df = effect.estimate, effect.se, effect.df
    if not np.isfinite(est) or not df > 0 or not se > 0:  # a zero standard error decides nothing
        return float("nan"), False

    def p_beyond(distance: float) -> float:  # two-sided p of a t statistic distance / se
        return float(2 * st.t.sf(abs(distance) / se, df))

    if claim == "greater":
        return p_beyond(est), est > 0
    if claim == "beyond":
        return p_beyond(est - margin), est > margin
    if claim == "non_inferior":
        return p_beyond(est + margin), est > -margin
    if claim == "equivalent":
        if abs(est) < margin:
            return min(1.0, max(p_beyond(est + margin), p_beyond(margin - est))), True
        return p_beyond(abs(est) - margin), False
    raise ValueError(f"unknown claim {claim!r}; use greater, beyond, non_inferior or equivalent")


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error); NaN stays NaN and is not counted."""
    p = np.asarray(p_values, dtype=float)
    out = np.full_like(p, np.nan)
    valid = np.nonzero(~np.isnan(p))[0]
    order = valid[np.argsort(p[valid])]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def minimum_detectable_effect(effect: Effect, alpha: float, power: float) -> float:
    """Smallest true difference found with probability `power` by a two-sided t test at level `alpha`."""
    if not effect.df > 0 or not np.isfinite(effect.se):
        return float("nan")
    return float((st.t.ppf(1 - alpha / 2, effect.df) + st.t.ppf(power, effect.df)) * effect.se)


def decide(effect: Effect, claim: Claim, margin: float, p_adjusted: float, mde: float, power_margin: float,
           alpha: float = 0.05, min_clusters: int = MIN_CLUSTERS, power: float = 0.8) -> tuple[str, str]:
    """(verdict, reason): supported / not supported / inconclusive / underpowered.

    Too few seed/repeat clusters → inconclusive; else the adjusted p of the decision the CI points to: below α
    decides (supported / not supported — a detected effect needs no power argument). A result that decides nothing
    is underpowered when the minimum detectable effect (at `power`) exceeds `power_margin` (a miss says little),
    else inconclusive (an effect as large as the margin would likely have been seen)."""
    unit = effect.unit
    if effect.clusters < min_clusters:
        return "inconclusive", (f"too few seeds: {effect.clusters} seed/repeat cluster(s), need at least "
                                f"{min_clusters} ({effect.pairs} matched pairs)")
    if effect.se == 0:
        return "inconclusive", (f"zero spread: all {effect.clusters} seed/repeat clusters gave the same contrast "
                                f"{effect.estimate:.3g} {unit}; a zero standard error decides nothing")
    ci = f"{effect.level:.0%} CI [{effect.ci_low:.3g}, {effect.ci_high:.3g}] {unit}"
    sample = (f"{effect.images} test images of {effect.patients} patients × {effect.clusters} seeds"
              if effect.images else f"{effect.clusters} seeds, {effect.pairs} pairs")
    _, supports = decision_p(effect, claim, margin)
    adjusted = f"Holm-adjusted p = {p_adjusted:.3g}"
    if not p_adjusted < alpha:
        if not mde <= power_margin:
            return "underpowered", (f"minimum detectable effect {mde:.3g} {unit} ({power:.0%} power) > margin "
                                    f"{power_margin:g} with {sample}; {ci}; {adjusted} ≥ {alpha:g}")
        return "inconclusive", f"{ci}; {adjusted} ≥ {alpha:g}"
    target = {"greater": "0", "beyond": f"+{margin:g} (the smallest effect that matters)", "non_inferior": f"−{margin:g} (non-inferiority margin)",
              "equivalent": f"±{margin:g} (equivalence margin)"}[claim]
    if supports:
        where = "inside" if claim == "equivalent" else "above"
        return "supported", f"{ci} is {where} {target}; {adjusted}"
    where = "outside" if claim == "equivalent" else "below"
    return "not supported", f"{ci} is {where} {target}; {adjusted}"
