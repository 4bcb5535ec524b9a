"""The real hypothesis tests on simulated studies with a planted truth: error rate, power and coverage.

A study scores the same test images (patients with one or two images) with two inits × two n × seeds. Scores are
binormal: label × (separation + seed effect) + patient + image + image×init interaction + noise, so the true AUC
of an init averaged over seeds is Φ(separation / τ) and the planted AUC difference is known exactly.
"""
import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import roc_auc_score

from xfer.analysis.hypotheses import evaluate_hypotheses, verdict_table
from xfer.analysis.probes import CKA_COLUMNS
from xfer.config import AnalysisConfig

SD = {"patient": 0.6, "image": 0.5, "interaction": 0.5, "noise": 0.5, "seed": 0.25}
TAU = np.sqrt(2 * sum(SD[k] ** 2 for k in ("patient", "image", "interaction", "noise")) + SD["seed"] ** 2)
NO_CKA = pd.DataFrame(columns=CKA_COLUMNS)
DECISIVE = ("supported", "not supported")


def separation(auc: float) -> float:
    """The label coefficient whose seed-averaged population AUC is `auc`."""
    return TAU * norm.ppf(auc)


def simulate(rng, images: int, seeds: int, delta: float, base: float = 0.65):
    """(trials, predictions) of a study whose pretrained − random AUC difference is `delta` at every n."""
    patients = np.repeat(np.arange(images), rng.integers(1, 3, images))[:images]
    labels = (rng.random(patients.max() + 1) < 0.4).astype(int)[patients]
    shared = rng.normal(0, SD["patient"], patients.max() + 1)[patients] + rng.normal(0, SD["image"], images)
    rows, predictions = [], {}
    for n in ("5", "50"):
        for init, auc in (("random", base), ("imagenet", base + delta)):
            interaction = rng.normal(0, SD["interaction"], images)  # the same images favour one init
            for seed in range(seeds):
                score = (labels * (separation(auc) + rng.normal(0, SD["seed"])) + shared + interaction
                         + rng.normal(0, SD["noise"], images))
                prob = 1 / (1 + np.exp(-score))
                run = f"{init}|{n}|{seed}"
                predictions[run] = pd.DataFrame({"index": np.arange(images), "patient_id": patients, "label": labels,
                                                 "prob_normal": 1 - prob, "prob_covid": prob})
                rows.append({"run_id": run, "init": init, "strategy": init, "model": "cbr_tiny", "n_per_class": n,
                             "seed": seed, "param.init.source": "none" if init == "random" else "stage:natural"})
    return pd.DataFrame(rows), predictions


def h1_verdicts(studies: int, images: int, seeds: int, delta: float, cfg: AnalysisConfig, seed: int = 0):
    """H1's two comparisons (gain at small n, and its change with n) of `studies` simulated studies."""
    rng = np.random.default_rng(seed)
    out = []
    for study in range(studies):
        trials, predictions = simulate(rng, images, seeds, delta)
        table = verdict_table(evaluate_hypotheses(trials, NO_CKA, cfg, predictions))
        out.append(table[table["hypothesis"] == "H1"].assign(study=study))
    table = pd.concat(out, ignore_index=True)
    truth = np.where(table["comparison"].str.startswith("gain"), 0.0, delta)
    return table.assign(covered=(table["ci_low"] <= truth) & (truth <= table["ci_high"]))


def rates(table: pd.DataFrame) -> dict:
    decisive = table["verdict"].isin(DECISIVE)
    return {"decisive": decisive.mean(), "any_decisive_per_study": decisive.groupby(table["study"]).any().mean(),
            "supported": (table["verdict"] == "supported").mean(), "coverage": table["covered"].mean(),
            "mde": table["mde"].median()}


def check_no_effect(studies: int):
    # margin 1: no comparison is excused as underpowered, so this measures the test itself
    table = h1_verdicts(studies, images=60, seeds=3, delta=0.0, cfg=AnalysisConfig(equivalence_margin=1.0))
    r = rates(table)
    print("no effect, 60 images × 3 seeds:", r)
    # 3 seeds: only the seed spread beyond each seed's image noise rests on the 2 seed df (its upper 80% limit);
    # measured over 1,000 studies: coverage 0.964 (0.9865 when the whole spread was held at its 90% limit),
    # decisive 0.021 per comparison, 0.035 per study. 200 studies pin coverage only to ±0.02.
    assert r["decisive"] <= 0.05 and 0.93 <= r["coverage"] <= (0.97 if studies >= 1000 else 0.99)
    if studies >= 1000:  # Holm's family-wise rate needs more studies to be pinned below 5%
        assert r["any_decisive_per_study"] <= 0.05


def check_planted_effect(studies: int):
    cfg = AnalysisConfig(equivalence_margin=0.15)
    pilot = h1_verdicts(15, images=300, seeds=8, delta=0.0, cfg=cfg, seed=1)
    mde = pilot.loc[pilot["comparison"].str.contains("test AUC at"), "mde"].median()  # the reported MDE
    table = h1_verdicts(studies, images=300, seeds=8, delta=2 * mde, cfg=cfg, seed=2)
    r = rates(table[table["comparison"].str.contains("test AUC at")])
    print(f"planted effect 2 × mde = {2 * mde:.3f}, 300 images × 8 seeds:", r, "coverage of both:",
          table["covered"].mean())
    assert r["mde"] <= 0.15 and r["supported"] >= 0.8
    if studies >= 200:  # fewer intervals cannot pin coverage to ±0.02
        assert 0.93 <= table["covered"].mean() <= 0.97


def test_no_effect_with_an_image_by_init_interaction_is_rarely_decisive_and_intervals_cover():
    check_no_effect(200)


def test_a_planted_effect_of_twice_the_reported_mde_is_supported():
    check_planted_effect(30)


def test_the_small_study_design_is_reported_underpowered_with_its_numbers():
    trials, predictions = simulate(np.random.default_rng(3), images=13, seeds=3, delta=0.2)
    row = verdict_table(evaluate_hypotheses(trials, NO_CKA, AnalysisConfig(), predictions)).iloc[0]
    assert row["verdict"] == "underpowered" and row["mde"] > 0.05
    assert "13 test images" in row["reason"] and "× 3 seeds" in row["reason"]


@pytest.mark.slow
def test_no_effect_over_a_thousand_studies():
    check_no_effect(1000)


@pytest.mark.slow
def test_planted_effect_over_five_hundred_studies():
    check_planted_effect(500)


def test_a_sweep_study_pairs_trials_within_their_swept_values():
    rng = np.random.default_rng(3)
    parts = [simulate(rng, 40, 3, 0.1) for _ in range(2)]
    trials = pd.concat([t.assign(run_id=t["run_id"] + f"|lr={lr}", **{"param.train.lr": lr})
                        for (t, _), lr in zip(parts, ("0.001", "0.01"))], ignore_index=True)
    predictions = {f"{run}|lr={lr}": p for (_, preds), lr in zip(parts, ("0.001", "0.01")) for run, p in preds.items()}
    table = verdict_table(evaluate_hypotheses(trials, NO_CKA, AnalysisConfig(), predictions))  # never pools two lr runs
    h1 = table[table["hypothesis"] == "H1"]
    assert len(h1) == 2 and (h1["test_images"] == 40).all() and h1["estimate"].notna().all()


def test_the_change_of_the_gain_with_n_rests_on_every_seed_of_each_n():
    trials, predictions = simulate(np.random.default_rng(4), images=120, seeds=8, delta=0.1)
    keep = (trials["n_per_class"] == "5") | (trials["seed"] < 3)  # 8 seeds at n = 5, 3 at n = 50
    trials = trials[keep].reset_index(drop=True)
    table = verdict_table(evaluate_hypotheses(trials, NO_CKA, AnalysisConfig(), predictions)).set_index("comparison")
    auc = {r: roc_auc_score(p["label"], p["prob_covid"]) for r, p in predictions.items()}

    def gain(n, seeds):
        return np.mean([auc[f"imagenet|{n}|{s}"] - auc[f"random|{n}|{s}"] for s in range(seeds)])

    row = table.loc["gain of imagenet at n=5 − gain at n=50"]
    assert row["estimate"] == pytest.approx(gain("5", 8) - gain("50", 3))
    assert row["pairs"] == 8 + 3 and row["seeds"] == 3  # the guard counts the fewer side's seeds
    assert table.loc["imagenet − random, test AUC at n=5", "pairs"] == 8
