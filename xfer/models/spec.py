"""ModelSpec records: how to build a model and where its head, first conv and blocks are."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from xfer.registry import Registry

if TYPE_CHECKING:  # torch is imported by the functions that build models, so a spec costs no torch import
    import torch
    from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """A model described by data (timm's pretrained_cfg idea): builder plus the paths other code needs."""

    build: Callable[[int, int], nn.Module]  # (num_classes, in_channels) -> model with framework-default init
    head: str  # attribute path of the classifier, e.g. "fc"
    first_conv: str  # attribute path of the input convolution, e.g. "conv1"
    family: str  # torchvision | timm | xrv | cbr
    expand: tuple[str, ...] = ()  # containers whose children are separate layer blocks
    imagenet_source: Optional[str] = None  # default source of the imagenet/meanvar strategies
    xray_source: Optional[str] = None  # default source of the chexpert strategy
    normalization: str = "imagenet"  # input normalization paired with the random init


MODELS: Registry[ModelSpec] = Registry("model")


def adapt_first_conv(weight: torch.Tensor) -> torch.Tensor:
    """(O, 3, k, k) RGB filters → (O, 1, k, k) by summing: a gray image replicated to RGB gives the same output."""
    if weight.dim() < 3 or weight.shape[1] != 3:
        raise ValueError(f"expected a first-conv weight with 3 input channels, got shape {tuple(weight.shape)}")
    return weight.sum(dim=1, keepdim=True)


def with_in_channels(conv: nn.Conv2d, in_channels: int) -> nn.Conv2d:
    """A fresh Conv2d like `conv` but taking `in_channels` inputs (weights to be initialized by the caller)."""
    from torch import nn

    return nn.Conv2d(in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode)
