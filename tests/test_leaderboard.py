"""The leaderboard: test AUC with a CI per init × model × n, Δ vs random, saturated validation, swept values."""
import numpy as np
import pandas as pd

from xfer.analysis.leaderboard import (leaderboard, leaderboard_lines, leaderboard_metrics, leaderboard_section,
                                       swept_columns, t_interval)


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
    assert (pretrained["diff_vs_random"].round(1) == 0.1).all() and set(pretrained["verdict"]) == {"better"}
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
