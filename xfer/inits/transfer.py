"""Shared step of the weight-copying strategies: load a source and copy it into the model, head excluded."""
from __future__ import annotations

from typing import TYPE_CHECKING

from xfer.inits import InitInfo
from xfer.inits.weights import Weights, head_prefixes, load_state_dict_checked, load_weights
from xfer.models import model_spec

if TYPE_CHECKING:
    from torch import nn


def normalization_of(weights: Weights) -> tuple[str, str]:
    """(normalization, note): the source's own, or "imagenet" with a note saying it was assumed."""
    if weights.normalization:
        return weights.normalization, ""
    return "imagenet", "source has no meta['normalization']; assumed imagenet"


def transfer(model: nn.Module, model_name: str, source: str) -> tuple[InitInfo, tuple[str, ...]]:
    """Copy every backbone tensor of `source` into `model`; returns the InitInfo and the adapted keys."""
    weights = load_weights(source)
    adapted = load_state_dict_checked(model, weights.state_dict, head_prefixes(model_name), weights.source)
    normalization, note = normalization_of(weights)
    notes = [f"head {model_spec(model_name).head} left at random init"]
    notes += [f"{key}: RGB filters summed to 1 channel" for key in adapted] + ([note] if note else [])
    return InitInfo(normalization, weights.source, "; ".join(notes)), adapted
