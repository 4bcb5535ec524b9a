"""What a study run prints: a line per stage epoch, the closing answer, and the helpers of `xfer.progress`'s trial lines."""
from __future__ import annotations

import logging
import os
import time
import warnings
from typing import Optional

# Worker lines reach this console without Ray's "(_stage_task pid=…)" prefix, so a stage's epoch lines read like the
# driver's trial lines. Ray reads the switch once, when it is imported: set before xfer's first `import ray`. This
# module imports no Ray itself (nor torch or mlflow): `xfer check` and `xfer --help` start fast.
os.environ.setdefault("RAY_DISABLE_WORKER_LOG_PREFIX", "1")

# Tune's own console output (Ray 2.60): the boxed per-trial tables (verbose=0 plus the old output engine), the
# snapshot warnings, and the TensorBoard hint (auto loggers off; xfer.tune adds the JSON and CSV ones back, which
# Tune's ResultGrid reads)
QUIET_TUNE_ENV = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
                  "TUNE_WARN_SLOW_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "600",
                  "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
                  "RAY_COLOR_PREFIX": "0",  # no colour codes around worker lines
                  "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # one bar per artifact download


def quiet_tune() -> None:
    """Silence Tune's tables and warnings (xfer prints its own progress); set before Ray starts."""
    for name, value in QUIET_TUNE_ENV.items():
        os.environ.setdefault(name, value)
    for name in ("ray.tune", "ray.train", "ray._private.worker"):  # "Started a local Ray", "Wrote … result files"
        logging.getLogger(name).setLevel(logging.WARNING)


def one_line_warnings() -> None:
    """xfer's own warnings (skipped files, overlaps, stages at chance) print as one '[xfer] warning:' line, once per
    process and without the source line Python adds; other libraries' warnings are left as they are."""
    shown = warnings.showwarning
    if getattr(shown, "xfer_one_line", False):
        return

    printed: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if category.__module__.startswith("xfer."):
            if str(message) not in printed:  # e.g. an external set's overlap, found again by every trial
                printed.add(str(message))
                print(f"[xfer] warning: {message}", flush=True)
        else:
            shown(message, category, filename, lineno, file, line)

    show.xfer_one_line = True
    warnings.showwarning = show


def quiet_trial_worker(*already_said: type[Warning]) -> None:
    """In a trial's worker: no Ray Train line per checkpoint, no repeat of warnings the driver already reported
    (e.g. the skipped-files one, with its listing), xfer's other warnings on one line, once per worker."""
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # "Checkpoint successfully created at: …"
    for category in already_said:
        warnings.simplefilter("ignore", category)
    one_line_warnings()


PROGRESS_AFTER_S = 30.0  # a trial, or a stage epoch, quicker than this prints no progress line
PROGRESS_EVERY_S = 30.0  # at most one progress line per trial or stage epoch this often


def say(text: str) -> None:
    print(f"[xfer] {text}", flush=True)


def duration(seconds: float) -> str:
    """Seconds as '45s', '3m05s' or '1h12m'."""
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def eta(began: float, done: int, total: int) -> str:
    """Remaining time if the rest goes at the pace so far."""
    if done == 0:
        return "?"
    return duration((time.perf_counter() - began) / done * (total - done))


def metric(metrics: dict, name: str) -> str:
    value = metrics.get(name)
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"


class StageProgress:
    """Hooks of a stage: a line per epoch (loss, held-out AUC, ETA) and, within an epoch running longer than
    PROGRESS_AFTER_S, a line at most every PROGRESS_EVERY_S (batches done, images/s, the epoch's ETA)."""

    def __init__(self, name: str, epochs: int):
        self.name, self.epochs, self.began = name, epochs, time.perf_counter()
        self.epoch_began = self.last_line = self.began

    def __call__(self, epoch: int, metrics: dict, state=None) -> None:
        say(f"stage {self.name} epoch {epoch}/{self.epochs}  loss {metric(metrics, 'train_loss')}  "
            f"val AUC {metric(metrics, 'val_auc')}  ETA {eta(self.began, epoch, self.epochs)}")

    def batch(self, epoch: int, done: int, total: int, images: int) -> None:
        """After `done` of the epoch's `total` batches (`images` images); done == 0: the epoch begins."""
        now = time.perf_counter()
        if done == 0:
            self.epoch_began = self.last_line = now
            return
        if now - self.epoch_began < PROGRESS_AFTER_S or now - self.last_line < PROGRESS_EVERY_S or done >= total:
            return
        self.last_line = now
        seconds = max(now - self.epoch_began, 1e-9)
        say(f"stage {self.name} epoch {epoch}/{self.epochs}  batch {done}/{total}  {images / seconds:.1f} images/s  "
            f"epoch ETA {eta(self.epoch_began, done, total)}")

    def done(self, metrics: dict) -> None:
        say(f"stage {self.name} done in {duration(time.perf_counter() - self.began)}: held-out accuracy "
            f"{metric(metrics, 'test_accuracy')}, AUC {metric(metrics, 'test_auc')} "
            f"(chance accuracy {metric(metrics, 'chance_accuracy')})")


def closing_lines(board_lines: list[str], report: Optional[str], out: str,
                  report_error: Optional[str] = None) -> list[str]:
    """The run's last lines: the leaderboard, where the report is (or why there is none), and how to browse the
    runs of the study folder `out`."""
    where = (f"report: {report}" if report else f"report: FAILED ({report_error}); build it again with: xfer report "
             f"{out}" if report_error else "report: not built (--no-report)")
    return ["leaderboard (test AUC, mean [95% CI] over arms: seeds × repeats, folds pooled; external sets after Δ):",
            *(f"  {line}" for line in board_lines), where, f"browse runs: xfer ui {out}"]
