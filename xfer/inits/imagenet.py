"""`imagenet`: copy ImageNet-pretrained weights (published by default) into the backbone."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from xfer.inits import InitInfo, register
from xfer.inits.transfer import transfer
from xfer.inits.weights import source_for

if TYPE_CHECKING:
    from torch import nn


@register("imagenet", pretrained=True, weights="copied", domain="natural")
def imagenet_init(model: nn.Module, model_name: str, source: Optional[str], in_channels: int) -> InitInfo:
    """Default source: the model's published ImageNet weights (torchvision IMAGENET1K_V1 / timm default tag)."""
    return transfer(model, model_name, source_for(model_name, source, "imagenet"))[0]
