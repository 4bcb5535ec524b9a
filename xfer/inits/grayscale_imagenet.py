"""`grayscale_imagenet`: weights pretrained on grayscale natural images, or the cheap RGB-summed variant."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Optional

from xfer.inits import InitInfo, register
from xfer.inits.transfer import transfer
from xfer.inits.weights import source_for

if TYPE_CHECKING:
    from torch import nn

CHEAP_VARIANT = ("cheap variant: RGB source, first-layer filters summed to one channel instead of "
                 "grayscale pretraining (give a 1-channel checkpoint or stage for the real thing)")


@register("grayscale_imagenet", pretrained=True, weights="copied", domain="grayscale_natural")
def grayscale_imagenet_init(model: nn.Module, model_name: str, source: Optional[str], in_channels: int) -> InitInfo:
    """A 1-channel source loads as is; an RGB source (the default: published ImageNet) gets the cheap variant."""
    if in_channels != 1:
        raise ValueError(f"grayscale_imagenet initializes 1-channel models, got in_channels={in_channels}; "
                         f"use the imagenet strategy for RGB input")
    info, adapted = transfer(model, model_name, source_for(model_name, source, "imagenet"))
    lead = CHEAP_VARIANT if adapted else "grayscale-pretrained source loaded as is"
    return dataclasses.replace(info, notes=f"{lead}; {info.notes}")
