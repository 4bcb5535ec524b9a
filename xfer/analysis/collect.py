"""Load a study's trial runs and their per-epoch metric histories from MLflow into pandas frames."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from xfer import record, track
from xfer.record import TrialTags, param_column

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per artifact floods the log
FOLD_TAGS = TrialTags.FOLDS  # data.split.folds: the test fold and the K-fold repeat (pooled per arm: xfer.analysis.pooled)
HISTORY_METRICS = ("val_auc", "val_loss", "train_loss")


class NothingInMLflowError(LookupError):
    """The tracking store has no such experiment, or the experiment has no finished trial: nothing to report."""


@dataclass(frozen=True)
class StudyRuns:
    """A study's finished trials (one row each, with final metrics), their histories, and failures."""

    tracking_uri: str
    experiment: str
    experiment_id: str
    trials: pd.DataFrame  # run_id, init, strategy, model, n_per_class, seed, ..., final metrics, params
    histories: pd.DataFrame  # long: run_id, metric, epoch, value
    failed: pd.DataFrame  # run_id, trial_key, status
    classes: tuple[str, ...]
    selection: str = ""  # how the trials were chosen: the study run's trials.json, or the fallback (a caveat)


def open_experiment(tracking_uri: str, experiment: str) -> tuple[MlflowClient, str]:
    """Client and experiment id for an experiment name; raises if the store has no such experiment."""
    client = track.client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        known = ", ".join(sorted(e.name for e in client.search_experiments())) or "none"
        raise NothingInMLflowError(f"no MLflow experiment {experiment!r} in {tracking_uri}; experiments there: {known}. "
                          "Pass the study's name (or its output folder) and the tracking URI it was run with.")
    return client, exp.experiment_id


def search_all(client: MlflowClient, experiment_id: str, filter_string: str) -> list[Run]:
    """Every run matching a filter, across result pages, oldest first."""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string, max_results=1000, page_token=token,
                                  order_by=["attributes.start_time ASC"])
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def n_order(n_per_class: str) -> float:
    """Sort key for n_per_class values ("10" < "100" < "all")."""
    return float("inf") if str(n_per_class) == "all" else float(n_per_class)


def sort_by_n(frame: pd.DataFrame, keys: tuple[str, ...] = ("init", "model")) -> pd.DataFrame:
    """Rows ordered by `keys`, then numeric n_per_class."""
    key = frame["n_per_class"].map(n_order)
    return frame.assign(_n=key).sort_values([*keys, "_n"]).drop(columns="_n").reset_index(drop=True)


def _trial_row(run: Run) -> dict:
    row = {"run_id": run.info.run_id, "status": run.info.status,
           **TrialTags.from_mlflow(run.info.run_id, run.data.tags).row()}
    row.update(run.data.metrics)
    row.update({param_column(k): v for k, v in run.data.params.items()})
    return row


def load_trials(client: MlflowClient, experiment_id: str) -> pd.DataFrame:
    """All evaluation trial runs (any status; tuning trials are never analysed), one row each: tags, final metrics
    and `param.*` columns."""
    runs = search_all(client, experiment_id, record.EVALUATION_TRIALS)
    frame = pd.DataFrame([_trial_row(r) for r in runs])
    if frame.empty:
        return pd.DataFrame(columns=["run_id", "status", "trial_key", *TrialTags.AXES])
    return frame


def load_histories(client: MlflowClient, run_ids: list[str],
                   metrics: tuple[str, ...] = HISTORY_METRICS) -> pd.DataFrame:
    """Per-epoch metric values (step = epoch) for the given runs, long format."""
    rows = [(run_id, m.key, int(m.step), float(m.value))
            for run_id in run_ids for key in metrics for m in client.get_metric_history(run_id, key)]
    frame = pd.DataFrame(rows, columns=["run_id", "metric", "epoch", "value"])
    return frame.sort_values(["run_id", "metric", "epoch"]).drop_duplicates(["run_id", "metric", "epoch"], keep="last")


def classes_of(trials: pd.DataFrame) -> tuple[str, ...]:
    """Class names, in the study's order, from the `test_auc_<class>` and `test_recall_<class>` metrics."""
    names = [c[len("test_recall_"):] for c in trials.columns if c.startswith("test_recall_")]
    if not names:
        names = [c[len("test_auc_"):] for c in trials.columns if c.startswith("test_auc_")]
    return tuple(names)


def study_trial_ids(client: MlflowClient, experiment_id: str, study_run_id: str | None) -> list[str] | None:
    """The trial run ids the study run recorded (its trials.json, reused runs included); None where it has none."""
    if study_run_id is None:
        newest = client.search_runs([experiment_id], track.kind_filter(track.STUDY), max_results=1,
                                    order_by=["attributes.start_time DESC"])
        study_run_id = newest[0].info.run_id if newest else None
    recorded = read_json_artifact(client, study_run_id, track.STUDY_TRIALS_ARTIFACT) if study_run_id else None
    return list(recorded["run_ids"]) if recorded else None


def select_study_trials(trials: pd.DataFrame, recorded: list[str] | None) -> tuple[pd.DataFrame, str]:
    """The study's own trials and how they were chosen: exactly the recorded run ids, else (older studies) the
    newest finished run per trial key, so runs left by an earlier version of an edited study drop out."""
    if recorded is not None:
        return trials[trials["run_id"].isin(set(recorded))], f"the {len(recorded)} trial runs the study run recorded"
    finished = trials[trials["status"] == "FINISHED"]
    newest = finished.drop_duplicates("trial_key", keep="last") if "trial_key" in finished else finished
    stale = len(finished) - len(newest)
    return (pd.concat([newest, trials[trials["status"] != "FINISHED"]]),
            "the study run records no trials.json (a study run before xfer logged one): the newest finished run "
            f"per trial key is used{f' ({stale} older runs of the same keys left out)' if stale else ''}")


def load_study_runs(tracking_uri: str, experiment: str, study_run_id: str | None = None) -> StudyRuns:
    """The finished trials of a study (those its study run recorded, else the newest per trial key) with their
    histories; unfinished trials of keys with no finished run listed apart."""
    client, experiment_id = open_experiment(tracking_uri, experiment)
    trials, selection = select_study_trials(load_trials(client, experiment_id),
                                            study_trial_ids(client, experiment_id, study_run_id))
    done = trials[trials["status"] == "FINISHED"].reset_index(drop=True)
    failed = trials.loc[(trials["status"] != "FINISHED") & ~trials["trial_key"].isin(set(done["trial_key"])),
                        ["run_id", "trial_key", "status"]].reset_index(drop=True)
    if done.empty:
        raise NothingInMLflowError(f"experiment {experiment!r} in {tracking_uri} has no finished trial runs "
                                   f"({len(failed)} unfinished); run the study first (python -m xfer.run STUDY.yaml).")
    histories = load_histories(client, list(done["run_id"]))
    classes = classes_from_artifact(client, done["run_id"].iloc[0]) or classes_of(done)
    return StudyRuns(tracking_uri, experiment, experiment_id, done, histories, failed, classes, selection)


def download_artifact(client: MlflowClient, run_id: str, path: str, dst: Path) -> Path | None:
    """Download one run artifact into `dst`; None when the run has no such artifact."""
    folder, _, name = path.rpartition("/")
    if name not in {Path(f.path).name for f in client.list_artifacts(run_id, folder or None)}:
        return None
    return Path(client.download_artifacts(run_id, path, str(dst)))


def read_json_artifact(client: MlflowClient, run_id: str, path: str) -> dict | None:
    """A JSON artifact of a run, parsed; None when absent."""
    with tempfile.TemporaryDirectory() as tmp:
        local = download_artifact(client, run_id, path, Path(tmp))
        return json.loads(local.read_text()) if local else None


def read_csv_artifact(client: MlflowClient, run_id: str, path: str) -> pd.DataFrame | None:
    """A CSV artifact of a run as a frame; None when absent."""
    with tempfile.TemporaryDirectory() as tmp:
        local = download_artifact(client, run_id, path, Path(tmp))
        return pd.read_csv(local) if local else None


def trial_seconds(client: MlflowClient, run_ids: list[str]) -> dict[str, float]:
    """run_id → wall seconds from the trial's start to its last test (or validation) metric: the trial's own time,
    not the run's end time (a model logged onto the run when the report is built moves that)."""
    out = {}
    for run_id in run_ids:
        run = client.get_run(run_id)
        for metric in ("test_auc", "best_val_auc"):
            history = client.get_metric_history(run_id, metric) if metric in run.data.metrics else []
            if history:
                out[run_id] = (max(m.timestamp for m in history) - run.info.start_time) / 1000
                break
        else:
            if run.info.end_time:
                out[run_id] = (run.info.end_time - run.info.start_time) / 1000
    return out


def test_predictions(client: MlflowClient, run_ids: list[str]) -> dict[str, pd.DataFrame]:
    """run_id → its eval/test_predictions.csv, for the runs that logged one."""
    return {r: p for r in run_ids if (p := read_csv_artifact(client, r, record.PREDICTIONS_ARTIFACT)) is not None}


def classes_from_artifact(client: MlflowClient, run_id: str) -> tuple[str, ...]:
    """Class names from a trial's `eval/confusion_matrix.json` (empty if absent)."""
    cm = read_json_artifact(client, run_id, record.CONFUSION_ARTIFACT)
    return tuple(cm["classes"]) if cm else ()


def confusion_matrices(client: MlflowClient, run_ids: list[str]) -> dict[str, np.ndarray]:
    """run_id → confusion matrix (rows: true class) for runs that logged one."""
    out = {}
    for run_id in run_ids:
        cm = read_json_artifact(client, run_id, record.CONFUSION_ARTIFACT)
        if cm:
            out[run_id] = np.asarray(cm["matrix"])
    return out
