"""Trial lines on the console: one per finished trial (done/total, key, AUCs, MLflow run id, ETA of the study), and,
for a trial running longer than PROGRESS_AFTER_S, an epoch line at most every PROGRESS_EVERY_S with its own ETA."""
from __future__ import annotations

import time
from typing import Callable

# first: sets Ray's worker-log switch before Ray is imported
from xfer.console import PROGRESS_AFTER_S, PROGRESS_EVERY_S, duration, eta, metric, say

from ray import tune  # noqa: E402,I001


def epoch_line(key: str, result: dict, epochs: int) -> str:
    """A running trial's epoch, validation AUC, time so far and the trial's ETA at its pace so far."""
    epoch, elapsed = int(result.get("epoch", 0)), float(result.get("time_total_s", 0.0))
    remaining = elapsed / epoch * max(epochs - epoch, 0) if epoch else float("nan")
    left = duration(remaining) if remaining == remaining else "?"
    return (f"  trial {key}  epoch {epoch}/{epochs}  val AUC {metric(result, 'val_auc')}  "
            f"{duration(elapsed)}  ETA {left}")


class TrialProgress(tune.Callback):
    """One line per finished trial with its MLflow run id; epoch lines for long trials."""

    def __init__(self, total: int, key_of: Callable[[dict], str], epochs: int = 0):
        self.total, self.key_of, self.epochs = total, key_of, epochs
        self.done, self.began = 0, time.perf_counter()
        self.last_line: dict[str, float] = {}  # trial id → time_total_s of its last epoch line

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info) -> None:
        if not self.epochs or "trial_done" in result or "epoch" not in result:
            return
        elapsed = float(result.get("time_total_s", 0.0))
        if elapsed < PROGRESS_AFTER_S or elapsed - self.last_line.get(trial.trial_id, 0.0) < PROGRESS_EVERY_S:
            return
        self.last_line[trial.trial_id] = elapsed
        say(epoch_line(self.key_of(trial.config), result, self.epochs))

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self.done += 1
        r = trial.last_result or {}
        if not r.get("trial_done"):  # a scheduler (ASHA) stopped it: not a failure, not re-run
            say(f"trial {self.done}/{self.total} {self.key_of(trial.config)}  stopped early by the scheduler at "
                f"validation {metric(r, 'tuning_score')}  ETA {eta(self.began, self.done, self.total)}")
            return
        tested = f"test AUC {metric(r, 'test_auc')}" if "test_auc" in r else "test set not read (tuning)"
        run = f"  run {r['run_id']}" if r.get("run_id") else ""
        say(f"trial {self.done}/{self.total} {self.key_of(trial.config)}  best val AUC {metric(r, 'tuning_score')}  "
            f"{tested}  {duration(r.get('time_total_s', 0))}{run}  ETA {eta(self.began, self.done, self.total)}")

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self.done += 1
        say(f"trial {self.done}/{self.total} {self.key_of(trial.config)}  FAILED (see its MLflow run's error.txt)  "
            f"ETA {eta(self.began, self.done, self.total)}")
