"""Pixel normalizations a model's weights expect, by name (an init strategy names one)."""
from __future__ import annotations

from typing import Callable

import torch

from xfer.registry import Registry

NORMALIZATIONS: Registry[Callable[[torch.Tensor], torch.Tensor]] = Registry("normalization")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGENET_GRAY_MEAN = 0.449  # mean of the RGB means: the statistic for 1-channel (summed-filter) inputs
IMAGENET_GRAY_STD = 0.226


def normalize(batch: torch.Tensor, name: str) -> torch.Tensor:
    """uint8 in [0, 255] or float in [0, 1], channels at dim -3 → float normalized by `name`."""
    transform = NORMALIZATIONS.get_or_raise(name)
    pixels = batch.float() / 255.0 if batch.dtype == torch.uint8 else batch.float()
    return transform(pixels)


@NORMALIZATIONS.register("xrv")
def xrv_range(pixels: torch.Tensor) -> torch.Tensor:
    """[0, 1] → [-1024, 1024], as `xrv.datasets.normalize(img, maxval)` does for torchxrayvision models."""
    return (2.0 * pixels - 1.0) * 1024.0


@NORMALIZATIONS.register("imagenet")
def imagenet_stats(pixels: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std: RGB statistics for 3 channels, their averages for 1 channel."""
    channels = pixels.shape[-3]
    if channels == 3:
        mean, std = IMAGENET_MEAN, IMAGENET_STD
    elif channels == 1:
        mean, std = (IMAGENET_GRAY_MEAN,), (IMAGENET_GRAY_STD,)
    else:
        raise ValueError(f"imagenet normalization needs 1 or 3 channels at dim -3, got shape {tuple(pixels.shape)}")
    shape = (channels, 1, 1)
    mean_t = torch.tensor(mean, dtype=pixels.dtype, device=pixels.device).view(shape)
    std_t = torch.tensor(std, dtype=pixels.dtype, device=pixels.device).view(shape)
    return (pixels - mean_t) / std_t


@NORMALIZATIONS.register("unit")
def unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """[0, 1] → [-1, 1]."""
    return (pixels - 0.5) / 0.5
