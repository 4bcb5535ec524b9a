"""A real study interrupted with SIGINT (issue 15): exit code 130, trials in flight and the study run KILLED, a
summary saying what never started, no report, a second concurrent run refused, and `--resume` finishing it."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest

from helpers import ROOT, expected_trial_keys, kill_session, trial_runs, write_study
from test_resume import isolated_ray
from xfer.lock import LOCK_FILE

SMOKE = ROOT / "experiments" / "smoke.yaml"


def wait_for_trial_in_flight(uri: str, process: subprocess.Popen, timeout_s: float) -> None:
    """Poll MLflow until a trial has finished and another is running."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the study ended before it could be interrupted"
        with contextlib.suppress(Exception):  # the database may not exist yet
            statuses = [r.info.status for r in trial_runs(uri, "interrupt")]
            if "FINISHED" in statuses and "RUNNING" in statuses:
                return
        time.sleep(0.2)
    raise TimeoutError("no moment with a finished and a running trial")


def wait_for_lock_of(process: subprocess.Popen, lock, timeout_s: float = 300) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError, ValueError):
            if json.loads(lock.read_text())["pid"] == process.pid:
                return
        time.sleep(0.1)
    raise TimeoutError(f"process {process.pid} never held {lock}")


@pytest.mark.slow
def test_sigint_ends_the_study_killed_with_exit_130_and_resume_finishes_it(tmp_path):
    study = write_study(SMOKE, tmp_path, {
        "name": "interrupt", "trials.init": [{"strategy": "random"}], "trials.n_per_class": [4, 8, "all"],
        "trials.seeds": [0, 1, 2], "train.epochs": 2, "ray.max_concurrent": 1,
        "data.split": {"val_fraction": 0.2, "test_fraction": 0.3, "seed": 0}})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "out"
    with isolated_ray(tmp_path) as env:
        log = open(tmp_path / "first.log", "w")
        first = subprocess.Popen([sys.executable, "-m", "xfer.run", str(study)], cwd=ROOT, env=env, stdout=log,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_trial_in_flight(uri, first, timeout_s=600)
            os.kill(first.pid, signal.SIGINT)  # the driver only, as `kill -INT`
            code = first.wait(300)
        finally:
            kill_session(first.pid)
            log.close()
        output = (tmp_path / "first.log").read_text()
        assert code == 130, output[-5000:]
        assert "--resume" in output.strip().splitlines()[-1]

        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == "interrupted" and summary["trials"] == 9
        assert summary["finished"] >= 1 and summary["killed"] + summary["never_started"] >= 1
        assert summary["finished"] + summary["failed"] + summary["killed"] + summary["never_started"] == 9
        assert not (out / "report").exists(), "no report from a partial study"
        client = mlflow.MlflowClient(uri)
        assert client.get_run(summary["study_run_id"]).info.status == "KILLED"
        statuses = [r.info.status for r in trial_runs(uri, "interrupt")]
        assert "RUNNING" not in statuses and "FAILED" not in statuses and "KILLED" in statuses, statuses

        resumed = subprocess.Popen([sys.executable, "-m", "xfer.run", str(study), "--resume", "--no-report"],
                                   cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for_lock_of(resumed, out / LOCK_FILE)
        second = subprocess.run([sys.executable, "-m", "xfer.run", str(study), "--no-report"], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        stdout, stderr = resumed.communicate(timeout=900)
    assert second.returncode == 2 and "is already running into" in second.stderr, second.stderr[-2000:]
    assert resumed.returncode == 0, stdout[-3000:] + stderr[-5000:]
    runs = trial_runs(uri, "interrupt")
    assert sorted(r.data.tags["xfer.trial_key"] for r in runs) == sorted(expected_trial_keys(study))
    assert all(r.info.status == "FINISHED" for r in runs)
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["status"], summary["finished"]) == ("finished", 9)
    assert mlflow.MlflowClient(uri).get_run(summary["study_run_id"]).info.status == "FINISHED"


def test_a_report_that_fails_is_recorded_not_raised_and_an_interrupted_one_is_returned(tmp_path, capsys):
    from xfer.run import attach_report

    def broken():
        raise ImportError("cannot import name 'X'")

    summary = {"status": "finished"}
    assert attach_report(summary, broken, tmp_path) is None
    assert summary["report"] is None and summary["report_error"] == "ImportError: cannot import name 'X'"
    assert f"xfer report {tmp_path}" in capsys.readouterr().err, "says how to build it again"

    def stopped():
        raise KeyboardInterrupt

    assert isinstance(attach_report(summary, stopped, tmp_path), KeyboardInterrupt)
    assert attach_report(summary, lambda: tmp_path / "report.html", tmp_path) is None
    assert summary["report"] == str(tmp_path / "report.html")
