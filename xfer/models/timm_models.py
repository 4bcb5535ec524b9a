"""`timm:NAME` models: any timm architecture, its spec read from timm's pretrained cfg."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

from xfer.models.spec import ModelSpec
from xfer.registry import UnknownNameError

if TYPE_CHECKING:
    from torch import nn

PREFIX = "timm:"
# containers of timm models whose children are the depth-ordered stages/blocks
TIMM_BLOCK_CONTAINERS = ("stages", "blocks", "layers", "features")


def is_timm_model(name: str) -> bool:
    """Whether `timm:NAME` names a timm architecture (NAME may carry a pretrained tag)."""
    import timm

    return timm.is_model(name[len(PREFIX):])


def timm_normalization(mean: tuple[float, ...], std: tuple[float, ...]) -> str:
    """xfer's normalization name for a timm cfg's mean/std (inception-style 0.5/0.5 is "unit")."""
    if all(math.isclose(m, 0.5) for m in mean) and all(math.isclose(s, 0.5) for s in std):
        return "unit"
    return "imagenet"


def single_path(value, field: str, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"timm model {name!r} has several {field} layers {value!r}; xfer supports one")
    return value


def timm_spec(name: str) -> ModelSpec:
    """Spec for `timm:NAME` (NAME may carry a pretrained tag, e.g. resnet10t.c3_in1k)."""
    import timm  # imported on first use: it costs a second

    arch = name[len(PREFIX):]
    if not timm.is_model(arch):
        raise UnknownNameError(f"unknown timm model {arch!r}; see timm.list_models()")
    cfg = timm.models.get_pretrained_cfg(arch)
    if cfg is None:
        raise ValueError(f"timm model {arch!r} has no pretrained cfg, so its classifier layer is unknown")

    def build(num_classes: int, in_channels: int) -> nn.Module:
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=in_channels)

    from xfer.models.packaged import PACKAGED  # pip-packaged weights (efficientnet_lite0-2) also count

    has_weights = bool(cfg.hf_hub_id or cfg.url or cfg.file) or arch in PACKAGED
    return ModelSpec(
        build=build,
        head=single_path(cfg.classifier, "classifier", arch),
        first_conv=single_path(cfg.first_conv, "first_conv", arch),
        family="timm",
        expand=TIMM_BLOCK_CONTAINERS,
        imagenet_source=f"timm:{arch}" if has_weights else None,
        normalization=timm_normalization(cfg.mean, cfg.std),
    )
