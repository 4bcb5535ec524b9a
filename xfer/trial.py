"""One trial = one (init, model, n, seed[, fold, repeat]), trained and tested through `xfer.pipeline` as one MLflow run."""
from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from xfer import record, track
from xfer.checkpoint import save_checkpoint
from xfer.config import StudyConfig, flatten
from xfer.data.prepare import PreparedData, prepare_data, prepare_external
from xfer.data.splits import nested_subsets
from xfer.metrics import per_class_report
from xfer.paths import CorruptCacheWarning
from xfer.external import score_external
from xfer.pipeline import Tested, fit_summary, train_and_test, train_logged
from xfer.plan import TrialSpec
from xfer.record import EVALUATION
from xfer.reuse import reuse_key
from xfer.train import EpochHook, FitData


def finished_metrics(uri: str, experiment_id: str, key: str, fingerprint: str) -> Optional[dict]:
    """Final metrics of this trial's finished run, if one exists (resume never re-runs it)."""
    run = track.find_run(uri, experiment_id, {record.TRIAL_KEY_TAG: key, record.STUDY_HASH_TAG: fingerprint})
    if not track.is_finished(run) or run.data.tags.get(record.OUTCOME_TAG) == record.STOPPED_EARLY:
        return None  # a trial a scheduler stopped is no result to reuse
    return dict(run.data.metrics, run_id=run.info.run_id)


def trial_data(study: StudyConfig, prepared: PreparedData, spec: TrialSpec) -> FitData:
    """The trial's training subset (n per class of the split's or fold's training part, nested across n for one
    seed) and its validation part."""
    subsets = nested_subsets(np.asarray(prepared.split.train), prepared.labels, study.trials.n_per_class, spec.seed)
    return FitData(prepared.images_at, prepared.labels, np.asarray(subsets[spec.n_per_class]),
                   np.asarray(prepared.split.val), prepared.classes, study.data.image_size,
                   study.data.positive_index)


def split_listings(prepared: PreparedData, data: FitData, test_idx: np.ndarray) -> dict[str, pd.DataFrame]:
    """The images a trial trained, validated and tested on (file, patient, class), for MLflow's dataset inputs."""
    def listing(idx) -> pd.DataFrame:
        idx = np.asarray(idx)
        return pd.DataFrame({"file": [prepared.records[i].path for i in idx], "patient_id": prepared.patient_ids[idx],
                             "label": [prepared.classes[k] for k in prepared.labels[idx]]})

    return {"train": listing(data.train_idx), "validation": listing(data.val_idx), "test": listing(test_idx)}


def _log_test_artifacts(uri: str, run_id: str, prepared: PreparedData, data: FitData, tested: Tested,
                        matrix: list[list[int]], key: str, log_model: bool) -> None:
    from xfer.analysis.figures import confusion_matrix_figure
    from xfer.mlflow_model import log_split_inputs, log_trial_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checkpoint = save_checkpoint(tmp / "best.pt", tested.fit.best_state, tested.meta)
        track.log_file(uri, run_id, checkpoint, record.CHECKPOINT_ARTIFACT)
        files = [prepared.records[i].path for i in tested.test_idx]
        record.write_predictions(record.predictions_table(
            {"index": tested.test_idx, "file": files, "patient_id": prepared.patient_ids[tested.test_idx],
             "label": prepared.labels[tested.test_idx]}, tested.probs, prepared.classes), tmp / "test_predictions.csv")
        (tmp / "confusion_matrix.json").write_text(json.dumps({"classes": list(prepared.classes), "matrix": matrix}))
        confusion_matrix_figure(np.array(matrix), prepared.classes, tmp / "confusion_matrix.png", key)
        track.log_file(uri, run_id, tmp / "test_predictions.csv", record.PREDICTIONS_ARTIFACT)
        track.log_file(uri, run_id, tmp / "confusion_matrix.json", record.CONFUSION_ARTIFACT)
        track.log_file(uri, run_id, tmp / "confusion_matrix.png", record.CONFUSION_FIGURE_ARTIFACT)
        log_split_inputs(uri, run_id, split_listings(prepared, data, tested.test_idx))
        if log_model:  # tracking.log_models: all (a model that loads the checkpoint above: one copy of the weights)
            log_trial_model(uri, run_id, files, prepared.classes)


def keyed_resume(resume: Optional[dict], on_epoch: Optional[EpochHook], key: str,
                 fingerprint: str) -> tuple[Optional[dict], Optional[EpochHook]]:
    """A saved state is used only by the trial that saved it, with the settings it saved it under (its reuse key);
    the hook stamps both on every state it saves."""
    stamp = {"trial_key": key, "reuse_key": fingerprint}
    if resume is not None and any(resume.get(k) != v for k, v in stamp.items()):
        warnings.warn(f"trial {key}: its saved state was written under other settings (the study was edited since); "
                      "it starts afresh from its first epoch", CorruptCacheWarning, stacklevel=2)
        resume = None
    if on_epoch is None:
        return resume, None
    return resume, lambda epoch, metrics, state: on_epoch(epoch, metrics, lambda: {**state(), **stamp})


def run_trial(study: StudyConfig, spec: TrialSpec, uri: str, experiment_id: str,
              parent_run_id: Optional[str] = None, on_epoch: Optional[EpochHook] = None,
              resume: Optional[dict] = None, base_dir: Path = Path(".")) -> dict:
    """Train and test one trial (and score it on data.external), logging it as one MLflow run; returns the
    final metrics. A finished run whose reuse key matches is returned instead. A tuning-phase trial trains and
    validates only: it never reads the test set nor an external set."""
    evaluating = spec.phase == EVALUATION
    prepared = prepare_data(study.data, base_dir, fold=spec.fold, repeat=spec.repeat)
    data = trial_data(study, prepared, spec)
    test_idx = np.asarray(prepared.split.test) if evaluating else np.zeros(0, dtype=int)
    parts = (("train", data.train_idx), ("val", data.val_idx), ("test", test_idx))
    ids = {part: [prepared.records[i].path for i in idx] for part, idx in parts if evaluating or part != "test"}
    axes = {"model": spec.model, "n_per_class": spec.n_per_class, "seed": spec.seed, **spec.folds,
            **dict(spec.sweep)}
    fingerprint = reuse_key(study, spec.init, ids, base_dir, axes)
    done = finished_metrics(uri, experiment_id, spec.key, fingerprint)
    if done is not None:
        return done
    resume, on_epoch = keyed_resume(resume, on_epoch, spec.key, fingerprint)
    dataset = "+".join(d.name for d in study.data.datasets)
    tags = dict(spec.tags(study.name, dataset).to_mlflow(), **{record.STUDY_HASH_TAG: fingerprint})
    if parent_run_id:
        tags[track.PARENT_TAG] = parent_run_id
    run_id = track.open_run(uri, experiment_id, spec.key, tags, (record.TRIAL_KEY_TAG, record.STUDY_HASH_TAG),
                            from_start=resume is None)  # a restarted trial logs its epochs into a fresh run
    if on_epoch is not None:  # each epoch's report names its run (a trial a scheduler stops is found by it)
        report = on_epoch
        on_epoch = lambda epoch, metrics, state: report(epoch, dict(metrics, run_id=run_id), state)  # noqa: E731
    with track.finishing(uri, run_id):
        params = {k: v for k, v in flatten(study).items() if not k.startswith("trials.")}
        params.update({"init.name": spec.init.name, "init.strategy": spec.init.strategy, "model": spec.model,
                       "n_per_class": spec.n_per_class, "seed": spec.seed, **spec.folds,
                       "n_train": len(data.train_idx), "n_val": len(data.val_idx), "n_test": len(test_idx)})
        if not evaluating:
            fitted = train_logged(uri, run_id, spec.model, spec.init, data, study.train, study.data.channels,
                                  spec.seed, params, on_epoch, resume)[2]
            track.log_metrics(uri, run_id, fit_summary(fitted), step=0)
            return dict(fit_summary(fitted), run_id=run_id)
        tested = train_and_test(uri, run_id, spec.model, spec.init, data, test_idx, study.train,
                                study.data.channels, spec.seed, params, on_epoch, resume)
        prf, matrix = per_class_report(prepared.labels[test_idx], tested.probs, prepared.classes)
        track.log_metrics(uri, run_id, prf, step=0)
        _log_test_artifacts(uri, run_id, prepared, data, tested, matrix, spec.key,
                            log_model=study.tracking.log_models == "all")
        external = score_external(uri, run_id, tested.model, tested.info.normalization,
                                  prepare_external(study.data, prepared, base_dir), prepared.classes,
                                  study.data.positive_index)
    return dict(tested.metrics, **prf, **external, run_id=run_id)
