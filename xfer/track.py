"""MLflow bookkeeping: the client, tag names, artifact paths, experiments, and finding a run again on resume."""
from __future__ import annotations

import logging
import math
import os
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import mlflow
from mlflow.entities import RunStatus

from xfer.config import TrackingConfig
from xfer.paths import inside
from xfer.record import KIND_TAG, STUDY_TAG

MAX_PARAM_LENGTH = 6000

# tags every xfer run carries; analysis finds runs by them (a trial run's own tags: xfer.record)
STAGE, STUDY = "stage", "study"
STAGE_TAG = "xfer.stage"
STAGE_KEY_TAG = "xfer.stage_key"
PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # MLflow 3's UI opens a model-training experiment on its runs table
NOTE_TAG = "mlflow.note.content"  # the description the MLflow UI shows on an experiment or run
STAGE_EXPERIMENT = "xfer-stages"  # stage runs of every study: stages are cached and shared across studies

# artifact paths inside a run (a trial run's own: xfer.record)
ERROR_ARTIFACT = "error.txt"
MANIFEST_ARTIFACT = "manifest.json"
REPORT_ARTIFACTS = "report"  # a folder, on the study run
SHORTCUT_ARTIFACT = "analysis/shortcut_probe.json"
ANALYSIS_CONFIG_ARTIFACT = "analysis/config.json"
STUDY_TRIALS_ARTIFACT = "trials.json"  # on the study run: {"run_ids": [...]}, the trial runs that make up the study
IMAGES_ARTIFACT = "analysis/images.npz"

# A new sqlite store announces its schema migration at INFO ("Creating initial MLflow database tables...",
# "Updating database tables", alembic's "Running upgrade ..."): routine, so quiet unless someone set a level
for _name in ("mlflow.store.db.utils", "alembic"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)


def kind_filter(kind: str) -> str:
    """MLflow search filter for the runs of one kind (trial, stage, study)."""
    return f"tags.`{KIND_TAG}` = '{kind}'"


def resolve_tracking_uri(uri: Optional[str] = None) -> str:
    """Explicit URI, else MLFLOW_TRACKING_URI, else an embedded sqlite file in the working directory."""
    if uri:
        return uri
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def tracking_for(cfg: TrackingConfig, default_experiment: str) -> tuple[str, str]:
    """(tracking URI, experiment name): the YAML wins, then the environment, then the defaults."""
    return resolve_tracking_uri(cfg.uri), cfg.experiment or default_experiment


def client(uri: str) -> mlflow.MlflowClient:
    return mlflow.MlflowClient(tracking_uri=uri)


def artifact_location(uri: str, name: str) -> Optional[str]:
    """Beside a sqlite file: `<db folder>/mlartifacts/<experiment>` (absolute, so Ray workers agree)."""
    if uri.startswith("sqlite:///"):
        return inside(Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts", name).as_uri()
    return None  # a tracking server decides


def ensure_experiment(uri: str, name: str) -> str:
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    try:
        return c.create_experiment(name, artifact_location=artifact_location(uri, name),
                                   tags={EXPERIMENT_KIND_TAG: "custom_model_development"})
    except mlflow.exceptions.MlflowException as e:  # created by a concurrent process meanwhile, or not writable
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise TrackingStoreError(store_error_message(uri, e)) from None
        return exp.experiment_id


class TrackingStoreError(RuntimeError):
    """The MLflow store refused a write (a read-only database, a full disk, a server that said no)."""


def store_error_message(uri: str, error: Exception) -> str:
    """One line for people: which store, what it said (a read-only database named as such), what to do."""
    text = str(error)
    said = "readonly database" if "readonly database" in text else text.splitlines()[0][:300]
    return (f"the MLflow store {uri} cannot be written ({said}); make the database file and its folder writable, "
            f"or point tracking.uri / MLFLOW_TRACKING_URI at a writable store")


def find_run(uri: str, experiment_id: str, tags: dict[str, str]) -> Optional[mlflow.entities.Run]:
    """The newest run whose tags all match, or None."""
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    runs = client(uri).search_runs([experiment_id], filter_string=query, order_by=["attributes.start_time DESC"],
                                   max_results=1)
    return runs[0] if runs else None


def is_finished(run: Optional[mlflow.entities.Run]) -> bool:
    return run is not None and run.info.status == RunStatus.to_string(RunStatus.FINISHED)


def open_run(uri: str, experiment_id: str, name: str, tags: dict[str, str], match: tuple[str, ...],
             from_start: bool = False) -> str:
    """Reuse the unfinished run whose `match` tags agree (a resumed or retried trial), or start one.

    `from_start`: the trial trains again from its first epoch (no usable Tune checkpoint): an unfinished run that
    already logged epochs is deleted (MLflow's trash: `mlflow gc` purges it, `restore_run` brings it back) and a
    fresh run started, so each epoch is logged once (MLflow cannot delete a metric's history)."""
    c = client(uri)
    previous = find_run(uri, experiment_id, {k: tags[k] for k in match})
    if previous is not None and not is_finished(previous):
        if not (from_start and previous.data.metrics):
            c.update_run(previous.info.run_id, status="RUNNING")
            return previous.info.run_id
        c.delete_run(previous.info.run_id)
    return c.create_run(experiment_id, run_name=name, tags=tags).info.run_id


def log_params(uri: str, run_id: str, params: dict[str, Any]) -> None:
    """Log params once; on a resumed run the already-logged ones are skipped (MLflow refuses changes)."""
    from mlflow.entities import Param

    c = client(uri)
    logged = c.get_run(run_id).data.params
    fresh = [Param(k, str(v)[:MAX_PARAM_LENGTH]) for k, v in params.items() if k not in logged]
    for start in range(0, len(fresh), 100):
        c.log_batch(run_id, params=fresh[start:start + 100])


def log_metrics(uri: str, run_id: str, metrics: dict[str, float], step: int) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    batch = [Metric(k, float(v), now, step) for k, v in metrics.items()
             if isinstance(v, (int, float)) and not math.isnan(float(v))]
    client(uri).log_batch(run_id, metrics=batch)


def last_step(uri: str, run_id: str, metric: str) -> int:
    """The highest step logged for `metric` in the run (0: none)."""
    return max((m.step for m in client(uri).get_metric_history(run_id, metric)), default=0)


def log_file(uri: str, run_id: str, path: Path, artifact_path: str) -> None:
    """Log `path` so that it lands at `artifact_path` (a folder/name path as in the constants above)."""
    folder = str(Path(artifact_path).parent)
    client(uri).log_artifact(run_id, str(path), None if folder == "." else folder)


@contextmanager
def finishing(uri: str, run_id: str) -> Iterator[None]:
    """Mark the run FINISHED when the block ends; on an error log its traceback and mark it FAILED (KILLED)."""
    c = client(uri)
    try:
        yield
    except BaseException as error:
        c.log_text(run_id, "".join(traceback.format_exception(error)), ERROR_ARTIFACT)
        # SystemExit: Ray's SIGTERM handler in a worker that Tune stops on an interrupt — killed, not failed
        c.set_terminated(run_id, "KILLED" if isinstance(error, (KeyboardInterrupt, SystemExit)) else "FAILED")
        raise
    c.set_terminated(run_id, "FINISHED")


def study_run_id(uri: str, experiment_id: str, study: Optional[str], reuse: bool) -> str:
    """The parent 'study' run (of `study`, or of any study when None): the newest if `reuse`, else a new one."""
    tags = {KIND_TAG: STUDY, **({STUDY_TAG: study} if study else {})}
    previous = find_run(uri, experiment_id, tags) if reuse else None
    if previous is not None:
        return previous.info.run_id
    name = study or experiment_name(uri, experiment_id)
    return client(uri).create_run(experiment_id, run_name=f"study:{name}",
                                  tags={KIND_TAG: STUDY, STUDY_TAG: name}).info.run_id


def experiment_name(uri: str, experiment_id: str) -> str:
    return client(uri).get_experiment(experiment_id).name
