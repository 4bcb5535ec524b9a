"""`random`: the framework's default initialization, as build_model leaves it."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from xfer.inits import InitInfo, register
from xfer.models import model_spec

if TYPE_CHECKING:
    from torch import nn


@register("random", pretrained=False, weights="default")
def random_init(model: nn.Module, model_name: str, source: Optional[str], in_channels: int) -> InitInfo:
    """Keep build_model's init; pair it with the model's usual input normalization."""
    if source:
        raise ValueError(f"init strategy 'random' takes no source, got {source!r}; remove init.source")
    return InitInfo(model_spec(model_name).normalization, "none", "framework default init")
