"""Interrupted and failing studies: a killed study resumes without re-running finished trials; a trial that
raises is retried, then recorded as FAILED with its traceback, while the other trials finish."""
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from helpers import ROOT, expected_trial_keys, kill_session, ray_env, short_temp_dir, trial_runs, write_study

SMOKE = ROOT / "experiments" / "smoke.yaml"
EPOCHS = 20  # the n=all trials run long enough to be killed half-way


def kill_processes_mentioning(text: str) -> None:
    """SIGKILL leftover processes whose command line names `text` (this test's own Ray temp dir)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            with contextlib.suppress(OSError):
                if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    os.kill(int(entry.name), signal.SIGKILL)


@contextlib.contextmanager
def isolated_ray(tmp: Path):
    """Environment for `python -m xfer.run` with its own local Ray (loopback, own temp dir); cleans up after."""
    temp_dir = short_temp_dir("xrayrun")
    try:
        yield ray_env(temp_dir, MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}")
    finally:
        kill_processes_mentioning(str(temp_dir))
        shutil.rmtree(temp_dir, ignore_errors=True)


def xfer_run(args: list[str], env: dict, timeout_s: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xfer.run", *args, "--no-report"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout_s)


def epochs_logged(uri: str, run: mlflow.entities.Run) -> int:
    return len(mlflow.MlflowClient(uri).get_metric_history(run.info.run_id, "train_loss"))


def wait_for_partial_study(uri: str, process: subprocess.Popen, timeout_s: float,
                           experiment: str = "resume") -> list[mlflow.entities.Run]:
    """Poll MLflow until ≥1 trial is FINISHED and another is RUNNING past its first Tune checkpoint (epoch 5)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the study ended before it could be interrupted"
        with contextlib.suppress(Exception):  # the database may not exist yet
            runs = trial_runs(uri, experiment)
            finished = [r for r in runs if r.info.status == "FINISHED"]
            running = [r for r in runs if r.info.status == "RUNNING"]
            if finished and any(epochs_logged(uri, r) >= 6 for r in running):
                return runs
        time.sleep(0.5)
    raise TimeoutError("no moment with a finished and a half-done trial")


def crash_half_way(study: Path, env: dict, uri: str, log_path: Path, experiment: str) -> list[mlflow.entities.Run]:
    """Run the study until a trial finished and another is half done, then SIGKILL it (a crash: no cleanup)."""
    with open(log_path, "w") as log:
        first = subprocess.Popen([sys.executable, "-m", "xfer.run", str(study), "--no-report"], cwd=ROOT, env=env,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return wait_for_partial_study(uri, first, timeout_s=600, experiment=experiment)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.pid, signal.SIGKILL)
            kill_session(first.pid)
            first.wait(30)


@pytest.mark.slow
def test_killed_study_resumes_without_rerunning_finished_trials(tmp_path):
    study = write_study(SMOKE, tmp_path, {
        "name": "resume", "trials.init": [{"strategy": "random"}], "trials.n_per_class": [4, "all"],
        "trials.seeds": [0, 1], "train.epochs": EPOCHS, "ray.max_concurrent": 1})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with isolated_ray(tmp_path) as env:
        before = crash_half_way(study, env, uri, tmp_path / "first.log", "resume")
        finished_before = {r.info.run_id: r for r in before if r.info.status == "FINISHED"}
        interrupted = {r.info.run_id for r in before if r.info.status == "RUNNING"}
        resumed = xfer_run([str(study), "--resume"], env)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, (tmp_path / "first.log").read_text()[-3000:] + output[-6000:]

    runs = trial_runs(uri, "resume")
    keys = [r.data.tags["xfer.trial_key"] for r in runs]
    assert sorted(keys) == sorted(expected_trial_keys(study)), "exactly one run per trial key"
    assert all(r.info.status == "FINISHED" for r in runs)
    after = {r.info.run_id: r for r in runs}
    for run_id, run in finished_before.items():
        assert run_id in after, "a trial finished before the kill got a new run"
        assert after[run_id].info.end_time == run.info.end_time, "a trial finished before the kill was re-run"
    assert interrupted <= set(after), "the interrupted trial's run is continued, not replaced"
    for run_id in interrupted:
        steps = {m.step for m in mlflow.MlflowClient(uri).get_metric_history(run_id, "train_loss")}
        assert steps == set(range(1, EPOCHS + 1)), "the resumed trial logged every epoch"


@pytest.mark.slow
def test_failing_trial_is_retried_then_recorded_failed(tmp_path):
    """An init checkpoint that fits cbr_tiny but not cbr_small: the cbr_small trial fails, cbr_tiny's finishes."""
    import torch

    from xfer.checkpoint import CheckpointMeta, save_checkpoint
    from xfer.models import build_model

    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "cbr_tiny.pt", build_model("cbr_tiny", 2, 1).state_dict(),
                                 CheckpointMeta(model="cbr_tiny", num_classes=2, in_channels=1))
    study = write_study(SMOKE, tmp_path, {
        "name": "failing", "trials.init": [{"strategy": "imagenet", "source": str(checkpoint)}],
        "trials.models": ["cbr_tiny", "cbr_small"], "trials.n_per_class": [4], "trials.seeds": [0],
        "train.epochs": 2, "ray.max_failures": 1})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with isolated_ray(tmp_path) as env:
        run = xfer_run([str(study)], env)
    assert run.returncode == 1, run.stderr[-5000:]  # the study reports its failed trial
    assert "trial failed" in run.stderr and "CheckpointMismatchError" in run.stderr

    folds = 3  # smoke.yaml is 3-fold: each model is three trials
    runs = trial_runs(uri, "failing")
    states = sorted((r.data.tags["model"], r.info.status) for r in runs)
    assert states == [("cbr_small", "FAILED")] * folds + [("cbr_tiny", "FINISHED")] * folds, \
        "one run per trial, the retry included"
    failed = next(r for r in runs if r.data.tags["model"] == "cbr_small")
    error = Path(mlflow.MlflowClient(uri).download_artifacts(failed.info.run_id, "error.txt", str(tmp_path)))
    assert "CheckpointMismatchError" in error.read_text() and "shape mismatch" in error.read_text()

    tune_errors = list((tmp_path / "out" / "ray" / "failing").glob("*/error.txt"))
    assert len(tune_errors) == folds, "Tune records each failing trial's errors"
    assert all(e.read_text().count("Failure #") == 2 for e in tune_errors), "tried once, retried once (max_failures: 1)"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert (summary["trials"], summary["failed"]) == (2 * folds, folds)


@pytest.mark.slow
def test_resume_after_a_yaml_edit_never_finishes_a_trial_with_other_settings(tmp_path):
    """Interrupted, then lr changed and a seed added: the resumed study trains every trial at the new lr from its
    first epoch (no restored Tune state from the old lr), runs the added seed, and ends finished."""
    changes = {"name": "edited", "trials.init": [{"strategy": "random"}], "trials.n_per_class": ["all"],
               "trials.seeds": [0, 1], "train.epochs": EPOCHS, "ray.max_concurrent": 1, "data.split.folds": None}
    study = write_study(SMOKE, tmp_path, changes)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with isolated_ray(tmp_path) as env:
        crash_half_way(study, env, uri, tmp_path / "first.log", "edited")
        study = write_study(SMOKE, tmp_path, {**changes, "train.lr": 0.001, "trials.seeds": [0, 1, 2]})
        resumed = xfer_run([str(study), "--resume"], env)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-6000:]
    assert "the study changed" in output
    finished = [r for r in trial_runs(uri, "edited") if r.info.status == "FINISHED"]
    new = [r for r in finished if float(r.data.params["train.lr"]) == 0.001]
    assert sorted(r.data.tags["xfer.trial_key"] for r in new) == sorted(expected_trial_keys(study)), \
        "every trial of the edited study, the added seed included, ran at the new lr"
    for run in finished:  # the runs finished before the edit keep the lr they were trained with
        steps = [m.step for m in mlflow.MlflowClient(uri).get_metric_history(run.info.run_id, "train_loss")]
        assert sorted(steps) == list(range(1, EPOCHS + 1)), "each run trained at its own lr from epoch 1, once"
    study_run = json.loads((tmp_path / "out" / "summary.json").read_text())["study_run_id"]
    recorded = mlflow.MlflowClient(uri).download_artifacts(study_run, "trials.json", str(tmp_path))
    assert set(json.loads(Path(recorded).read_text())["run_ids"]) == {r.info.run_id for r in new}
