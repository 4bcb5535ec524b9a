"""A sweep study end to end (slow): optimizer × lr as grid axes, the report's first screen in headless Chromium,
and the MLflow REST API of `xfer ui` listing the experiment and its runs."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """The smoke study's data, random init only, swept over optimizer × lr (4 tiny trials)."""
    tmp = tmp_path_factory.mktemp("sweep")
    study = yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())
    study.update(name="sweep", output_dir=str(tmp / "out"), train={"epochs": 2, "batch_size": 8})
    study["data"]["split"] = {"val_fraction": 0.2, "test_fraction": 0.3, "seed": 0}
    study["data"]["cache_dir"] = str(tmp / "cache")
    study["trials"] = {"init": [{"strategy": "random"}], "models": ["cbr_tiny"], "n_per_class": ["all"],
                       "seeds": [0], "sweep": {"train.optimizer": ["adam", "sgd"], "train.lr": [0.01, 0.001]}}
    (tmp / "sweep.yaml").write_text(yaml.safe_dump(study))
    env = dict(os.environ, MLFLOW_TRACKING_URI=f"sqlite:///{tmp / 'mlflow.db'}")
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-m", "xfer.cli", "run", str(tmp / "sweep.yaml")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return tmp, done.stdout, env


def test_swept_values_are_in_trial_keys_and_the_closing_leaderboard(sweep):
    _, console, _ = sweep
    trials = [line for line in console.splitlines() if "[xfer] trial " in line]
    assert len(trials) == 4 and any("train.optimizer=sgd" in t and "train.lr=0.001" in t for t in trials)
    assert sum("optimizer=" in line and "lr=" in line for line in console.split("leaderboard (")[1].splitlines()) == 4


def test_report_first_screen_shows_the_leaderboard_and_compares_swept_values(sweep):
    tmp, _, _ = sweep
    if CHROMIUM is None:
        pytest.skip("no chromium")
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--disable-sync", "--no-first-run",
                          f"--user-data-dir={tmp / 'chromium'}", "--dump-dom",
                          (tmp / "out" / "report" / "report.html").as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    first = dom.split("<section")[1]
    assert "Answer: test AUC per strategy" in first and "95% CI" in first and "test images" in first
    assert "Swept train settings" in first and "train.optimizer" in first and "sgd" in first and "0.001" in first


def test_xfer_ui_serves_the_experiment_and_its_runs_over_rest(sweep):
    tmp, _, env = sweep
    port = 5123
    ui = subprocess.Popen([sys.executable, "-m", "xfer.cli", "ui", str(tmp / "out"), "--port", str(port)], cwd=ROOT,
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        for _ in range(90):
            try:
                opener.open(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except OSError:
                time.sleep(2)
        experiment = json.load(opener.open(f"{base}/experiments/get-by-name?experiment_name=sweep", timeout=30))
        experiment_id = experiment["experiment"]["experiment_id"]
        query = json.dumps({"experiment_ids": [experiment_id], "filter": "tags.`xfer.kind` = 'trial'"}).encode()
        request = urllib.request.Request(f"{base}/runs/search", data=query, headers={"Content-Type": "application/json"})
        runs = json.load(opener.open(request, timeout=30))["runs"]
        assert len(runs) == 4
        assert {t["value"] for r in runs for t in r["data"]["tags"] if t["key"] == "train.optimizer"} == {"adam", "sgd"}
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
