"""Ray failures and SIGINT around the grid (issue 25): a cluster that cannot be reached is its own exit code and
status with the reason, fast, and the study run is not left RUNNING; Ctrl-C while the report is built works."""
import json
import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest

from helpers import ROOT, free_port, write_study
from test_safety import FIXED_SPLIT, SMOKE


def test_connecting_to_an_unreachable_cluster_is_a_ray_start_error_at_once():
    from xfer.cluster import RayStartError, connect

    port = free_port()
    began = time.monotonic()
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(RayStartError, match=f"cannot reach the Ray cluster at {address} .*ray.address"):
            connect(address)
    assert time.monotonic() - began < 5


@pytest.mark.slow  # ~15 CPU-s: a whole `xfer run` in a subprocess
def test_an_unreachable_ray_cluster_fails_fast_with_its_own_exit_code_and_status(tmp_path):
    port = free_port()  # nothing listens there
    study = write_study(SMOKE, tmp_path, {"name": "noray", "trials.init": [{"strategy": "random"}],
                                          "data.split": FIXED_SPLIT, "ray.address": f"127.0.0.1:{port}"})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT),
                                                                          "MLFLOW_TRACKING_URI": uri}
    began = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "xfer.cli", "run", str(study), "--no-report"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 8, done.stderr[-3000:]  # before: 130, "interrupted", "finish it with --resume"
    assert f"cannot reach the Ray cluster at 127.0.0.1:{port}" in done.stderr and "--resume" not in done.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "ray unavailable" and "RayStartError: cannot reach" in summary["error"]
    assert summary["tracking_uri"] == uri and mlflow.MlflowClient(uri).get_run(
        summary["study_run_id"]).info.status == "FAILED"
    assert time.monotonic() - began < 120  # imports included; the connection attempt itself is refused at once


def test_tunes_sigint_handler_does_not_outlive_the_grid():
    from ray.tune.tune import _setup_signal_catching  # what Tuner.fit installs (and leaves) in the driver

    from xfer.run import sigint_restored

    with sigint_restored():
        _setup_signal_catching()
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):  # before: swallowed, and the study reported 'finished'
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)


@pytest.mark.slow  # ~25 s: a Ray driver waits out a shortened join bound in a subprocess
def test_an_open_port_that_is_not_ray_fails_within_the_join_bound():
    script = """
import socket, sys, threading, time
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(50)  # accepts, never speaks Ray
threading.Thread(target=lambda: [server.accept() for _ in range(100)], daemon=True).start()
from xfer import cluster
cluster.JOIN_TIMEOUT_S = 5
began = time.monotonic()
try:
    cluster.connect(f"127.0.0.1:{server.getsockname()[1]}")
except cluster.RayStartError as e:
    print("RayStartError", e, round(time.monotonic() - began))
"""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {"PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # before: Ray retried for minutes
    assert "RayStartError" in done.stdout and "did not answer within 5 s" in done.stdout, done.stderr[-3000:]
    assert int(done.stdout.split()[-1]) < 60  # the bound, and Ray's own wait of ~35 s before it sees the interrupt
