"""CBR CNNs of Raghu et al. 2019 (Transfusion, appendix): their sizes, registered as models (network: cbr_net)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from xfer.models.spec import MODELS, ModelSpec

if TYPE_CHECKING:
    from torch import nn


# name: (widths, kernel size, maxpool after the last block) — Transfusion appendix
CBR_ARCHITECTURES = {
    "cbr_large_t": ((32, 64, 128, 256, 512), 7, False),
    "cbr_large_w": ((64, 128, 256, 512), 7, True),
    "cbr_small": ((32, 64, 128, 256), 7, True),
    "cbr_tiny": ((64, 128, 256, 512), 5, True),
}


def cbr_builder(widths: tuple[int, ...], kernel_size: int, pool_last: bool):
    def build(num_classes: int, in_channels: int) -> nn.Module:
        from xfer.models.cbr_net import CBRNet  # torch, imported when a model is built

        return CBRNet(widths, kernel_size, pool_last, num_classes, in_channels)

    return build


for _name, (_widths, _kernel, _pool_last) in CBR_ARCHITECTURES.items():
    MODELS.register(_name)(ModelSpec(
        build=cbr_builder(_widths, _kernel, _pool_last),
        head="fc",
        first_conv="features.cbr1.conv",
        family="cbr",
        expand=("features",),
    ))
