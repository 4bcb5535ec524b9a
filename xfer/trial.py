"""One trial = one (init, model, n, seed): train and test it through `xfer.pipeline`, recorded as one MLflow run."""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from xfer import track
from xfer.checkpoint import save_checkpoint
from xfer.config import InitConfig, StudyConfig, flatten, set_values
from xfer.data.prepare import PreparedData, prepare_data
from xfer.data.splits import nested_subsets
from xfer.metrics import per_class_report
from xfer.pipeline import Tested, train_and_test
from xfer.train import EpochHook, FitData


@dataclass(frozen=True)
class TrialSpec:
    init: InitConfig  # `stage:` sources already resolved to checkpoint files
    model: str
    n_per_class: Union[int, str]
    seed: int

    @property
    def key(self) -> str:
        return f"{self.init.name}|{self.model}|n={self.n_per_class}|seed={self.seed}"

    def tags(self, study: str, dataset: str) -> dict[str, str]:
        return {track.KIND_TAG: track.TRIAL, track.STUDY_TAG: study, track.TRIAL_KEY_TAG: self.key,
                "init": self.init.name, "strategy": self.init.strategy, "model": self.model,
                "n_per_class": str(self.n_per_class), "seed": str(self.seed), "dataset": dataset}


def study_fingerprint(study: StudyConfig) -> str:
    """Hash of everything that changes a trial's result; a finished run is reused only if it matches."""
    ignore = ("trials.", "ray.", "tracking.", "analysis.", "resources.", "output_dir", "description")
    values = {k: v for k, v in set_values(study).items() if not k.startswith(ignore)}
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_metrics(uri: str, experiment_id: str, key: str, fingerprint: str) -> Optional[dict]:
    """Final metrics of this trial's finished run, if one exists (resume never re-runs it)."""
    run = track.find_run(uri, experiment_id, {track.TRIAL_KEY_TAG: key, track.STUDY_HASH_TAG: fingerprint})
    return dict(run.data.metrics, run_id=run.info.run_id) if track.is_finished(run) else None


def trial_data(study: StudyConfig, prepared: PreparedData, spec: TrialSpec) -> FitData:
    """The trial's training subset (n per class, nested across n for one seed) and the study's validation split."""
    subsets = nested_subsets(np.asarray(prepared.split.train), prepared.labels, study.trials.n_per_class, spec.seed)
    return FitData(prepared.images_at, prepared.labels, np.asarray(subsets[spec.n_per_class]),
                   np.asarray(prepared.split.val), prepared.classes, study.data.image_size,
                   study.data.positive_index)


def _log_test_artifacts(uri: str, run_id: str, prepared: PreparedData, tested: Tested,
                        matrix: list[list[int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        track.log_file(uri, run_id, save_checkpoint(tmp / "best.pt", tested.fit.best_state, tested.meta),
                       track.CHECKPOINT_ARTIFACT)
        rows = ["index,patient_id,label," + ",".join(f"prob_{c}" for c in prepared.classes)]
        for i, p in zip(tested.test_idx, tested.probs):
            rows.append(f"{i},{prepared.patient_ids[i]},{prepared.labels[i]}," + ",".join(f"{v:.6f}" for v in p))
        (tmp / "test_predictions.csv").write_text("\n".join(rows) + "\n")
        (tmp / "confusion_matrix.json").write_text(json.dumps({"classes": list(prepared.classes), "matrix": matrix}))
        track.log_file(uri, run_id, tmp / "test_predictions.csv", track.PREDICTIONS_ARTIFACT)
        track.log_file(uri, run_id, tmp / "confusion_matrix.json", track.CONFUSION_ARTIFACT)


def run_trial(study: StudyConfig, spec: TrialSpec, uri: str, experiment_id: str,
              parent_run_id: Optional[str] = None, on_epoch: Optional[EpochHook] = None,
              resume: Optional[dict] = None, base_dir: Path = Path(".")) -> dict:
    """Train and test one trial, logging it as one MLflow run; returns the final metrics."""
    fingerprint = study_fingerprint(study)
    done = finished_metrics(uri, experiment_id, spec.key, fingerprint)
    if done is not None:
        return done
    dataset = "+".join(d.name for d in study.data.datasets)
    tags = dict(spec.tags(study.name, dataset), **{track.STUDY_HASH_TAG: fingerprint})
    if parent_run_id:
        tags[track.PARENT_TAG] = parent_run_id
    run_id = track.open_run(uri, experiment_id, spec.key, tags, (track.TRIAL_KEY_TAG, track.STUDY_HASH_TAG))
    with track.finishing(uri, run_id):
        prepared = prepare_data(study.data, base_dir)
        data = trial_data(study, prepared, spec)
        test_idx = np.asarray(prepared.split.test)
        params = {k: v for k, v in flatten(study).items() if not k.startswith("trials.")}
        params.update({"init.name": spec.init.name, "init.strategy": spec.init.strategy, "model": spec.model,
                       "n_per_class": spec.n_per_class, "seed": spec.seed, "n_train": len(data.train_idx),
                       "n_val": len(data.val_idx), "n_test": len(test_idx)})
        tested = train_and_test(uri, run_id, spec.model, spec.init, data, test_idx, study.train,
                                study.data.channels, spec.seed, params, on_epoch, resume)
        prf, matrix = per_class_report(prepared.labels[test_idx], tested.probs, prepared.classes)
        track.log_metrics(uri, run_id, prf, step=0)
        _log_test_artifacts(uri, run_id, prepared, tested, matrix)
    return dict(tested.metrics, **prf, run_id=run_id)
