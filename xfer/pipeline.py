"""The one train-and-test path of trials and stages: seeded initial model → fit → test metrics → checkpoint meta."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from xfer import track
from xfer.checkpoint import CheckpointMeta
from xfer.config import InitConfig, TrainConfig
from xfer.inits import InitInfo, apply_init
from xfer.metrics import classification_metrics, multilabel_metrics
from xfer.models import build_model
from xfer.train import BatchHook, EpochHook, FitData, FitResult, fit, pick_device, predict_probs


@dataclass(frozen=True)
class Tested:
    """A trained model with its init, training history, test predictions and test metrics."""

    model: nn.Module
    info: InitInfo
    fit: FitResult
    test_idx: np.ndarray
    probs: np.ndarray
    metrics: dict
    meta: CheckpointMeta  # what its checkpoint records


def initial_model(model_name: str, num_classes: int, channels: int, init: InitConfig,
                  seed: int) -> tuple[nn.Module, InitInfo]:
    """The model as training starts: seeded, built, initialised by `init`'s strategy."""
    torch.manual_seed(seed)
    model = build_model(model_name, num_classes, channels)
    return model, apply_init(model, model_name, init, channels)


def rebuild_initial_model(meta: CheckpointMeta) -> nn.Module:
    """The initial weights a checkpoint's training started from, rebuilt exactly (same seed, strategy, source)."""
    init = InitConfig(meta.strategy or "random", meta.source or None)
    return initial_model(meta.model, meta.num_classes, meta.in_channels, init, meta.seed)[0].eval()


def weights_hash(model: nn.Module) -> str:
    """sha256 over the state dict's tensors in key order: equal hashes mean the same initial weights, whatever
    the strategies are called (the hypotheses do not compare two inits with the same hash)."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def init_params(info: InitInfo, model: nn.Module) -> dict[str, str]:
    """The init's MLflow params: its source, normalization, notes and the hash of the initial weights."""
    return {"init.source": info.source, "init.resolved_source": info.source, "init.normalization": info.normalization,
            "init.notes": info.notes, "init.weights_hash": weights_hash(model), "device": str(pick_device())}


def train_logged(uri: str, run_id: str, model_name: str, init: InitConfig, data: FitData, cfg: TrainConfig,
                 channels: int, seed: int, params: dict, on_epoch: Optional[EpochHook] = None,
                 resume: Optional[dict] = None,
                 on_batch: Optional[BatchHook] = None) -> tuple[nn.Module, InitInfo, FitResult]:
    """Build and initialise the model, log `params`, train on train/validation only; epochs go to the MLflow run."""
    model, info = initial_model(model_name, len(data.classes), channels, init, seed)
    track.log_params(uri, run_id, {**init_params(info, model), **params})

    # a trial resumed from an earlier epoch's state retrains epochs its run already logged: log each step once
    logged_through = track.last_step(uri, run_id, "train_loss") if resume else 0

    def log_epoch(epoch: int, metrics: dict, state) -> None:
        if epoch > logged_through:
            track.log_metrics(uri, run_id, metrics, step=epoch)
        if on_epoch is not None:
            on_epoch(epoch, metrics, state)

    return model, info, fit(model, model_name, data, cfg, info.normalization, seed, on_epoch=log_epoch, resume=resume,
                            on_batch=on_batch)


def fit_summary(result: FitResult) -> dict[str, float]:
    return {"best_epoch": result.best_epoch, "best_val_auc": result.best_val_auc,
            "epochs_trained": len(result.history), "train_seconds": result.train_seconds}


def train_and_test(uri: str, run_id: str, model_name: str, init: InitConfig, data: FitData, test_idx: np.ndarray,
                   cfg: TrainConfig, channels: int, seed: int, params: dict, on_epoch: Optional[EpochHook] = None,
                   resume: Optional[dict] = None, on_batch: Optional[BatchHook] = None) -> Tested:
    """`train_logged`, then the best epoch's model tested on `test_idx`; metrics go to the MLflow run."""
    model, info, result = train_logged(uri, run_id, model_name, init, data, cfg, channels, seed, params, on_epoch,
                                       resume, on_batch)
    probs = predict_probs(model, data.images_at(data.image_size)[test_idx], info.normalization, pick_device(),
                          multi_label=data.multi_label)
    y_test = data.labels[test_idx]
    metrics = multilabel_metrics(y_test, probs, data.classes, "test_") if data.multi_label else \
        classification_metrics(y_test, probs, data.classes, data.positive % len(data.classes), "test_")
    metrics.update(fit_summary(result))
    track.log_metrics(uri, run_id, metrics, step=0)
    meta = CheckpointMeta(model=model_name, num_classes=len(data.classes), classes=tuple(data.classes),
                          in_channels=channels, image_size=data.image_size, normalization=info.normalization,
                          multi_label=data.multi_label, strategy=init.strategy, source=init.source or "",
                          init=init.name, seed=seed)
    return Tested(model, info, result, test_idx, probs, metrics, meta)
