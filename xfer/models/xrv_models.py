"""torchxrayvision's DenseNet-121 architecture (the model its X-ray weights were trained in)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from xfer.models.spec import MODELS, ModelSpec
from xfer.xrv import import_xrv

if TYPE_CHECKING:
    from torch import nn


def build_xrv_densenet121(num_classes: int, in_channels: int) -> nn.Module:
    """Untrained xrv DenseNet: no op_threshs, no input resizing, raw logits."""
    return import_xrv().models.DenseNet(num_classes=num_classes, in_channels=in_channels)


MODELS.register("xrv_densenet121")(ModelSpec(
    build=build_xrv_densenet121,
    head="classifier",
    first_conv="features.conv0",
    family="xrv",
    expand=("features",),
    imagenet_source="torchvision:densenet121.IMAGENET1K_V1",  # same parameter names and shapes
    xray_source="xrv:densenet121-res224-chex",
    normalization="xrv",
))
