"""The leaderboard: test AUC with a CI per init × model × n, Δ vs random, saturated validation, swept values."""
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from xfer.analysis.leaderboard import (arm_table, leaderboard, leaderboard_lines, leaderboard_metrics, swept_columns,
                                       t_interval)
from xfer.analysis.leaderboard_section import leaderboard_section


def trials(sweep: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for init, strategy, gain in (("random", "random", 0.0), ("imagenet", "imagenet", 0.1)):
        for n in ("10", "all"):
            for seed in range(4):
                for lr in ((0.01, 0.001) if sweep else (0.01,)):
                    rows.append({"init": init, "strategy": strategy, "model": "cbr_tiny", "n_per_class": n,
                                 "seed": seed, "test_auc": 0.7 + gain + rng.normal(0, 0.01),
                                 "best_val_auc": 1.0 if seed == 0 else 0.9, "param.n_test": "13",
                                 "param.train.lr": str(lr), "param.train.epochs": "3"})
    return pd.DataFrame(rows)


def test_t_interval_covers_the_mean_and_is_undefined_for_one_value():
    mean, low, high, p = t_interval(np.array([0.7, 0.72, 0.74]))
    assert low < mean < high and abs(mean - 0.72) < 1e-9 and p < 0.05
    assert np.isnan(t_interval(np.array([0.7]))[1])


def test_leaderboard_has_one_row_per_init_model_n_with_paired_difference_vs_random():
    board = leaderboard(trials())
    assert len(board) == 4 and set(board["runs"]) == {4}
    pretrained = board[board["init"] == "imagenet"]
    assert (pretrained["diff_vs_random"].round(1) == 0.1).all()
    # without test predictions the seeds' spread is all there is: conditional on this test set, no better/worse
    assert set(pretrained["verdict"]) == {"conditional on this test set"} and pretrained["p_holm"].isna().all()
    assert set(board.loc[board["init"] == "random", "verdict"]) == {"baseline"}
    assert list(board["n_test"]) == [13] * 4 and set(board["saturated_val"]) == {1}


def test_swept_train_values_are_their_own_rows_and_metric_names_are_mlflow_safe():
    frame = trials(sweep=True)
    assert swept_columns(frame) == ["param.train.lr"]
    board = leaderboard(frame)
    assert len(board) == 8 and "train.lr" in board.columns
    assert all("=" not in name for name in leaderboard_metrics(board))
    assert any("lr=0.001" in line for line in leaderboard_lines(board))


def test_report_section_flags_saturated_validation_and_compares_swept_values():
    section = leaderboard_section(trials(sweep=True), [])
    assert "Answer: test AUC per strategy" in section and "best validation AUC ≥" in section
    assert "Swept train settings" in section and "13 images" in section


def test_the_baseline_is_the_registry_s_untrained_strategy_whatever_its_label():
    frame = trials().replace({"init": {"random": "from_scratch"}})
    board = leaderboard(frame)
    assert set(board.loc[board["init"] == "from_scratch", "verdict"]) == {"baseline"}
    assert (board.loc[board["init"] == "imagenet", "diff_vs_random"].round(1) == 0.1).all()


def test_each_external_set_shows_its_auc_or_else_the_sensitivity_it_can_measure():
    frame = trials().assign(**{"external/site_b/auc": 0.8, "external/site_b/sensitivity": 0.7,
                               "external/covid_only/sensitivity": 0.9})
    board = leaderboard(frame)
    assert {c for c in board.columns if c.startswith("external/")} == {"external/site_b/auc",
                                                                       "external/covid_only/sensitivity"}
    assert all("site_b AUC 0.800" in line and "covid_only sensitivity 0.900" in line
               for line in leaderboard_lines(board))
    assert any(name.endswith("external/covid_only/sensitivity") for name in leaderboard_metrics(board))
    assert "external: covid_only sensitivity" in leaderboard_section(frame, [])


def cross_validated(seeds=3, repeats=2, folds=3, images=30):
    """Fold runs of two inits whose test folds partition `images` labelled images in every repeat."""
    rng = np.random.default_rng(1)
    labels = np.arange(images) % 2
    rows, predictions = [], {}
    for init, strategy, separation in (("random", "random", 0.5), ("imagenet", "imagenet", 1.5)):
        for seed in range(seeds):
            for repeat in range(repeats):
                order = rng.permutation(images)
                for fold in range(folds):
                    run_id = f"{init}-{seed}-{repeat}-{fold}"
                    index = np.sort(order[fold::folds])
                    p = 1 / (1 + np.exp(-(separation * labels[index] + rng.normal(0, 1, len(index)))))
                    predictions[run_id] = pd.DataFrame({"index": index, "patient_id": index, "label": labels[index],
                                                        "prob_normal": 1 - p, "prob_covid": p})
                    rows.append({"run_id": run_id, "init": init, "strategy": strategy, "model": "cbr_tiny",
                                 "n_per_class": "all", "seed": seed, "repeat": repeat, "fold": fold,
                                 "test_auc": roc_auc_score(labels[index], p), "best_val_auc": 0.9,
                                 "param.n_test": str(len(index))})
    return pd.DataFrame(rows), predictions


def test_cross_validated_leaderboard_has_one_pooled_auc_per_seed_and_repeat():
    frame, predictions = cross_validated()
    arms, how = arm_table(frame, ["init", "model", "n_per_class"], predictions)
    assert len(arms) == 2 * 3 * 2 and how == "pooled out-of-fold predictions"
    for arm in arms.itertuples():
        runs = frame[(frame["init"] == arm.init) & (frame["seed"] == arm.seed) & (frame["repeat"] == arm.repeat)]
        pooled = pd.concat([predictions[r] for r in runs["run_id"]])
        assert arm.test_auc == pytest.approx(roc_auc_score(pooled["label"], pooled["prob_covid"]))
    board = leaderboard(frame, predictions=predictions)
    assert set(board["runs"]) == {6} and set(board["trials"]) == {18} and set(board["n_test"]) == {30}
    imagenet = arms[arms["init"] == "imagenet"]["test_auc"]
    assert board.loc[board["init"] == "imagenet", "test_auc"].item() == pytest.approx(imagenet.mean())
    assert "pooled out-of-fold predictions" in leaderboard_section(frame, [], predictions=predictions)


def test_the_answer_says_when_the_gain_is_over_a_random_baseline_that_never_learned():
    from xfer.analysis.answer import answer_lines
    from xfer.analysis.simulate import Arm, Design, simulate_study

    design = Design({"random": {"5": Arm(0.70, collapse=1.0), "80": Arm(0.85)},
                     "imagenet": {"5": Arm(0.80), "80": Arm(0.86)}}, seeds=4, test_images=300)
    trials, predictions, _ = simulate_study(np.random.default_rng(0), design)
    lines = answer_lines(leaderboard(trials, predictions=predictions))
    at5, at80 = (next(line for line in lines if line.startswith(f"n={n} ")) for n in (5, 80))
    assert "random init never learned in 4 of 4 runs here, so this is a gain over chance" in at5
    assert "never learned" not in at80
