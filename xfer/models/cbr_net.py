"""The CBR network of Raghu et al. 2019 (Transfusion, appendix): conv-bn-relu blocks, pooling, a linear head."""
from __future__ import annotations

from collections import OrderedDict

from torch import nn


def cbr_block(in_channels: int, out_channels: int, kernel_size: int, pool: bool) -> nn.Sequential:
    """(conv-bn-relu), then a 3×3 stride-2 maxpool; stride-1 'same' convolutions as in the paper."""
    layers = OrderedDict(
        conv=nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        bn=nn.BatchNorm2d(out_channels),
        relu=nn.ReLU(inplace=True),
    )
    if pool:
        layers["pool"] = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    return nn.Sequential(layers)


class CBRNet(nn.Module):
    """CBR blocks → global average pool → linear classifier."""

    def __init__(self, widths: tuple[int, ...], kernel_size: int, pool_last: bool, num_classes: int,
                 in_channels: int = 1):
        super().__init__()
        blocks, channels = OrderedDict(), in_channels
        for i, width in enumerate(widths):
            pool = pool_last or i < len(widths) - 1
            blocks[f"cbr{i + 1}"] = cbr_block(channels, width, kernel_size, pool)
            channels = width
        self.features = nn.Sequential(blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for m in self.modules():  # same scheme as torchvision's ResNet
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.fc(self.pool(self.features(x)).flatten(1))
