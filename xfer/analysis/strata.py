"""Effects that combine strata with their own seeds: Σ weight × (a stratum's mean contrast over its own seeds).

A stratum is one training-set size: a pooled comparison is the mean over n of each n's contrast (weights 1/N), the
change of a gain with n is the gain at the small n minus the gain at the large one (+1, −1). A study may give each n
its own seeds, so each stratum is averaged over all of its own; where every stratum has the same seeds this is one
paired contrast per seed, as before. Otherwise the strata's seed parts add, with the covariance their shared seeds
show (a seed's runs at two n may move together), and the test set's shared part is that of the combination; each
stratum's seed excess keeps its own s − 1 df (`stats.Components.df`).
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Sequence

import numpy as np
import pandas as pd

from xfer.analysis.delong import influence_variance
from xfer.analysis.stats import (Effect, ImageCell, by_cluster, cluster_effect, image_level_effect, image_strata,
                                 no_effect, satterthwaite, seed_excess, t_effect, variance_components)

Stratum = tuple[float, Sequence[ImageCell]]  # (weight, one stratum's matched cells)
ValueStratum = tuple[float, pd.Series]  # (weight, one stratum's contrast values indexed by seed cluster)


def covariance_part(weights: Sequence[float], means: Sequence[dict]) -> tuple[float, float]:
    """(Var the seeds strata share contribute: Σ_{i<j} 2 w_i w_j cov_ij × shared_ij / (k_i k_j), the sampling
    variance of that estimate: Var(cov) ≈ (cov² + s_i² s_j²) / (shared − 1)); 0 below two shared seeds."""
    total, uncertainty = 0.0, 0.0
    for (wi, mi), (wj, mj) in itertools.combinations(zip(weights, means), 2):
        common = sorted(set(mi) & set(mj), key=str)
        if len(common) < 2:
            continue
        a, b = np.array([mi[k] for k in common]), np.array([mj[k] for k in common])
        cov = float(np.cov(a, b, ddof=1)[0, 1])
        scale = 2 * wi * wj * len(common) / (len(mi) * len(mj))
        total += scale * cov
        spread = np.var(list(mi.values()), ddof=1) * np.var(list(mj.values()), ddof=1)
        uncertainty += scale ** 2 * (cov ** 2 + spread) / (len(common) - 1)
    return total, uncertainty


def combined_effect(strata: Sequence[Stratum], images: pd.DataFrame, level: float = 0.95) -> Effect:
    """Σ weight × mean contrast of each stratum over its own seed clusters, scored on the same test images."""
    strata = [(w, cells) for w, cells in strata if len(cells)]
    if not strata:
        return no_effect()
    pairs = sum(len(cells) for _, cells in strata)
    per = [by_cluster(cells) for _, cells in strata]
    weights = [w for w, _ in strata]
    if len({frozenset(p) for p in per}) == 1:  # the same seeds everywhere: one paired contrast per seed
        cells = [ImageCell(k, sum(w * p[k].estimate for w, p in zip(weights, per)),
                           sum(w * p[k].influence for w, p in zip(weights, per))) for k in per[0]]
        return dataclasses.replace(image_level_effect(cells, images, level), pairs=pairs)
    parts = [variance_components(cells, images) for _, cells in strata]
    labels, patients, image_df = image_strata(images)
    influence = sum(w * np.mean([c.influence for c in p.values()], axis=0) for w, p in zip(weights, per))
    own = sum(w ** 2 * c.own_noise / c.seeds for w, c in zip(weights, parts))  # each run's own image noise
    shared = max(influence_variance(influence, labels, patients) - own, 0.0)
    seeds = sum(w ** 2 * max(c.per_seed, c.own_noise) / c.seeds for w, c in zip(weights, parts))
    covariance, uncertainty = covariance_part(weights, [{k: c.estimate for k, c in p.items()} for p in per])
    seeds += covariance
    df = satterthwaite(shared + own, image_df, [(w ** 2 * seed_excess(c.per_seed, c.own_noise, c.seeds), c.seeds - 1)
                                                for w, c in zip(weights, parts)], uncertainty)
    return t_effect(sum(w * c.estimate for w, c in zip(weights, parts)), np.sqrt(shared + max(seeds, own)), df,
                    min(c.seeds for c in parts), pairs, len(images), images["patient"].astype(str).nunique(),
                    level=level)


def combined_value_effect(strata: Sequence[ValueStratum], unit: str, level: float = 0.95,
                          resolution: float = 0.0) -> Effect:
    """`combined_effect` for per-trial values (epochs, CKA): t over seed clusters, each stratum's spread never
    below the measurement's rounding error (step²/12) and its own s − 1 df."""
    strata = [(w, values.dropna()) for w, values in strata]
    strata = [(w, values) for w, values in strata if len(values)]
    if not strata:
        return no_effect(unit)
    pairs = sum(len(values) for _, values in strata)
    per = [values.groupby(level=0).mean() for _, values in strata]
    weights = [w for w, _ in strata]
    if len({frozenset(p.index) for p in per}) == 1:
        merged = sum(w * p for w, p in zip(weights, per))
        return dataclasses.replace(cluster_effect(merged.to_numpy(), list(merged.index), unit, level, resolution),
                                   pairs=pairs)
    floor = resolution ** 2 / 12
    spread = [max(p.var(ddof=1), floor) if len(p) > 1 else float("nan") for p in per]
    parts = [w ** 2 * v / len(p) for w, v, p in zip(weights, spread, per)]
    covariance, uncertainty = covariance_part(weights, [p.to_dict() for p in per])
    variance = max(sum(parts) + covariance, sum(w ** 2 * floor / len(p) for w, p in zip(weights, per)))
    df = satterthwaite(0.0, 1.0, [(v, len(p) - 1) for v, p in zip(parts, per)], uncertainty)
    return t_effect(sum(w * p.mean() for w, p in zip(weights, per)), np.sqrt(variance), df,
                    min(len(p) for p in per), pairs, unit=unit, level=level)
