"""Statistics behind the verdicts: bootstrap CIs, effect sizes, verdict rules, convergence, ensembles."""
import numpy as np
import pandas as pd
import pytest

from xfer.analysis.convergence import convergence_epochs, epochs_to_fraction_of_best
from xfer.analysis.ensembles import aligned_probabilities, ensemble_rows, val_weights
from xfer.analysis.stats import Effect, bootstrap_ci, cohens_d_paired, decide, paired_effect


def test_bootstrap_ci_is_reproducible_for_a_fixed_seed():
    d = np.random.default_rng(1).normal(0.05, 0.02, size=7)
    assert bootstrap_ci(d, 500, seed=3) == bootstrap_ci(d, 500, seed=3)
    assert bootstrap_ci(d, 500, seed=3) != bootstrap_ci(d, 500, seed=4)
    low, high = bootstrap_ci(d, 2000, seed=0)
    assert low < d.mean() < high


def test_paired_effect_reports_mean_cohens_d_and_ci():
    d = np.array([0.1, 0.2, 0.3, np.nan])
    e = paired_effect(d, 1000, seed=0)
    assert e.n_pairs == 3  # NaN pairs are dropped
    assert e.mean_difference == pytest.approx(0.2)
    assert e.cohens_d == pytest.approx(0.2 / 0.1)
    assert 0.1 <= e.ci_low <= e.ci_high <= 0.3
    assert cohens_d_paired(np.array([0.5])) != cohens_d_paired(np.array([0.5]))  # NaN: undefined for one pair


def effect(low, high, n=5):
    return Effect(n, (low + high) / 2, 1.0, low, high)


def test_verdict_rules_say_why():
    assert decide(effect(0.01, 0.2)) == ("supported", "95% CI [0.01, 0.2] is above zero")
    assert decide(effect(-0.2, -0.01))[0] == "not supported"
    verdict, reason = decide(effect(-0.1, 0.2))
    assert verdict == "inconclusive" and "crosses zero" in reason
    verdict, reason = decide(effect(0.1, 0.2, n=2))
    assert verdict == "inconclusive" and "too few seeds" in reason
    assert decide(effect(-0.02, 0.03), "equivalent", 0.05)[0] == "supported"
    assert decide(effect(0.06, 0.1), "equivalent", 0.05)[0] == "not supported"
    assert decide(effect(-0.01, 0.08), "equivalent", 0.05)[0] == "inconclusive"
    assert decide(effect(-0.04, 0.0), "non_inferior", 0.05)[0] == "supported"
    assert decide(effect(-0.2, -0.1), "non_inferior", 0.05)[0] == "not supported"


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
