"""Training recipes as small functions: augmentation, mixup, progressive sizes, imbalance, optimizers, schedules."""
from __future__ import annotations

import math
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn
from torch.utils.data import WeightedRandomSampler
from torchvision.transforms import v2

from xfer.config import AugmentConfig, TrainConfig


def make_augment(cfg: AugmentConfig) -> Optional[Callable[[torch.Tensor], torch.Tensor]]:
    """Per-image X-ray augmentation on float tensors in [0,1] (B,C,H,W); None when all options are off."""
    steps: list[nn.Module] = []
    if cfg.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if cfg.rotate_degrees or cfg.scale or cfg.shift:
        steps.append(v2.RandomAffine(degrees=cfg.rotate_degrees,
                                     translate=(cfg.shift, cfg.shift) if cfg.shift else None,
                                     scale=(1 - cfg.scale, 1 + cfg.scale) if cfg.scale else None))
    if cfg.brightness or cfg.contrast:
        steps.append(v2.ColorJitter(brightness=cfg.brightness or None, contrast=cfg.contrast or None))
    if cfg.erase_p:
        steps.append(v2.RandomErasing(p=cfg.erase_p, value=0.0))
    if not steps:
        return None
    pipeline = v2.Compose(steps)

    def augment(batch: torch.Tensor) -> torch.Tensor:
        # torchvision draws one set of parameters per call: call it per image
        return torch.stack([pipeline(img) for img in batch]).clamp_(0, 1)

    return augment


def mixup(x: torch.Tensor, targets: torch.Tensor, alpha: float,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixup (Zhang et al. 2018): convex combination of the batch with a shuffled copy; targets are one-hot."""
    lam = float(np.random.default_rng(int(torch.randint(2**31, (1,), generator=generator))).beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * targets + (1 - lam) * targets[perm], lam


def size_for_epoch(progressive_sizes: tuple[tuple[int, int], ...], epoch: int, final_size: int) -> int:
    """Progressive resizing: the size of the last (start_epoch, size) step at or before `epoch` (1-based)."""
    steps = sorted(progressive_sizes)
    if not steps:
        return final_size
    size = steps[0][1]  # before the first step starts, train at the first size
    for start, step_size in steps:
        if epoch >= start:
            size = step_size
    return size


def class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Inverse-frequency loss weights, n / (k · count_c), so a balanced set gets all ones."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    weights = len(labels) / (num_classes * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


def positive_weights(targets: np.ndarray, num_classes: int) -> torch.Tensor:
    """Multi-label imbalance: BCE pos_weight = negatives / positives per class, over known targets."""
    positives, negatives = (targets == 1).sum(0), (targets == 0).sum(0)
    return torch.tensor(negatives / np.maximum(positives, 1), dtype=torch.float32).reshape(num_classes)


def weighted_sampler(labels: np.ndarray, generator: torch.Generator) -> WeightedRandomSampler:
    """Over-sample rare classes so each class is drawn equally often in expectation."""
    counts = np.bincount(labels)
    per_image = 1.0 / counts[labels]
    return WeightedRandomSampler(torch.as_tensor(per_image, dtype=torch.double), num_samples=len(labels),
                                 replacement=True, generator=generator)


def param_groups(model: nn.Module, model_name: str, cfg: TrainConfig) -> list[dict]:
    """Discriminative learning rates (fastai): backbone blocks ramp geometrically from lr·mult up to lr; head at lr."""
    from xfer.models import head_and_backbone_params, layer_blocks

    head, backbone = head_and_backbone_params(model, model_name)
    head_ids = {id(p) for p in head}
    blocks = [b for _, b in layer_blocks(model, model_name)]
    groups: list[dict] = []
    assigned: set[int] = set(head_ids)
    depth = max(len(blocks) - 1, 1)
    for i, block in enumerate(blocks):
        params = [p for p in block.parameters() if id(p) not in assigned]
        assigned.update(id(p) for p in params)
        if params:
            scale = cfg.backbone_lr_mult ** ((depth - i) / depth) if len(blocks) > 1 else cfg.backbone_lr_mult
            groups.append({"params": params, "lr": cfg.lr * scale, "role": "backbone"})
    rest = [p for p in backbone if id(p) not in assigned]
    if rest:  # stem layers outside any block train with the lowest rate
        groups.insert(0, {"params": rest, "lr": cfg.lr * cfg.backbone_lr_mult, "role": "backbone"})
    groups.append({"params": list(head), "lr": cfg.lr, "role": "head"})
    return groups


def make_optimizer(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """(scheduler, when it steps: 'batch' | 'epoch' | 'metric' | None)."""
    if cfg.scheduler == "onecycle":
        max_lrs = [g["lr"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lrs, epochs=cfg.epochs,
                                                   steps_per_epoch=max(steps_per_epoch, 1)), "batch"
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs), "epoch"
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5,
                                                          patience=max(cfg.early_stopping_patience // 2, 1)), "metric"
    return None, None


def set_backbone_trainable(groups: list[dict], trainable: bool) -> None:
    """Freeze-then-unfreeze: toggle gradients of every backbone parameter group."""
    for g in groups:
        if g.get("role") == "backbone":
            for p in g["params"]:
                p.requires_grad_(trainable)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    return max(math.ceil(n_train / batch_size), 1)
