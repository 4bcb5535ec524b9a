"""Shortcut probe (the COVIDx critique): can the training pipeline tell which dataset an image came from?"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from xfer.config import TrainConfig

if TYPE_CHECKING:
    from xfer.data.prepare import PreparedData

WARN_AUC = 0.9  # source predictable this well → the label may be learnt from the source, not the disease
PROBE_MODEL = "cbr_tiny"
PROBE_TRAIN = TrainConfig(epochs=5, batch_size=32, lr=1e-3)


@dataclass(frozen=True)
class ShortcutResult:
    """Test AUC of predicting the source dataset, and how labels are spread across sources."""

    applicable: bool
    reason: str
    sources: tuple[str, ...] = ()
    source_auc: float = float("nan")
    n_test: int = 0
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # source → class → images

    @property
    def warning(self) -> bool:
        return self.applicable and self.source_auc >= WARN_AUC

    def to_json(self) -> dict:
        return asdict(self)


def label_counts(sources: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Images per source and class: one class per source is the confound the probe looks for."""
    return {str(s): {c: int(((sources == s) & (labels == k)).sum()) for k, c in enumerate(classes)}
            for s in np.unique(sources)}


def shortcut_probe(data: PreparedData, image_size: int = 32, model_name: str = PROBE_MODEL,
                   cfg: TrainConfig = PROBE_TRAIN, seed: int = 0) -> ShortcutResult:
    """Train `model_name` with xfer's own loop on the study's train split to predict each image's source
    dataset instead of its label; report the test AUC (near 1 = the source is a shortcut)."""
    from xfer.metrics import classification_metrics
    from xfer.models import build_model
    from xfer.train import FitData, fit, pick_device, predict_probs

    sources = np.asarray(data.sources)
    names = tuple(str(s) for s in np.unique(sources))
    counts = label_counts(sources, np.asarray(data.labels), tuple(data.classes))
    if len(names) < 2:
        return ShortcutResult(False, f"one source only ({names[0] if names else 'none'}): nothing to confound",
                              names, counts=counts)
    target = np.searchsorted(np.array(names), sources).astype(np.int64)
    train, val, test = (np.asarray(ix) for ix in (data.split.train, data.split.val, data.split.test))
    channels = int(data.images.shape[1])
    torch.manual_seed(seed)
    model = build_model(model_name, len(names), channels)
    fit(model, model_name, FitData(data.images_at, target, train, val, names, image_size), cfg, "unit", seed)
    probs = predict_probs(model, data.images_at(image_size)[test], "unit", pick_device())
    auc = classification_metrics(target[test], probs, names, len(names) - 1, "test_")["test_auc"]
    return ShortcutResult(True, f"{model_name}, {cfg.epochs} epochs at {image_size}px, {len(train)} training images",
                          names, float(auc), int(len(test)), counts)
