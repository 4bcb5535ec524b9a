"""What a study run's trials came to: the runs that stand for its plan, and how many finished, failed, were killed
or never started (summary.json and the study run's trials.json)."""
from __future__ import annotations

import sys
from typing import Optional

from mlflow.exceptions import MlflowException

from xfer import record, track


def child_trial_runs(uri: str, experiment_id: str, parent: str) -> list:
    """The trial runs this study run started (reused runs of earlier study runs are not among them)."""
    return track.client(uri).search_runs([experiment_id], f"{track.kind_filter(record.TRIAL)} and "
                                         f"tags.`{track.PARENT_TAG}` = '{parent}'", max_results=50000)


def study_trial_run_ids(uri: str, experiment_id: str, parent: str, results, keys: Optional[set] = None) -> list[str]:
    """The trial runs that make up this study run: each finished trial's run (reused ones from earlier study runs
    included), then this study run's unfinished trial runs; with the plan's `keys`, one run per planned trial."""
    runs = current_runs(child_trial_runs(uri, experiment_id, parent), results, keys)
    finished = finished_run_ids(results, runs)
    unfinished = [run.info.run_id for run in runs if run.info.run_id not in finished]
    return [*finished, *unfinished]


def reported_run_ids(results) -> list[str]:
    """The runs Tune's results name as done (a unit's every run)."""
    return [run_id for r in results or () if r.error is None and r.metrics.get("trial_done")
            for run_id in str(r.metrics.get("run_ids") or r.metrics.get("run_id") or "").split(",") if run_id]


def current_runs(runs: list, results, keys: Optional[set]) -> list:
    """This study run's trial runs that stand for its plan: a run of a trial the plan no longer has, or of a trial
    whose result Tune reported in another run (the study was edited and resumed: the run before the edit), is
    history, not this study's result."""
    if keys is None:
        return runs
    reported = set(reported_run_ids(results))
    done_keys = {run.data.tags.get(record.TRIAL_KEY_TAG) for run in runs if run.info.run_id in reported}
    return [run for run in runs if run.data.tags.get(record.TRIAL_KEY_TAG) in keys and
            (run.info.run_id in reported or run.data.tags.get(record.TRIAL_KEY_TAG) not in done_keys)]


def finished_run_ids(results, runs: list) -> list[str]:
    """Trial runs finished: those Tune reported done, and this study run's FINISHED runs whose last report Tune
    never received (a SIGINT between the run's end and that report)."""
    reported = [r.metrics["run_id"] for r in results or () if r.error is None and r.metrics.get("run_id")]
    return list(dict.fromkeys([*reported, *(run.info.run_id for run in runs if run.info.status == "FINISHED")]))


def trial_outcomes(uri: str, experiment_id: str, parent: str, results, total: int,
                   keys: Optional[set] = None) -> dict[str, int]:
    """Trials finished (as MLflow holds them), failed, killed (in flight when the study stopped: their runs are
    marked KILLED) and never started; Tune's results are authoritative for failures when the grid returned."""
    runs = current_runs(child_trial_runs(uri, experiment_id, parent), results, keys)
    killed = 0
    for run in runs:
        if run.info.status in ("RUNNING", "SCHEDULED"):
            with tracking_may_fail():
                track.client(uri).set_terminated(run.info.run_id, "KILLED")
            killed += 1
        elif run.info.status == "KILLED":
            killed += 1
    finished = len(finished_run_ids(results, runs))  # MLflow's FINISHED runs count, whether Tune heard or not
    if results is not None:
        failed = sum(1 for r in results if r.error is not None)
    else:
        failed = sum(1 for r in runs if r.info.status == "FAILED")
    killed = min(killed, total - finished - failed)
    return {"finished": finished, "failed": failed, "killed": killed,
            "never_started": max(total - finished - failed - killed, 0)}


class tracking_may_fail:
    """Best effort while reporting an outcome: a store error is printed, not allowed to hide the outcome."""

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb) -> bool:
        if isinstance(error, MlflowException):
            print(f"[xfer] warning: {track.store_error_message('the MLflow store', error)}", file=sys.stderr)
            return True
        return False
