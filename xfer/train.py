"""One training run, top to bottom: epochs of train → validate → keep best → stop on plateau."""
from __future__ import annotations

import copy
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from xfer import train_options
from xfer.config import TrainConfig
from xfer.data.normalize import normalize
from xfer.metrics import classification_metrics, multilabel_metrics

EpochHook = Callable[[int, dict, Callable[[], dict]], None]
BatchHook = Callable[[int, int, int, int], None]  # (epoch, batches done, batches in the epoch, images done)


@dataclass(frozen=True)
class FitData:
    """What training reads: images at any size, labels, the train/val indices and the class names."""

    images_at: Callable[[int], np.ndarray]  # size → uint8 (N,C,size,size)
    labels: np.ndarray  # class indices (N,), or multi-label targets (N, classes) of 1 / 0 / NaN (unknown)
    train_idx: np.ndarray
    val_idx: np.ndarray
    classes: tuple[str, ...]
    image_size: int
    positive: int = -1  # the positive class (sensitivity/specificity); -1: the last

    @property
    def multi_label(self) -> bool:
        return self.labels.ndim == 2


@dataclass
class FitResult:
    best_state: dict
    best_epoch: int
    best_val_auc: float
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0


def pick_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast(device: torch.device):
    # bf16 autocast on GPU; CPU autocast slows small convnets, so stay in fp32 there
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


def _to_input(batch: torch.Tensor, normalization: str, device: torch.device) -> torch.Tensor:
    x = batch.to(device, non_blocking=True)
    x = normalize(x, normalization)
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


@torch.no_grad()
def predict_probs(model: nn.Module, images: np.ndarray, normalization: str, device: torch.device,
                  batch_size: int = 64, multi_label: bool = False) -> np.ndarray:
    """Class probabilities for uint8 images (N,C,H,W): softmax, or one sigmoid per class if multi-label."""
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = np.array(images[start:start + batch_size])  # a writable copy: the image cache is mapped read-only
        x = _to_input(torch.from_numpy(batch), normalization, device)
        with _autocast(device):
            logits = model(x)
        out.append((torch.sigmoid(logits.float()) if multi_label else torch.softmax(logits.float(), 1)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _loss(logits: torch.Tensor, target: torch.Tensor, weight: Optional[torch.Tensor], smoothing: float,
          multi_label: bool) -> torch.Tensor:
    """Cross-entropy on (soft) one-hot targets; multi-label: BCE over the known (non-NaN) targets only."""
    if not multi_label:
        return F.cross_entropy(logits, target, weight=weight, label_smoothing=smoothing)
    known = ~torch.isnan(target)
    target = target.nan_to_num(0) * (1 - smoothing) + smoothing / 2
    return F.binary_cross_entropy_with_logits(logits, target, pos_weight=weight, reduction="none")[known].mean()


def _probs_loss(probs: np.ndarray, labels: np.ndarray, multi_label: bool) -> float:
    """Validation loss from predicted probabilities (NLL, or BCE over known targets)."""
    p = torch.from_numpy(probs).clamp(1e-7, 1 - 1e-7)
    if not multi_label:
        return float(F.nll_loss(torch.log(p), torch.from_numpy(labels)).item())
    y = torch.from_numpy(labels)
    known = ~torch.isnan(y)
    return float(F.binary_cross_entropy(p[known], y[known]).item())


def _loader(images: np.ndarray, labels: np.ndarray, cfg: TrainConfig, generator: torch.Generator,
            device: torch.device) -> DataLoader:
    dataset = TensorDataset(torch.from_numpy(np.ascontiguousarray(images)), torch.from_numpy(labels))
    sampler = train_options.weighted_sampler(labels, generator) if cfg.sampler == "weighted" else None
    return DataLoader(dataset, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                      generator=generator, num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                      drop_last=len(labels) > cfg.batch_size and len(labels) % cfg.batch_size == 1)


def fit(model: nn.Module, model_name: str, data: FitData, cfg: TrainConfig, normalization: str, seed: int,
        device: Optional[torch.device] = None, on_epoch: Optional[EpochHook] = None,
        resume: Optional[dict] = None, on_batch: Optional[BatchHook] = None) -> FitResult:
    """Train `model` on data.train_idx, select the best epoch by val AUC; `resume` is a state from `on_epoch`."""
    device = device or pick_device()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    classes, image_size, train_idx, images_at = data.classes, data.image_size, data.train_idx, data.images_at
    num_classes, multi_label, positive = len(classes), data.multi_label, data.positive % len(data.classes)
    y_train, y_val = data.labels[train_idx], data.labels[data.val_idx]
    weights = train_options.positive_weights if multi_label else train_options.class_weights
    weight = weights(y_train, num_classes).to(device) if cfg.class_weights else None
    groups = train_options.param_groups(model, model_name, cfg)
    optimizer = train_options.make_optimizer(groups, cfg)
    scheduler, step_on = train_options.make_scheduler(optimizer, cfg, train_options.steps_per_epoch(len(train_idx), cfg.batch_size))
    augment = train_options.make_augment(cfg.augment)
    val_images = images_at(image_size)[data.val_idx]

    start_epoch, best_state, best_auc, best_epoch, bad_epochs, history = 1, None, -np.inf, 0, 0, []
    if resume:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        if scheduler is not None and resume.get("scheduler"):
            scheduler.load_state_dict(resume["scheduler"])
        torch.set_rng_state(resume["torch_rng"])
        generator.set_state(resume["generator_rng"])
        start_epoch, best_state, best_auc = resume["epoch"] + 1, resume["best_state"], resume["best_val_auc"]
        best_epoch, bad_epochs, history = resume["best_epoch"], resume["bad_epochs"], resume["history"]

    began = time.perf_counter()
    for epoch in range(start_epoch, cfg.epochs + 1):
        tic = time.perf_counter()
        train_options.set_backbone_trainable(groups, epoch > cfg.freeze_epochs)
        size = train_options.size_for_epoch(cfg.progressive_sizes, epoch, image_size)
        loader = _loader(images_at(size)[train_idx], y_train, cfg, generator, device)
        model.train()
        losses, seen = [], 0
        if on_batch is not None:
            on_batch(epoch, 0, len(loader), 0)
        for x, y in loader:
            x = x.float().div_(255)
            if augment is not None:
                x = augment(x)
            x = _to_input(x, normalization, device)
            target = y.float().to(device) if multi_label else F.one_hot(y, num_classes).float().to(device)
            if cfg.mixup_alpha > 0:
                x, target, _ = train_options.mixup(x, target, cfg.mixup_alpha, generator)
            with _autocast(device):
                logits = model(x)
            loss = _loss(logits.float(), target, weight, cfg.label_smoothing, multi_label)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step_on == "batch":
                scheduler.step()
            losses.append(loss.item())
            seen += len(y)
            if on_batch is not None:
                on_batch(epoch, len(losses), len(loader), seen)

        probs = predict_probs(model, val_images, normalization, device, multi_label=multi_label)
        metrics = multilabel_metrics(y_val, probs, classes, "val_") if multi_label else \
            classification_metrics(y_val, probs, classes, positive, "val_")
        metrics["val_loss"] = _probs_loss(probs, y_val, multi_label)
        metrics["train_loss"] = float(np.mean(losses)) if losses else float("nan")
        if scheduler is not None:  # else the learning rate and the size are constant: params (train.lr, data.image_size)
            metrics["lr"] = optimizer.param_groups[-1]["lr"]
        if cfg.progressive_sizes:
            metrics["image_size"] = size
        val_auc = metrics["val_auc"] if not np.isnan(metrics["val_auc"]) else -metrics["val_loss"]
        if step_on == "epoch":
            scheduler.step()
        elif step_on == "metric":
            scheduler.step(val_auc)
        if val_auc > best_auc:
            best_auc, best_epoch, bad_epochs = val_auc, epoch, 0
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            bad_epochs += 1
        metrics["epoch_seconds"] = time.perf_counter() - tic
        history.append(metrics)

        def state(epoch=epoch) -> dict:
            """A snapshot to resume from after `epoch` (a copy: training goes on mutating the originals)."""
            return copy.deepcopy({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "torch_rng": torch.get_rng_state(), "generator_rng": generator.get_state(), "epoch": epoch,
                    "best_state": best_state, "best_val_auc": best_auc, "best_epoch": best_epoch,
                    "bad_epochs": bad_epochs, "history": history})

        if on_epoch is not None:
            on_epoch(epoch, metrics, state)
        if cfg.early_stopping_patience and bad_epochs >= cfg.early_stopping_patience:
            break
    model.load_state_dict(best_state)
    return FitResult(best_state, best_epoch, float(best_auc), history, time.perf_counter() - began)
