"""Initialization strategies: `apply_init` puts a strategy's weights into a freshly built model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from torch import nn

from xfer.config import InitConfig
from xfer.models import model_spec
from xfer.registry import Registry


@dataclass(frozen=True)
class InitInfo:
    """What an init did: the input normalization it implies, the resolved source, and notes for the log."""

    normalization: str  # a name in xfer.data.normalize.NORMALIZATIONS
    source: str  # resolved description, e.g. torchvision:resnet18.IMAGENET1K_V1; "none" for random
    notes: str = ""


# strategy(model, model_name, source, in_channels) -> InitInfo; modifies `model` in place
Strategy = Callable[[nn.Module, str, Optional[str], int], InitInfo]
INITS: Registry[Strategy] = Registry("init strategy")


def apply_init(model: nn.Module, model_name: str, init: InitConfig, in_channels: int = 1) -> InitInfo:
    """Initialize `model` (built by build_model(model_name, ..., in_channels)) with `init`'s strategy."""
    strategy = INITS.get_or_raise(init.strategy)
    first_conv = model.get_submodule(model_spec(model_name).first_conv)
    if getattr(first_conv, "in_channels", in_channels) != in_channels:
        raise ValueError(f"apply_init: {model_name}'s first conv takes {first_conv.in_channels} channels, "
                         f"but in_channels={in_channels}; build the model with the same in_channels")
    return strategy(model, model_name, init.source, in_channels)


from xfer.inits import chexpert, grayscale_imagenet, imagenet, meanvar, random  # noqa: E402,F401  (register)
