"""Model registry: build any registered model and find its head, first conv and depth-ordered blocks."""
from __future__ import annotations

from typing import TYPE_CHECKING

from xfer.models import cbr, torchvision_models, xrv_models  # noqa: F401  (register their specs)
from xfer.models.spec import MODELS, ModelSpec, adapt_first_conv
from xfer.models.timm_models import PREFIX as TIMM_PREFIX, is_timm_model, timm_spec

if TYPE_CHECKING:  # the registry is data; torch is imported by the builders (xfer check validates without it)
    from torch import nn

__all__ = ["MODELS", "ModelSpec", "adapt_first_conv", "build_model", "is_known_model", "known_models",
           "model_spec", "head_and_backbone_params", "layer_blocks"]


def model_spec(name: str) -> ModelSpec:
    """The spec of a registered model or of `timm:NAME`."""
    if name.startswith(TIMM_PREFIX):
        return timm_spec(name)
    return MODELS.get_or_raise(name)


def is_known_model(name: str) -> bool:
    if name.startswith(TIMM_PREFIX):
        return is_timm_model(name)
    return name in MODELS


def known_models() -> str:
    return f"{MODELS.known()}, {TIMM_PREFIX}NAME"


def build_model(name: str, num_classes: int, in_channels: int = 1) -> nn.Module:
    """A model with the framework's default (random) init; `in_channels` 1 for X-rays, 3 for photos."""
    return model_spec(name).build(num_classes, in_channels)


def head_and_backbone_params(model: nn.Module, name: str) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(classifier parameters, all other parameters), e.g. for freeze-then-unfreeze."""
    head_ids = {id(p) for p in model.get_submodule(model_spec(name).head).parameters()}
    params = list(model.parameters())
    return [p for p in params if id(p) in head_ids], [p for p in params if id(p) not in head_ids]


def layer_blocks(model: nn.Module, name: str) -> list[tuple[str, nn.Module]]:
    """Backbone modules in forward order (for CKA and per-block LRs); together they hold every backbone
    parameter except any owned directly by the model itself (e.g. a timm ViT's pos_embed)."""
    spec = model_spec(name)
    blocks: list[tuple[str, nn.Module]] = []

    def visit(module: nn.Module, prefix: str) -> None:
        for child_name, child in module.named_children():
            path = prefix + child_name
            if path == spec.head or next(child.parameters(), None) is None:
                continue
            if child_name in spec.expand or spec.head.startswith(path + "."):
                visit(child, path + ".")
            else:
                blocks.append((path, child))

    visit(model, "")
    return blocks
