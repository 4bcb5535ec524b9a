"""Initialization strategies: `apply_init` puts a strategy's weights into a freshly built model."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional

from xfer.config import InitConfig
from xfer.models import model_spec
from xfer.registry import Registry

if TYPE_CHECKING:  # torch is imported by the functions that use it: validating a study needs none of it
    from torch import nn


@dataclass(frozen=True)
class InitInfo:
    """What an init did: the input normalization it implies, the resolved source, and notes for the log."""

    normalization: str  # a name in xfer.data.normalize.NORMALIZATIONS
    source: str  # resolved description, e.g. torchvision:resnet18.IMAGENET1K_V1; "none" for random
    notes: str = ""


DOMAINS = ("natural", "grayscale_natural", "xray")  # what a source was trained on
WEIGHTS = ("default", "copied", "drawn")  # framework init / source tensors copied / source statistics drawn


@dataclass(frozen=True)
class StrategyInfo:
    """What the hypotheses ask of a strategy: pretrained or not, its source's domain, how its weights arise."""

    pretrained: bool  # starts from features learned on a source
    weights: str  # one of WEIGHTS
    domain: Optional[str] = None  # one of DOMAINS; None when the strategy takes no source

    @property
    def untrained(self) -> bool:
        """The baseline the others are compared with: not pretrained, the framework's default weights."""
        return not self.pretrained and self.weights == "default"

    @property
    def takes_source(self) -> bool:
        """Draws on a source's weights (copied or their statistics): a published name, stage or file."""
        return self.weights != "default"

    @property
    def published_role(self) -> str:
        """Which of a model's default published sources it uses: "xray" for X-ray-domain strategies, else "imagenet"."""
        return "xray" if self.domain == "xray" else "imagenet"


# strategy(model, model_name, source, in_channels) -> InitInfo; modifies `model` in place
Strategy = Callable[["nn.Module", str, Optional[str], int], InitInfo]
INITS: Registry[Strategy] = Registry("init strategy")
STRATEGY_INFO: Registry[StrategyInfo] = Registry("init strategy")


def register(name: str, *, pretrained: bool, weights: str,
             domain: Optional[str] = None) -> Callable[[Strategy], Strategy]:
    """Register a strategy function together with what it is (`StrategyInfo`)."""
    if weights not in WEIGHTS or (domain is not None and domain not in DOMAINS):
        raise ValueError(f"strategy {name!r}: weights must be one of {WEIGHTS} (got {weights!r}) and domain one of "
                         f"{DOMAINS} or None (got {domain!r})")

    def add(strategy: Strategy) -> Strategy:
        STRATEGY_INFO.register(name)(StrategyInfo(pretrained, weights, domain))
        return INITS.register(name)(strategy)

    return add


def strategy_info(name: str) -> StrategyInfo:
    """The declared `StrategyInfo` of a registered strategy."""
    return STRATEGY_INFO.get_or_raise(name)


def apply_init(model: nn.Module, model_name: str, init: InitConfig, in_channels: int = 1) -> InitInfo:
    """Initialize `model` (built by build_model(model_name, ..., in_channels)) with `init`'s strategy."""
    strategy = INITS.get_or_raise(init.strategy)
    first_conv = model.get_submodule(model_spec(model_name).first_conv)
    if getattr(first_conv, "in_channels", in_channels) != in_channels:
        raise ValueError(f"apply_init: {model_name}'s first conv takes {first_conv.in_channels} channels, "
                         f"but in_channels={in_channels}; build the model with the same in_channels")
    return strategy(model, model_name, init.source, in_channels)


from xfer.inits import chexpert, grayscale_imagenet, imagenet, meanvar, random  # noqa: E402,F401  (register)
