"""Statistics behind the verdicts: DeLong against a reference, Holm, t intervals, verdict rules, convergence,
ensembles."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from xfer.analysis.convergence import (collapsed, convergence_epochs, epochs_to_fraction_of_best,
                                      epochs_to_own_plateau)
from xfer.analysis.delong import auc_influence, influence_variance, placements
from xfer.analysis.ensembles import aligned_probabilities, ensemble_rows, val_weights
from xfer.analysis.stats import (cluster_effect, decide, decision_p, fieller_ratio, holm, minimum_detectable_effect,
                                 t_effect)


def reference_delong(positive, negative):
    """O(m·n) DeLong: placements from pairwise comparisons, variance S10/m + S01/n (DeLong et al. 1988)."""
    psi = (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])
    v10, v01 = psi.mean(1), psi.mean(0)
    return psi.mean(), v10, v01, v10.var(ddof=1) / len(positive) + v01.var(ddof=1) / len(negative)


def test_fast_delong_matches_the_pairwise_reference_with_ties():
    rng = np.random.default_rng(0)
    positive, negative = rng.integers(0, 6, 17).astype(float), rng.integers(0, 5, 23).astype(float)
    auc, v10, v01 = placements(positive, negative)
    ref_auc, ref10, ref01, ref_var = reference_delong(positive, negative)
    assert auc == pytest.approx(ref_auc) and np.allclose(v10, ref10) and np.allclose(v01, ref01)
    labels = np.r_[np.ones(17), np.zeros(23)].astype(int)
    scores = np.r_[positive, negative] / 10
    auc, influence = auc_influence(labels, np.c_[1 - scores, scores], positive=1)
    assert auc == pytest.approx(roc_auc_score(labels, scores))
    one_patient_each = np.arange(len(labels))
    assert influence_variance(influence, labels, one_patient_each) == pytest.approx(ref_var)


def test_auc_influence_is_the_macro_one_vs_rest_auc_for_three_classes():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60) + np.eye(3)[labels] * 0.3
    auc, influence = auc_influence(labels, probs, positive=2)
    assert auc == pytest.approx(np.mean([roc_auc_score(labels == k, probs[:, k]) for k in range(3)]))
    assert influence.shape == (60,) and abs(influence.sum()) < 1e-9  # centred


def test_influence_variance_sums_a_patients_images_before_resampling():
    influence = np.array([0.1, 0.1, -0.1, -0.1])
    strata = np.array([0, 0, 0, 0])
    assert influence_variance(influence, strata, np.array(["a", "a", "b", "b"])) == pytest.approx(2 * 0.2 ** 2 * 2 / 1)
    assert influence_variance(influence, strata, np.array(["a", "b", "c", "d"])) == pytest.approx(4 / 3 * 0.04)


def test_holm_matches_the_step_down_definition():
    adjusted = holm([0.01, 0.04, 0.03, np.nan, 0.2])
    assert np.allclose(adjusted[[0, 2, 1, 4]], [0.04, 0.09, 0.09, 0.2]) and np.isnan(adjusted[3])


def test_cluster_effect_averages_within_seeds_then_uses_a_t_interval():
    e = cluster_effect(np.array([1.0, 3.0, 2.0, 4.0, 6.0, 8.0]), [(0,), (0,), (1,), (1,), (2,), (2,)], "epochs")
    assert (e.clusters, e.pairs, e.df, e.estimate) == (3, 6, 2, 4.0)  # cluster means 2, 3, 7
    assert e.se == pytest.approx(np.std([2, 3, 7], ddof=1) / np.sqrt(3))
    assert e.ci_low == pytest.approx(4 - 4.302653 * e.se, rel=1e-5)


def test_fieller_ratio_is_bounded_only_when_the_denominator_is_clearly_nonzero():
    share, low, high = fieller_ratio(np.array([1.0, 1.2, 0.9, 1.1]), np.array([2.0, 2.1, 1.9, 2.0]))
    assert share == pytest.approx(4.2 / 8) and low < share < high
    assert fieller_ratio(np.array([1.0, -1.0, 0.5]), np.array([1.0, -1.0, 0.2]))[1:] == (float("-inf"), float("inf"))


def effect(estimate, se=0.01, clusters=5, df=20):
    return t_effect(estimate, se, df, clusters, clusters)


def verdict(e, claim="greater", margin=0.0, power_margin=0.05):
    p, _ = decision_p(e, claim, margin)
    return decide(e, claim, margin, p, minimum_detectable_effect(e, 0.05, 0.8), power_margin)


def test_verdict_rules_say_why():
    assert verdict(effect(0.05))[0] == "supported" and "above 0" in verdict(effect(0.05))[1]
    assert verdict(effect(-0.05))[0] == "not supported"
    assert verdict(effect(0.01))[0] == "inconclusive"
    assert verdict(effect(0.02), "equivalent", 0.05)[0] == "supported"
    assert verdict(effect(0.09), "equivalent", 0.05)[0] == "not supported"
    assert verdict(effect(0.04), "equivalent", 0.05)[0] == "inconclusive"
    assert verdict(effect(-0.01), "non_inferior", 0.05)[0] == "supported"
    assert verdict(effect(-0.1), "non_inferior", 0.05)[0] == "not supported"


def test_guard_counts_seed_clusters_not_pairs():
    many_pairs_one_seed = t_effect(0.2, 0.01, 20, clusters=1, pairs=9)
    v, reason = verdict(many_pairs_one_seed)
    assert v == "inconclusive" and reason.startswith("too few seeds: 1 seed/repeat cluster(s)")


def test_a_minimum_detectable_effect_above_the_margin_is_underpowered_with_the_numbers():
    e = t_effect(0.3, 0.08, 2, clusters=3, pairs=3, images=13, patients=13)
    v, reason = verdict(e)
    assert v == "underpowered"
    assert "minimum detectable effect" in reason and "13 test images" in reason and "3 seeds" in reason


def test_underpowered_reason_names_the_configured_power():
    e = t_effect(0.3, 0.08, 2, clusters=3, pairs=3, images=13, patients=13)
    p, _ = decision_p(e, "greater", 0)
    v, reason = decide(e, "greater", 0, p, minimum_detectable_effect(e, 0.05, 0.9), 0.05, power=0.9)
    assert v == "underpowered" and "(90% power)" in reason and "80%" not in reason


def test_adjusted_p_decides_not_the_raw_one():
    e = effect(0.025)
    p, supports = decision_p(e, "greater", 0)
    assert supports and p < 0.05
    assert decide(e, "greater", 0, min(1, 10 * p), 0.04, 0.05)[0] == "inconclusive"


def test_speed_is_measured_to_each_run_s_own_plateau_and_runs_that_never_learned_are_left_out():
    e = [1, 2, 3, 4]
    h = pd.DataFrame({"run_id": ["flat"] * 4 + ["high"] * 4 + ["low"] * 4, "metric": "val_auc", "epoch": e * 3,
                      "value": [0.5, 0.51, 0.5, 0.49, 0.6, 0.8, 0.91, 0.95, 0.55, 0.65, 0.705, 0.725]})
    trials = pd.DataFrame({"run_id": ["flat", "high", "low"], "best_val_auc": [0.51, 0.95, 0.725],
                           "param.n_val": "200"})
    out = epochs_to_own_plateau(h, trials).set_index("run_id")
    assert out.loc["high", "epochs_to_target"] == 3 == out.loc["low", "epochs_to_target"]  # same shape, lower level
    assert np.isnan(out.loc["flat", "epochs_to_target"]) and not out.loc["flat", "learned"]
    assert list(collapsed(trials)) == [True, False, False]
    assert epochs_to_fraction_of_best([1, 2, 3, 4], [0.5] * 4, 0.9) == 1  # why the fraction-of-best measure misleads


def test_identical_contrasts_are_not_decided_by_a_zero_standard_error():
    e = cluster_effect(np.array([2.0, 2.0, 2.0]), [(0,), (1,), (2,)], "epochs")
    assert e.se == 0 and np.isnan(decision_p(e, "greater", 0)[0])
    assert decide(e, "greater", 0, float("nan"), 0.0, 1.0)[0] == "inconclusive"
    rounded = cluster_effect(np.array([2.0, 2.0, 2.0]), [(0,), (1,), (2,)], "epochs", resolution=1.0)
    assert rounded.se == pytest.approx(np.sqrt(1 / 12 / 3)) and rounded.ci_low < 2 < rounded.ci_high


def test_a_beyond_claim_is_supported_only_past_its_margin():
    tiny = t_effect(0.0016, 0.0004, 7, clusters=8, pairs=8, unit="CKA")
    assert decision_p(tiny, "greater", 0)[0] < 0.01  # a negligible Δ is "significant" against 0 ...
    p, supports = decision_p(tiny, "beyond", 0.05)
    assert not supports and decide(tiny, "beyond", 0.05, p, 0.001, 0.05)[0] == "not supported"  # ... not past 0.05
    assert decision_p(t_effect(0.2, 0.02, 7, 8, 8), "beyond", 0.05)[1]


def test_epochs_to_fraction_of_best_counts_from_the_first_epoch():
    values = [0.5, 0.8, 0.88, 0.95, 0.9]
    assert epochs_to_fraction_of_best([1, 2, 3, 4, 5], values, 0.8) == 2  # 0.8 ≥ 0.8 × 0.95
    assert epochs_to_fraction_of_best([1, 2, 3, 4, 5], values, 0.9) == 3  # 0.88 ≥ 0.9 × 0.95
    assert epochs_to_fraction_of_best([1, 2, 3, 4, 5], values, 0.95) == 4
    assert epochs_to_fraction_of_best([3, 1, 2], [0.9, 0.2, float("nan")], 0.5) == 3  # unordered, NaN skipped
    assert np.isnan(epochs_to_fraction_of_best([], [], 0.9))


def test_convergence_epochs_one_row_per_run():
    h = pd.DataFrame({"run_id": ["a"] * 3 + ["b"] * 3, "metric": "val_auc", "epoch": [1, 2, 3] * 2,
                      "value": [0.5, 0.9, 1.0, 0.95, 0.97, 1.0]})
    out = convergence_epochs(h).set_index("run_id")
    assert out.loc["a", "epochs_to_90"] == 2 and out.loc["b", "epochs_to_90"] == 1
    assert out.loc["a", "epochs_to_95"] == 3


def predictions(probs_covid, labels, index=None):
    p = np.asarray(probs_covid)
    return pd.DataFrame({"index": index if index is not None else range(len(p)), "patient_id": "x",
                         "label": labels, "prob_normal": 1 - p, "prob_covid": p})


def test_ensembles_score_members_and_combinations_on_the_same_images():
    labels = [0, 0, 1, 1]
    members = pd.DataFrame({"init": ["random", "imagenet"], "model": "cbr_tiny", "seed": 0,
                            "best_val_auc": [0.6, 0.9]})
    preds = [predictions([0.2, 0.6, 0.4, 0.9], labels), predictions([0.1, 0.3, 0.7, 0.8], labels)]
    rows = pd.DataFrame(ensemble_rows(members, preds, ("normal", "covid"), positive=1)).set_index("member")
    assert rows.loc["random / cbr_tiny (seed 0)", "test_auc"] == 0.75
    assert rows.loc["imagenet / cbr_tiny (seed 0)", "test_auc"] == 1.0
    assert rows.loc["imagenet / cbr_tiny (seed 0)", "weight"] == pytest.approx(0.4 / 0.5)
    assert set(rows["kind"]) == {"member", "ensemble"} and len(rows) == 4
    np.testing.assert_allclose(val_weights(np.array([0.4, 0.5])), [0.5, 0.5])  # nobody beats chance
    with pytest.raises(ValueError, match="different test images"):
        aligned_probabilities([preds[0], predictions([0.1] * 4, labels, index=[4, 5, 6, 7])], ("normal", "covid"))


def test_a_detected_effect_is_decided_even_when_the_mde_exceeds_the_margin():
    clear = t_effect(0.14, 0.025, 7, clusters=8, pairs=8, images=624, patients=624)
    p, _ = decision_p(clear, "greater", 0)
    mde = minimum_detectable_effect(clear, 0.05, 0.8)
    assert mde > 0.05 and p < 0.05
    assert decide(clear, "greater", 0, p, mde, 0.05)[0] == "supported"
    against = t_effect(-0.14, 0.025, 7, clusters=8, pairs=8, images=624, patients=624)
    p, _ = decision_p(against, "greater", 0)
    assert decide(against, "greater", 0, p, mde, 0.05)[0] == "not supported"

