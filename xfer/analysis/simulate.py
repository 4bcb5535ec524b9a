"""Simulated studies with a population truth: the planted effects the report's inference is validated against.

Each study draws a fresh test set from a patient population (1–4 images per patient, one label per patient) and
scores it with every run: label × (separation + seed effect) + patient + image + patient×init + image×init + noise.
A run collapses (never learns: AUC and validation AUC ≈ 0.5) with a set probability. The population AUC of an arm
averaged over seeds and test sets is then known exactly: (1 − collapse) × auc + collapse × 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import norm

from xfer.analysis.delong import auc_influence

SOURCES = {"random": "none", "imagenet": "stage:natural", "meanvar": "stage:natural",
           "chexpert": "stage:xray_intermediate", "grayscale_imagenet": "stage:grayscale_natural"}


@dataclass(frozen=True)
class Arm:
    """One init at one n: population AUC of a run that learned, seed-to-seed SD (AUC units), collapse rate,
    and its validation curve (epochs' time constant; plateau offset above its test AUC)."""

    auc: float
    seed_sd: float = 0.02
    collapse: float = 0.0
    speed: float = 2.0
    plateau_shift: float = 0.0

    def truth(self) -> float:
        return (1 - self.collapse) * self.auc + self.collapse * 0.5


@dataclass(frozen=True)
class Components:
    """Score-scale SDs of what the test set and the init share across runs, and of per-run noise."""

    patient: float = 0.6
    image: float = 0.5
    patient_init: float = 0.3
    image_init: float = 0.4
    noise: float = 0.5

    def tau(self) -> float:
        """SD of the non-label score difference of a positive and a negative image."""
        return float(np.sqrt(2 * (self.patient ** 2 + self.image ** 2 + self.patient_init ** 2
                                  + self.image_init ** 2 + self.noise ** 2)))


@dataclass(frozen=True)
class Design:
    """A study: arms per init label (its strategy) and n; seeds; test images (or, cross-validated, the data set
    scored out-of-fold by `folds` × `repeats`); validation epochs."""

    arms: dict  # init → {n: Arm}
    seeds: int = 8
    test_images: int = 624
    folds: int = 0  # 0: one fixed test split
    repeats: int = 1
    prevalence: float = 0.4
    epochs: int = 12
    components: Components = field(default_factory=Components)
    model: str = "cbr_tiny"

    def truth(self, init: str, n: str) -> float:
        return self.arms[init][n].truth()


def test_population(rng, images: int, prevalence: float) -> tuple[np.ndarray, np.ndarray]:
    """(patient of each image, label of each image): patients with 1–4 images each until `images` are drawn."""
    per_patient = rng.integers(1, 5, images)
    patients = np.repeat(np.arange(images), per_patient)[:images]
    labels = (rng.random(images) < prevalence).astype(int)[patients]
    if labels.min() == labels.max():
        labels[: max(1, images // 10)] = 1 - labels[0]
        labels[patients == patients[0]] = labels[0]
    return patients, labels


def history(rng, arm: Arm, final: float, collapsed: bool, epochs: int) -> np.ndarray:
    """Validation AUC per epoch: a saturating curve to the run's plateau (0.5 throughout when it collapsed)."""
    e = np.arange(1, epochs + 1)
    noise = rng.normal(0, 0.005, epochs)
    if collapsed:
        return 0.5 + noise
    plateau = min(final + arm.plateau_shift, 0.999)
    return np.clip(0.5 + (plateau - 0.5) * (1 - np.exp(-e / arm.speed)) + noise, 0, 1)


def simulate_study(rng, design: Design) -> tuple[pd.DataFrame, dict[str, pd.DataFrame], pd.DataFrame]:
    """(trials, predictions by run_id, val-AUC histories) of one simulated study."""
    c = design.components
    tau = c.tau()
    images = design.test_images
    patients, labels = test_population(rng, images, design.prevalence)
    n_patients = patients.max() + 1
    shared = rng.normal(0, c.patient, n_patients)[patients] + rng.normal(0, c.image, images)
    folds = fold_assignment(rng, patients, design)
    rows, predictions, curves = [], {}, []
    for init, by_n in design.arms.items():
        for n, arm in by_n.items():
            interaction = rng.normal(0, c.patient_init, n_patients)[patients] + rng.normal(0, c.image_init, images)
            base = norm.ppf(arm.auc)
            seed_sd = arm.seed_sd / norm.pdf(base)  # AUC units → units of the separation / τ
            separation = tau * base * np.sqrt(1 + seed_sd ** 2)  # so that E over seeds of Φ(.) = auc
            for seed in range(design.seeds):
                for repeat, fold, index in folds:
                    collapsed = rng.random() < arm.collapse
                    effect = 0.0 if collapsed else separation + tau * seed_sd * rng.normal()
                    score = labels * effect + shared + interaction + rng.normal(0, c.noise, images)
                    prob = 1 / (1 + np.exp(-score[index]))
                    run = f"{init}|{n}|{seed}|{repeat}|{fold}"
                    frame = pd.DataFrame({"index": index, "patient_id": patients[index], "label": labels[index],
                                          "prob_normal": 1 - prob, "prob_covid": prob})
                    predictions[run] = frame
                    auc = auc_influence(labels[index], np.c_[1 - prob, prob], 1)[0]
                    mean_auc = 0.5 if collapsed else norm.cdf(effect / tau)
                    curve = history(rng, arm, mean_auc, collapsed, design.epochs)
                    curves.append(pd.DataFrame({"run_id": run, "metric": "val_auc",
                                                "epoch": np.arange(1, design.epochs + 1), "value": curve}))
                    row = {"run_id": run, "init": init, "strategy": init, "model": design.model,
                           "n_per_class": n, "seed": seed, "test_auc": auc, "best_val_auc": float(curve.max()),
                           "param.n_test": str(len(index)), "param.init.source": SOURCES.get(init, "stage:natural")}
                    if design.folds:
                        row.update(repeat=repeat, fold=fold)
                    rows.append(row)
    return pd.DataFrame(rows), predictions, pd.concat(curves, ignore_index=True)


def fold_assignment(rng, patients: np.ndarray, design: Design) -> list[tuple[int, int, np.ndarray]]:
    """(repeat, fold, test images) of every run of an arm: the whole test set once, or patient-level folds."""
    everything = np.arange(len(patients))
    if not design.folds:
        return [(0, 0, everything)]
    out = []
    unique = np.unique(patients)
    for repeat in range(design.repeats):
        fold_of = dict(zip(rng.permutation(unique), np.arange(len(unique)) % design.folds))
        which = np.array([fold_of[p] for p in patients])
        out += [(repeat, fold, everything[which == fold]) for fold in range(design.folds)]
    return out


NULL_INITS = ("random", "imagenet", "chexpert", "meanvar")  # baseline, natural and x-ray source, mean-var control
DECISIVE = ("supported", "not supported")
NO_CKA = pd.DataFrame(columns=["run_id", "model", "depth", "cka"])
BETTER_WORSE = ("better", "worse")


def null_design(seeds: int, test_images: int = 624, folds: int = 0, repeats: int = 1,
                effect: dict | None = None, plateau: dict | None = None,
                inits: tuple[str, ...] = NULL_INITS) -> Design:
    """Every init alike at n = 5 (seed-dominated: seed SD 0.08 AUC, 10% of runs never learn) and n = 80
    (test-set-dominated: seed SD 0.012); `effect` adds {n: Δ AUC} to imagenet, `plateau` {n: Δ AUC} to
    imagenet at the same speed (only its plateau is higher). Cross-validated designs use one n (20)."""
    effect, plateau = effect or {}, plateau or {}
    ns = {"20": (0.72, 0.04, 0.05)} if folds else {"5": (0.70, 0.08, 0.1), "80": (0.85, 0.012, 0.0)}
    arms = {init: {n: Arm(auc + (effect.get(n, 0) + plateau.get(n, 0)) * (init == "imagenet"), sd, collapse)
                   for n, (auc, sd, collapse) in ns.items()} for init in inits}
    return Design(arms, seeds=seeds, test_images=test_images, folds=folds, repeats=repeats)


def comparison_truth(design: Design, comparison: str) -> float:
    """The population value of a hypothesis comparison or leaderboard Δ named as the report names it."""
    import re

    speed = "epochs" in comparison or "CKA" in comparison
    if speed:
        return 0.0  # every simulated arm has the same speed
    pair = re.match(r"(\w+) − (\w+)", comparison)
    if comparison.startswith("gain of"):
        init, small, large = re.match(r"gain of (\w+) at n=(\w+) − gain at n=(\w+)", comparison).groups()
        return (design.truth(init, small) - design.truth("random", small)
                - design.truth(init, large) + design.truth("random", large))
    a, b = pair.groups()
    ns = [re.search(r"n=(\w+)", comparison).group(1)] if "n=" in comparison else list(design.arms[a])
    return float(np.mean([design.truth(a, n) - design.truth(b, n) for n in ns]))


def honesty_rates(design: Design, studies: int, seed: int = 0, draw=simulate_study) -> dict:
    """Run `studies` simulated studies (`draw(rng, design)`: trials, predictions, histories) through the report's
    hypotheses and leaderboard; per comparison, per table (any false claim), coverage of the population truth,
    decisive rate, and the median reported mde."""
    from xfer.analysis.hypotheses import evaluate_hypotheses, verdict_table
    from xfer.analysis.leaderboard import leaderboard
    from xfer.config import AnalysisConfig

    cfg = AnalysisConfig(equivalence_margin=1.0, convergence_margin=100.0)  # nothing excused as underpowered
    rng = np.random.default_rng(seed)
    hyp, board = [], []
    for study in range(studies):
        trials, predictions, histories = draw(rng, design)
        table = verdict_table(evaluate_hypotheses(trials, NO_CKA, cfg, predictions, histories))
        table = table[table["p"].notna()].assign(study=study)
        table["truth"] = [comparison_truth(design, c) for c in table["comparison"]]
        hyp.append(table)
        rows = leaderboard(trials, predictions=predictions)
        rows = rows[rows["diff_vs_random"].notna()].assign(study=study)
        rows["truth"] = [design.truth(i, n) - design.truth("random", n)
                         for i, n in zip(rows["init"], rows["n_per_class"])]
        rows["auc_truth"] = [design.truth(i, n) for i, n in zip(rows["init"], rows["n_per_class"])]
        board.append(rows)
    hyp, board = pd.concat(hyp, ignore_index=True), pd.concat(board, ignore_index=True)
    hyp_decisive = hyp["verdict"].isin(DECISIVE)
    board_decisive = board["verdict"].isin(BETTER_WORSE)
    covered = (hyp["ci_low"] <= hyp["truth"]) & (hyp["truth"] <= hyp["ci_high"])
    board_covered = (board["diff_ci_low"] <= board["truth"]) & (board["truth"] <= board["diff_ci_high"])
    return {"hypotheses": hyp, "leaderboard": board,
            "hyp_decisive": hyp_decisive.mean(), "hyp_family": hyp_decisive.groupby(hyp["study"]).any().mean(),
            "hyp_coverage": covered.mean(),
            "board_decisive": board_decisive.mean(),
            "board_table": board_decisive.groupby(board["study"]).any().reindex(range(studies), fill_value=False).mean(),
            "board_coverage": board_covered.mean(),
            "board_auc_coverage": ((board["ci_low"] <= board["auc_truth"])
                                   & (board["auc_truth"] <= board["ci_high"])).mean()}
