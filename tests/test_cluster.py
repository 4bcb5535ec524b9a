"""xfer on a Ray cluster: the launcher config is one `ray up` accepts, and a study runs on a separate Ray head.

Everything stays on this machine's loopback. `ray stop` is never called: it stops every Ray process on
the machine, other people's included, so each test stops only the processes it started (its session).
"""
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml

from helpers import (ROOT, expected_trial_keys, free_port, kill_session, local_ray_head, ray_env, short_temp_dir,
                     trial_runs, write_study)

DATA = ROOT.parent / "shared" / "data"
CLUSTER_YAML = ROOT / "ray_cluster.yaml"
COMMAND_FIELDS = ("setup_commands", "head_setup_commands", "worker_setup_commands", "head_start_ray_commands",
                  "worker_start_ray_commands")


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def test_cluster_config_matches_the_launcher_schema(cluster):
    import jsonschema
    import ray.autoscaler
    from ray.autoscaler._private.util import prepare_config, validate_config

    schema = json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())
    jsonschema.validate(cluster, schema)
    for field in schema["required"]:
        assert field in cluster, f"ray_cluster.yaml lacks the launcher's required field {field!r}"
    validate_config(prepare_config(cluster))  # what `ray up` does before it talks to the cloud


def test_cluster_has_a_head_and_gpu_workers(cluster):
    types = cluster["available_node_types"]
    assert cluster["head_node_type"] in types
    gpu_types = [name for name, t in types.items() if t["resources"].get("GPU", 0) >= 1 and t.get("max_workers", 0)]
    assert gpu_types, "no worker node type offers a GPU"
    assert cluster["max_workers"] >= max(types[t]["max_workers"] for t in gpu_types)


def test_cluster_syncs_and_installs_the_repository(cluster):
    mounts = cluster["file_mounts"]
    for local in mounts.values():
        assert (ROOT / local).exists(), f"file_mounts source {local} is missing (ray up runs from the repo root)"
    repo = next(remote for remote, local in mounts.items() if (ROOT / local).resolve() == ROOT)
    data = next(remote for remote, local in mounts.items() if (ROOT / local).resolve() == DATA.resolve())
    assert Path(data) == Path(repo).parent / "shared" / "data", "studies name the data ../shared/data from the repo"
    home = "/home/" + cluster["auth"]["ssh_user"]
    installs = [c.replace("~", home) for c in cluster["setup_commands"] if "pip install" in c]
    assert any(re.search(rf"-e\s+{re.escape(repo)}(\s|$)", c) for c in installs), installs


def test_cluster_runs_mlflow_on_the_head_for_the_workers(cluster):
    server = next(c for c in cluster["head_start_ray_commands"] if "mlflow server" in c)
    assert '--backend-store-uri "sqlite:///' in server
    assert "HEAD_IP=$(hostname -I" in server and "0.0.0.0" not in server, "listen on the private IP only"
    workers = " ".join(cluster["worker_start_ray_commands"])
    assert "MLFLOW_TRACKING_URI=http://$RAY_HEAD_IP:5000" in workers
    assert workers.index("MLFLOW_TRACKING_URI") < workers.index("ray start"), "Ray workers inherit the URI"


def test_cluster_commands_are_valid_shell(cluster):
    for field in COMMAND_FIELDS:
        for command in cluster.get(field, []):
            check = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True)
            assert check.returncode == 0, f"{field}: {command}\n{check.stderr}"


@pytest.mark.slow  # the server's first start creates its database: 15-70 s here
def test_head_mlflow_command_serves_runs_and_artifacts(cluster, tmp_path):
    """Run the head's MLflow start command (loopback, a free port) and log a run with an artifact over HTTP."""
    command = next(c for c in cluster["head_start_ray_commands"] if "mlflow server" in c)
    port = free_port()
    command = command.replace("5000", str(port))
    home, bin_dir = tmp_path / "home", tmp_path / "bin"
    home.mkdir()
    bin_dir.mkdir()
    (bin_dir / "hostname").write_text("#!/bin/sh\necho 127.0.0.1\n")  # the head's private IP, here loopback
    (bin_dir / "hostname").chmod(0o755)
    env = dict(os.environ, HOME=str(home), PATH=f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}")
    started = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True, timeout=180)
    pid_file = home / "mlflow" / "server.pid"
    try:
        assert started.returncode == 0, started.stderr + (home / "mlflow" / "server.log").read_text()[-3000:]
        exported = dict(re.findall(r"export (\w+)=(\S+)", (home / ".xfer_env").read_text()))
        uri = exported["MLFLOW_TRACKING_URI"]
        assert uri == f"http://127.0.0.1:{port}"
        worker = ("from xfer import track\n"
                  "from pathlib import Path\n"
                  "uri = track.resolve_tracking_uri()\n"
                  "exp = track.ensure_experiment(uri, 'cluster-check')\n"
                  "run = track.client(uri).create_run(exp, tags={'xfer.kind': 'trial'}).info.run_id\n"
                  "track.log_metrics(uri, run, {'val_auc': 0.75}, step=1)\n"
                  "Path('note.txt').write_text('from a worker')\n"
                  "track.client(uri).log_artifact(run, 'note.txt', 'eval')\n"
                  "track.client(uri).set_terminated(run, 'FINISHED')\n")
        logged = subprocess.run([sys.executable, "-c", worker], cwd=tmp_path, capture_output=True, text=True,
                                env=dict(os.environ, MLFLOW_TRACKING_URI=uri), timeout=120)
        assert logged.returncode == 0, logged.stderr[-3000:]
        runs = mlflow.MlflowClient(f"sqlite:///{home / 'mlflow' / 'mlflow.db'}").search_runs(
            [mlflow.MlflowClient(uri).get_experiment_by_name("cluster-check").experiment_id])
        assert [r.info.status for r in runs] == ["FINISHED"]
        assert runs[0].data.metrics["val_auc"] == 0.75
        stored = list((home / "mlflow" / "artifacts").rglob("note.txt"))
        assert [p.read_text() for p in stored] == ["from a worker"], "artifacts go through the server to the head"
    finally:
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid_file.read_text()), signal.SIGTERM)  # the server's own session
            time.sleep(1)
            kill_session(int(pid_file.read_text()))


# ---------------------------------------------------------------- a study on a separately started Ray head


@pytest.mark.slow
def test_study_runs_on_a_separately_started_ray_head(tmp_path):
    study = write_study(ROOT / "experiments" / "smoke.yaml", tmp_path, {})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with local_ray_head(num_cpus=2) as env:
        env["MLFLOW_TRACKING_URI"] = uri
        run = subprocess.run([sys.executable, "-m", "xfer.run", str(study), "--no-report"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=900)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert f"[xfer] joined the Ray cluster at {env['RAY_ADDRESS']}" in output
    runs = trial_runs(uri, "smoke")
    finished = [r.data.tags["xfer.trial_key"] for r in runs if r.info.status == "FINISHED"]
    assert sorted(finished) == sorted(expected_trial_keys(study)), "one FINISHED run per trial"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["failed"] == 0 and summary["trials"] == len(finished)



def test_starting_ray_keeps_the_study_s_sigterm_handler_and_per_worker_log_lines():
    """Ray's driver installs its own SIGTERM handler (SystemExit(1), then an abort): a study stopped by SIGTERM
    while its stages trained ended 'failed' instead of 'interrupted' with exit 143. connect() keeps the handler."""
    script = ("import signal\nfrom xfer.cluster import connect\nimport os\n"
              "def mine(signum, frame): pass\n"
              "signal.signal(signal.SIGTERM, mine)\nconnect(None)\n"
              "import ray._private.ray_logging as logs\n"
              "print(signal.getsignal(signal.SIGTERM) is mine, logs.RAY_DEDUP_LOGS)\n"
              "import ray; ray.shutdown()\n")
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=ray_env(short_temp_dir("xsig")),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.split()[-2:] == ["True", "False"], run.stdout
