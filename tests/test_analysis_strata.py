"""Contrasts over strata (training-set sizes) with their own seeds: pooled means and differences of gains."""
import numpy as np
import pandas as pd
import pytest

from xfer.analysis.stats import ImageCell, cluster_effect, image_level_effect
from xfer.analysis.strata import combined_effect, combined_value_effect

IMAGES = pd.DataFrame({"patient": np.repeat(np.arange(40), 2), "label": np.tile([0, 1], 40)})


def stratum(rng, seeds, spread, shared, mean=0.1):
    return [ImageCell((s,), rng.normal(mean, spread), shared + rng.normal(0, 0.5, 80)) for s in range(seeds)]


def test_one_stratum_and_strata_with_the_same_seeds_are_the_paired_contrast_per_seed():
    rng = np.random.default_rng(5)
    shared = rng.normal(0, 1, 80)
    a, b = stratum(rng, 6, 0.08, shared), stratum(rng, 6, 0.02, shared)
    alone = image_level_effect(a, IMAGES)
    assert combined_effect([(1.0, a)], IMAGES) == alone
    per_seed = [ImageCell(x.cluster, (x.estimate + y.estimate) / 2, (x.influence + y.influence) / 2)
                for x, y in zip(a, b)]
    paired, pooled = image_level_effect(per_seed, IMAGES), combined_effect([(0.5, a), (0.5, b)], IMAGES)
    assert (pooled.estimate, pooled.se, pooled.df) == pytest.approx((paired.estimate, paired.se, paired.df))
    assert pooled.pairs == 12


def test_strata_with_their_own_seeds_add_their_seed_parts_and_keep_the_test_set_s_once():
    rng = np.random.default_rng(6)
    shared = rng.normal(0, 1, 80)  # what this test set does to every run
    first, second = stratum(rng, 9, 0.08, shared), stratum(rng, 3, 0.01, shared, mean=0.02)
    a, b = image_level_effect(first, IMAGES), image_level_effect(second, IMAGES)
    d = combined_effect([(1.0, first), (-1.0, second)], IMAGES)
    assert d.estimate == pytest.approx(a.estimate - b.estimate) and d.pairs == 12 and d.clusters == 3
    assert d.se ** 2 < a.se ** 2 + b.se ** 2  # the shared test-set part cancels in a difference
    mean = combined_effect([(0.5, first), (0.5, second)], IMAGES)
    assert mean.estimate == pytest.approx((a.estimate + b.estimate) / 2)  # each n weighs alike, whatever its seeds


def test_a_seed_s_runs_that_move_together_at_two_n_widen_a_pooled_mean_and_narrow_a_difference():
    rng = np.random.default_rng(7)
    shared = rng.normal(0, 0.001, 80)  # small image noise: the seeds dominate
    seed_effect = rng.normal(0, 0.1, 8)
    first = [ImageCell((s,), 0.1 + seed_effect[s] + rng.normal(0, 0.01), shared + rng.normal(0, 0.0005, 80))
             for s in range(8)]
    second = [ImageCell((s,), 0.1 + seed_effect[s] + rng.normal(0, 0.01), shared + rng.normal(0, 0.0005, 80))
              for s in range(5)]
    alone = [combined_effect([(w, first), (w * sign, second)], IMAGES).se for w, sign in ((0.5, 1), (1.0, -1))]
    independent = [combined_effect([(w, first), (w * sign, [ImageCell((s + 100,), c.estimate, c.influence)
                                                           for s, c in enumerate(second)])], IMAGES).se
                   for w, sign in ((0.5, 1), (1.0, -1))]
    assert alone[0] > independent[0] and alone[1] < independent[1]


def test_values_pooled_over_strata_weigh_each_n_alike_and_fall_back_to_the_paired_t():
    same = [(0.5, pd.Series([1.0, 2.0, 3.0], index=[0, 1, 2])), (0.5, pd.Series([2.0, 2.0, 5.0], index=[0, 1, 2]))]
    paired = cluster_effect(np.array([1.5, 2.0, 4.0]), [0, 1, 2], "epochs", resolution=1.0)
    got = combined_value_effect(same, "epochs", resolution=1.0)
    assert (got.estimate, got.se, got.df, got.pairs) == pytest.approx((paired.estimate, paired.se, paired.df, 6))
    unequal = [(0.5, pd.Series([1.0, 2.0, 3.0, 6.0, 8.0], index=range(5))), (0.5, pd.Series([0.0, 1.0, 1.0], index=range(3)))]
    got = combined_value_effect(unequal, "epochs")
    assert got.estimate == pytest.approx((4.0 + 2 / 3) / 2) and got.clusters == 3
    assert 2 <= got.df <= 4 + 2  # each n's spread keeps its own s − 1 df
