"""Helpers of the tests that run `python -m xfer.run` against a local Ray: temp dirs, Ray processes, studies."""
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import mlflow
import yaml

ROOT = Path(__file__).resolve().parents[1]


def not_above(rate: float, target: float, trials: int) -> bool:
    """The observed rate is consistent with a true rate ≤ target (one-sided, 2 binomial SEs)."""
    return rate <= target + 2 * (target * (1 - target) / trials) ** 0.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_temp_dir(prefix: str) -> Path:
    """A folder under /tmp with a short path: Ray's socket paths inside it must stay under 107 bytes."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


def ray_env(temp_dir: Path, **extra: str) -> dict[str, str]:
    """Environment for Ray processes kept to this test: loopback only, own temp dir and auth token."""
    token = temp_dir / "auth_token"
    if not token.exists():
        token.write_text(secrets.token_hex(32))
    env = dict(os.environ, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0",  # Ray then binds and connects on 127.0.0.1
               RAY_TMPDIR=str(temp_dir), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token),
               RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    env.update(extra)
    return env


def session_pids(session_id: int) -> list[int]:
    """Processes in the session a test started (its own processes and whatever they spawned)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if os.getsid(int(entry.name)) == session_id:
                    pids.append(int(entry.name))
    return pids


def kill_session(session_id: int) -> None:
    """SIGKILL every process left in a session this test started, by pid."""
    for pid in session_pids(session_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop(process: subprocess.Popen, grace_s: float = 60) -> None:
    """SIGTERM a process started with start_new_session=True, then kill what is left of its session."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace_s)
    kill_session(process.pid)
    process.wait(10)


def wait_for_port(port: int, process: subprocess.Popen, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout_s} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def local_ray_head(num_cpus: int = 2) -> Iterator[dict[str, str]]:
    """`ray start --head` on loopback, as on a cluster's head node; yields the environment that reaches it."""
    temp_dir = short_temp_dir("xrayhead")
    env = ray_env(temp_dir)
    port, log = free_port(), temp_dir.with_suffix(".log")
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={port}",
               "--node-ip-address=127.0.0.1", f"--num-cpus={num_cpus}", "--num-gpus=0", "--include-dashboard=false",
               f"--temp-dir={temp_dir}",
               f"--dashboard-agent-listen-port={free_port()}", "--disable-usage-stats"]
    with open(log, "w") as out:
        head = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, head, 120, log)
        yield dict(env, RAY_ADDRESS=f"127.0.0.1:{port}")
    finally:
        stop(head)
        shutil.rmtree(temp_dir, ignore_errors=True)
        log.unlink(missing_ok=True)


def write_study(source: Path, tmp: Path, changes: dict) -> Path:
    """A copy of a study file in tmp: absolute data roots, output in tmp, `changes` merged in (dotted keys)."""
    study = yaml.safe_load(source.read_text())
    for ds in study["data"]["datasets"]:
        ds["root"] = str((ROOT / ds["root"]).resolve())
    study["output_dir"] = str(tmp / "out")
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = study
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path = tmp / source.name
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def trial_runs(uri: str, experiment: str) -> list[mlflow.entities.Run]:
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], "tags.`xfer.kind` = 'trial'", max_results=5000)


def expected_trial_keys(study_file: Path) -> set[str]:
    study = yaml.safe_load(study_file.read_text())
    t, split = study["trials"], study["data"].get("split", {})
    names = [i.get("label") or i["strategy"] for i in t["init"]]
    folds = [f"|fold={k}|repeat={r}" for r in range(split.get("repeats") or 1) for k in range(split["folds"])] \
        if split.get("folds") else [""]
    return {f"{i}|{m}|n={n}|seed={s}{f}" for i in names for m in t["models"] for n in t["n_per_class"]
            for s in t.get("seeds", [0]) for f in folds}


# ---------------------------------------------------------------- the launcher config
