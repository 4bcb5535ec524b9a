"""One trial = one (init, model, n, seed): build, initialise, train, test, and record it in MLflow."""
from __future__ import annotations

import hashlib
import json
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np
import torch

from xfer import track
from xfer.checkpoint import CHECKPOINT_ARTIFACT, save_checkpoint
from xfer.config import InitConfig, StudyConfig, flatten, set_values
from xfer.data.prepare import PreparedData, prepare_data
from xfer.data.splits import nested_subsets
from xfer.metrics import classification_metrics, per_class_report
from xfer.train import EpochHook, fit, pick_device, predict_probs


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
        return {"xfer.kind": "trial", "xfer.study": study, "xfer.trial_key": self.key, "init": self.init.name,
                "strategy": self.init.strategy, "model": self.model, "n_per_class": str(self.n_per_class),
                "seed": str(self.seed), "dataset": dataset}


def study_fingerprint(study: StudyConfig) -> str:
    """Hash of everything that changes a trial's result; a finished run is reused only if it matches."""
    ignore = ("trials.", "ray.", "tracking.", "analysis.", "resources.", "output_dir", "description")
    values = {k: v for k, v in set_values(study).items() if not k.startswith(ignore)}
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def positive_index(study: StudyConfig) -> int:
    classes = study.data.classes
    return classes.index(study.data.positive_class) if study.data.positive_class else len(classes) - 1


def finished_metrics(uri: str, experiment_id: str, key: str, fingerprint: str) -> Optional[dict]:
    """Final metrics of this trial's finished run, if one exists (resume never re-runs it)."""
    run = track.find_run(uri, experiment_id, {"xfer.trial_key": key, "xfer.study_hash": fingerprint})
    return dict(run.data.metrics, run_id=run.info.run_id) if track.is_finished(run) else None


def _log_test_artifacts(uri: str, run_id: str, prepared: PreparedData, test_idx: np.ndarray, probs: np.ndarray,
                        matrix: list[list[int]], state_dict: dict, meta: dict) -> None:
    c = track.client(uri)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        save_checkpoint(tmp / "best.pt", state_dict, meta)
        c.log_artifact(run_id, str(tmp / "best.pt"), str(Path(CHECKPOINT_ARTIFACT).parent))
        rows = ["index,patient_id,label," + ",".join(f"prob_{c_}" for c_ in prepared.classes)]
        for i, p in zip(test_idx, probs):
            rows.append(f"{i},{prepared.patient_ids[i]},{prepared.labels[i]}," + ",".join(f"{v:.6f}" for v in p))
        (tmp / "test_predictions.csv").write_text("\n".join(rows) + "\n")
        (tmp / "confusion_matrix.json").write_text(json.dumps({"classes": list(prepared.classes), "matrix": matrix}))
        c.log_artifact(run_id, str(tmp / "test_predictions.csv"), "eval")
        c.log_artifact(run_id, str(tmp / "confusion_matrix.json"), "eval")


def run_trial(study: StudyConfig, spec: TrialSpec, uri: str, experiment_id: str,
              parent_run_id: Optional[str] = None, on_epoch: Optional[EpochHook] = None,
              resume: Optional[dict] = None, base_dir: Path = Path(".")) -> dict:
    """Train and test one trial, logging it as one MLflow run; returns the final metrics."""
    from xfer.inits import apply_init
    from xfer.models import build_model

    fingerprint = study_fingerprint(study)
    done = finished_metrics(uri, experiment_id, spec.key, fingerprint)
    if done is not None:
        return done
    dataset = "+".join(d.name for d in study.data.datasets)
    tags = dict(spec.tags(study.name, dataset), **{"xfer.study_hash": fingerprint})
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run_id = track.open_run(uri, experiment_id, spec.key, tags, ("xfer.trial_key", "xfer.study_hash"))
    try:
        prepared = prepare_data(study.data, base_dir)
        subsets = nested_subsets(np.asarray(prepared.split.train), prepared.labels,
                                 study.trials.n_per_class, spec.seed)
        train_idx = np.asarray(subsets[spec.n_per_class])
        val_idx, test_idx = np.asarray(prepared.split.val), np.asarray(prepared.split.test)
        classes, channels, positive = prepared.classes, study.data.channels, positive_index(study)

        torch.manual_seed(spec.seed)  # checkpoint.build_initial_model repeats exactly these steps
        model = build_model(spec.model, len(classes), channels)
        info = apply_init(model, spec.model, spec.init, channels)
        params = {k: v for k, v in flatten(study).items() if not k.startswith("trials.")}
        params.update({"init.name": spec.init.name, "init.strategy": spec.init.strategy,
                       "init.source": info.source, "init.normalization": info.normalization,
                       "init.notes": info.notes, "model": spec.model, "n_per_class": spec.n_per_class,
                       "seed": spec.seed, "n_train": len(train_idx), "n_val": len(val_idx),
                       "n_test": len(test_idx), "device": str(pick_device())})
        track.log_params(uri, run_id, params)

        def log_epoch(epoch: int, metrics: dict, state: Callable[[], dict]) -> None:
            track.log_metrics(uri, run_id, metrics, step=epoch)
            if on_epoch is not None:
                on_epoch(epoch, metrics, state)

        result = fit(model, spec.model, prepared.images_at, prepared.labels, train_idx, val_idx, study.train,
                     study.data.image_size, info.normalization, classes, positive, spec.seed,
                     on_epoch=log_epoch, resume=resume)
        probs = predict_probs(model, prepared.images_at(study.data.image_size)[test_idx], info.normalization,
                              pick_device())
        y_test = prepared.labels[test_idx]
        final = classification_metrics(y_test, probs, classes, positive, "test_")
        prf, matrix = per_class_report(y_test, probs, classes)
        final.update(prf)
        final.update({"best_epoch": result.best_epoch, "best_val_auc": result.best_val_auc,
                      "epochs_trained": len(result.history), "train_seconds": result.train_seconds})
        track.log_metrics(uri, run_id, final, step=0)
        meta = {"model": spec.model, "num_classes": len(classes), "in_channels": channels,
                "classes": list(classes), "image_size": study.data.image_size,
                "normalization": info.normalization, "strategy": spec.init.strategy,
                "source": spec.init.source or "", "init": spec.init.name, "seed": spec.seed}
        _log_test_artifacts(uri, run_id, prepared, test_idx, probs, matrix, result.best_state, meta)
        track.client(uri).set_terminated(run_id, "FINISHED")
        return dict(final, run_id=run_id)
    except BaseException as error:
        c = track.client(uri)
        c.log_text(run_id, "".join(traceback.format_exception(error)), "error.txt")
        c.set_terminated(run_id, "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
