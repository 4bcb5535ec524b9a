"""`chexpert`: copy chest X-ray-pretrained weights (torchxrayvision's CheXpert DenseNet by default)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from xfer.inits import InitInfo, register
from xfer.inits.transfer import transfer
from xfer.inits.weights import source_for

if TYPE_CHECKING:
    from torch import nn


@register("chexpert", pretrained=True, weights="copied", domain="xray")
def chexpert_init(model: nn.Module, model_name: str, source: Optional[str], in_channels: int) -> InitInfo:
    """Default source xrv:densenet121-res224-chex (DenseNet-121 models); otherwise an X-ray stage checkpoint."""
    return transfer(model, model_name, source_for(model_name, source, "xray"))[0]
