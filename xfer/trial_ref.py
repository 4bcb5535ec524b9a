"""A trained trial as `xfer predict` and `xfer explain` name it: a run id, a checkpoint file, or a trial key (as the
console and the report print it) looked up in a study's MLflow experiment."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from xfer.checkpoint import load_trial_or_none


def add_trial_arguments(parser: argparse.ArgumentParser) -> None:
    """The trial argument of predict and explain, and where to find it."""
    parser.add_argument("trial", help="a trial: its MLflow run id, its checkpoint file, or its key as the console "
                                      "and the report print it, quoted: 'imagenet|cbr_small|n=10|seed=0'")
    parser.add_argument("--study", help="with a trial key: the study (its output folder, or its experiment name); "
                                        "default: any study in the store with that key")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: the --study's, else "
                                               "MLFLOW_TRACKING_URI or ./mlflow.db)")


def is_trial_key(ref: str) -> bool:
    return "|" in ref and not Path(ref).exists()


def trial_run_id(key: str, study: Optional[str], tracking_uri: Optional[str]) -> tuple[str, str]:
    """(run id, tracking URI) of the newest finished run of the trial `key` in `study` (any study if None)."""
    from xfer import record, track

    experiment = study
    if study is not None and Path(study).is_dir():
        from xfer.study_info import study_json

        info = study_json(Path(study))
        if not info:
            raise FileNotFoundError(f"--study {study}: no study.json there; pass a study output folder written by "
                                    f"xfer run, or the study's experiment name")
        experiment, tracking_uri = info["experiment"], tracking_uri or info["tracking_uri"]
    uri = track.resolve_tracking_uri(tracking_uri)
    client = track.client(uri)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise FileNotFoundError(f"--study {study}: no experiment {experiment!r} in {uri}")
        ids = [found.experiment_id]
    else:
        ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, f"tags.`{record.TRIAL_KEY_TAG}` = '{key}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"])
    if not runs:
        raise FileNotFoundError(f"no finished trial {key!r} in {uri}" + (f" (study {study})" if study else "")
                                + "; the keys are in the console's trial lines and the report")
    studies = sorted({r.data.tags.get(record.STUDY_TAG, "?") for r in runs})
    if len(studies) > 1:
        raise FileNotFoundError(f"trial {key!r} is in several studies ({', '.join(studies)}): name one with --study")
    return runs[0].info.run_id, uri


def load_named_trial(ref: str, tracking_uri: Optional[str], study: Optional[str] = None):
    """(model, meta) of a trial's run id, checkpoint file or trial key; else one line on stderr saying why, and None."""
    if is_trial_key(ref):
        try:
            ref, tracking_uri = trial_run_id(ref, study, tracking_uri)
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return None
        print(f"trial run {ref}", file=sys.stderr)
    return load_trial_or_none(ref, tracking_uri)
