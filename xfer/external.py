"""External validation: a trained trial's model scored on each `data.external` set, logged as `external/<name>/…`."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from torch import nn

from xfer import record, track
from xfer.data.prepare import ExternalSet
from xfer.metrics import classification_metrics
from xfer.train import pick_device, predict_probs

EXTERNAL_PREFIX = "external/{name}/"  # MLflow metric names allow '/'


def external_metrics(labels: np.ndarray, probs: np.ndarray, classes: tuple[str, ...], positive: int,
                     prefix: str) -> dict[str, float]:
    """classification_metrics less what the set cannot measure: sensitivity needs positives, specificity
    negatives, AUC both (a COVID-only set gives sensitivity alone); plus the image count."""
    metrics = classification_metrics(labels, probs, classes, positive, prefix)
    has_positive, has_negative = bool((labels == positive).any()), bool((labels != positive).any())
    undefined = {"sensitivity": not has_positive, "specificity": not has_negative}
    out = {k: v for k, v in metrics.items() if not undefined.get(k[len(prefix):], False)}
    return {**out, f"{prefix}images": float(len(labels))}


def score_external(uri: str, run_id: str, model: nn.Module, normalization: str, sets: list[ExternalSet],
                   classes: tuple[str, ...], positive: int) -> dict[str, float]:
    """Score `model` on every external set; log metrics (step 0) and a predictions CSV per set; return the metrics."""
    metrics: dict[str, float] = {}
    for external in sets:
        probs = predict_probs(model, external.images, normalization, pick_device())
        scored = external_metrics(external.labels, probs, classes, positive, EXTERNAL_PREFIX.format(name=external.name))
        track.log_metrics(uri, run_id, scored, step=0)
        metrics.update(scored)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"{external.name}_predictions.csv"
            record.write_predictions(record.predictions_table(
                {"path": [r.path for r in external.records], "patient_id": [r.patient_id for r in external.records],
                 "label": external.labels}, probs, classes), path)
            track.log_file(uri, run_id, path, record.EXTERNAL_PREDICTIONS_ARTIFACT.format(name=external.name))
    return metrics
