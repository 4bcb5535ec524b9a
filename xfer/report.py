"""`python -m xfer.report OUTPUT_DIR_OR_EXPERIMENT`: analyse a study's trials from MLflow and write its report."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Optional

import pandas as pd
from mlflow.tracking import MlflowClient

from xfer import track
from xfer.analysis.collect import (NothingInMLflowError, StudyRuns, confusion_matrices, load_study_runs,
                                  read_json_artifact, test_predictions)
from xfer.analysis.convergence import convergence_epochs
from xfer.analysis.document import Analysis, write_report
from xfer.analysis.ensembles import ensemble_table
from xfer.analysis.hypotheses import evaluate_hypotheses
from xfer.analysis.probe_images import AnalysisImages, log_analysis_images, read_analysis_images, select_analysis_images
from xfer.analysis.paired import positive_class
from xfer.analysis.probes import CKA_COLUMNS, probe_trials
from xfer.analysis.shortcut import ShortcutResult, shortcut_probe
from xfer.config import AnalysisConfig
from xfer.data.root import absolutize
from xfer.load import load_study
from xfer.study_info import study_json


def study_file(out_dir: Optional[Path], client: MlflowClient, run_id: str) -> Optional[Path]:
    """The study YAML, from `<out_dir>/study.json` or the study run's `study_file` param, if it still exists."""
    candidates = [study_json(out_dir).get("study_file"), client.get_run(run_id).data.params.get("study_file")]
    return next((Path(c) for c in candidates if c and Path(c).exists()), None)


def prepare_study_data(path: Path):
    """PreparedData of a study file (images decoded through the shared cache)."""
    from xfer.data.prepare import prepare_data

    study = load_study(path)
    return prepare_data(absolutize(study.data, path.parent), path.parent)


def probe_inputs(client: MlflowClient, run_id: str, cfg: AnalysisConfig, out_dir: Optional[Path],
                 notes: dict[str, str]) -> tuple[Optional[AnalysisImages], Optional[ShortcutResult]]:
    """Probe images and shortcut result stored on the study run; computed from the study's data (and
    stored) the first time, so later rebuilds need MLflow alone."""
    images = read_analysis_images(client, run_id)
    stored = read_json_artifact(client, run_id, track.SHORTCUT_ARTIFACT)
    shortcut = ShortcutResult(**{**stored, "sources": tuple(stored["sources"])}) if stored else None
    if images is not None and (shortcut is not None or not cfg.shortcut_probe):
        return images, shortcut
    path = study_file(out_dir, client, run_id)
    if path is None:
        if images is None:
            notes["probes"] = ("no probe images are stored on the study run and the study file is not found; "
                               "build the report once with the study's output folder (python -m xfer.report "
                               "OUTPUT_DIR) while its data is present")
        if cfg.shortcut_probe:
            notes["shortcut"] = "shortcut probe not stored on the study run and the study file is not found"
        return images, shortcut
    data = prepare_study_data(path)
    if images is None:
        split = data.split
        images = select_analysis_images(data.images, data.labels, split.val, split.test, data.classes, cfg)
        log_analysis_images(client, run_id, images)
    if cfg.shortcut_probe and shortcut is None:
        shortcut = shortcut_probe(data, seed=cfg.bootstrap_seed)
        client.log_dict(run_id, shortcut.to_json(), track.SHORTCUT_ARTIFACT)
    return images, shortcut


def analyse(study: StudyRuns, run_id: str, cfg: AnalysisConfig, out_dir: Optional[Path] = None) -> Analysis:
    """Everything the report needs, from MLflow (plus the study's data the first time)."""
    client = track.client(study.tracking_uri)
    trials = study.trials.merge(convergence_epochs(study.histories), on="run_id", how="left")
    notes: dict[str, str] = {}
    images, shortcut = probe_inputs(client, run_id, cfg, out_dir, notes)
    probes = probe_trials(trials, study.tracking_uri, images, cfg.bootstrap_seed) if images is not None else None
    cka = probes.cka if probes is not None else pd.DataFrame(columns=CKA_COLUMNS)
    predictions = test_predictions(client, list(trials["run_id"]))
    ensembles = ensemble_table(trials, predictions, study.classes, positive_class(trials, study.classes))
    return Analysis(study, trials, evaluate_hypotheses(trials, cka, cfg, predictions, study.histories,
                                                     probes.cka_floor if probes is not None else None), ensembles,
                    confusion_matrices(client, list(trials["run_id"])), probes, images, shortcut, notes,
                    cfg.equivalence_margin, cfg.alpha, predictions=predictions, power=cfg.power)


def settings_for(client: MlflowClient, run_id: str, given: Optional[AnalysisConfig]) -> AnalysisConfig:
    """Given settings are stored on the study run; without them, the stored ones (else defaults) are used,
    so a rebuild repeats the study's own analysis."""
    if given is not None:
        client.log_dict(run_id, dataclasses.asdict(given), track.ANALYSIS_CONFIG_ARTIFACT)
        return given
    stored = read_json_artifact(client, run_id, track.ANALYSIS_CONFIG_ARTIFACT)
    known = {f.name for f in dataclasses.fields(AnalysisConfig)}
    return AnalysisConfig(**{k: v for k, v in (stored or {}).items() if k in known})


def build_report(tracking_uri: str, experiment: str, out_dir: str | Path,
                 analysis_cfg: Optional[AnalysisConfig] = None, parent_run_id: Optional[str] = None) -> Path:
    """Analyse the study, write `<out_dir>/report/report.html` (+ figures, tables) and log it under the
    study run's `report/` artifacts; returns the HTML path."""
    study = load_study_runs(tracking_uri, experiment, parent_run_id)
    client = track.client(tracking_uri)
    run_id = parent_run_id or track.study_run_id(tracking_uri, study.experiment_id, None, reuse=True)
    analysis = analyse(study, run_id, settings_for(client, run_id, analysis_cfg), Path(out_dir))
    path = write_report(analysis, Path(out_dir) / track.REPORT_ARTIFACTS)
    from xfer.mlflow_model import log_best_models  # imports MLflow's pyfunc flavour: only when a report is built

    log_best_models(tracking_uri, study.trials, study.classes)
    client.log_artifacts(run_id, str(path.parent), track.REPORT_ARTIFACTS)
    return path


def resolve_target(target: str, tracking_uri: Optional[str], out: Optional[Path]) -> tuple[str, str, Path]:
    """(tracking URI, experiment, output folder) from a study output folder or an experiment name."""
    from xfer.track import resolve_tracking_uri

    folder = Path(target)
    info = study_json(folder)
    if info:
        return tracking_uri or info["tracking_uri"], info["experiment"], out or folder
    if folder.is_dir():
        raise FileNotFoundError(f"{folder} has no study.json; pass a study output folder written by xfer.run "
                                "or an MLflow experiment name")
    if folder.exists() or "/" in target or target.startswith("."):  # a path (experiment names are plain names)
        raise FileNotFoundError(f"{folder} is not a study output folder (it does not exist, or is a file); pass "
                                "the folder xfer run wrote (outputs/<study>) or an MLflow experiment name")
    uri = resolve_tracking_uri(tracking_uri)
    store = Path(uri[len("sqlite:///"):].partition("?")[0]) if uri.startswith("sqlite:///") else None
    if store is not None and not store.is_file():  # reading must not create an empty store
        raise FileNotFoundError(f"no MLflow store at {uri}; pass --tracking-uri (the study's tracking.uri) or run "
                                "the report from the folder holding mlflow.db")
    return uri, target, out or Path("outputs") / target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xfer report", description=__doc__)
    parser.add_argument("target", help="a study output folder (with study.json) or an MLflow experiment name")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: study.json, MLFLOW_TRACKING_URI, "
                                               "or sqlite:///./mlflow.db)")
    parser.add_argument("--out", type=Path, help="folder to write report/ into (default: the study's output folder)")
    parser.add_argument("--study-run", help="the MLflow run id of one run of the study (default: its latest): the "
                                            "report of exactly the trials that run recorded, e.g. before a top-up")
    args = parser.parse_args(argv)
    try:
        uri, experiment, out = resolve_target(args.target, args.tracking_uri, args.out)
        path = build_report(uri, experiment, out, parent_run_id=args.study_run)
    except (NothingInMLflowError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
