"""`meanvar`: Transfusion's Mean Var init — random weights with the pretrained weights' per-tensor statistics."""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from xfer.inits import InitInfo, register
from xfer.inits.transfer import normalization_of
from xfer.inits.weights import checked_state_dict, head_prefixes, load_weights, source_for
from xfer.models import model_spec

if TYPE_CHECKING:
    from torch import nn

@register("meanvar", pretrained=False, weights="drawn", domain="natural")
def meanvar_init(model: nn.Module, model_name: str, source: Optional[str], in_channels: int) -> InitInfo:
    """Each conv/linear weight and bias ~ N(mean, std²) of the source tensor (Raghu et al. 2019, Sec. 6).

    Nothing is copied: BatchNorm (affine and running stats), other parameters and the head keep build_model's
    init. A 3→1-channel first conv takes the statistics of the RGB-summed filters it would be loaded as.
    """
    import torch
    from torch import nn

    drawn_types = (nn.modules.conv._ConvNd, nn.Linear)
    weights = load_weights(source_for(model_name, source, "imagenet"))
    reference, adapted = checked_state_dict(model, weights.state_dict, head_prefixes(model_name), weights.source)
    head = set(model.get_submodule(model_spec(model_name).head).modules())
    drawn = 0
    with torch.no_grad():
        for module_name, module in model.named_modules():
            if module in head or not isinstance(module, drawn_types):
                continue
            for name, param in module.named_parameters(recurse=False):
                ref = reference[f"{module_name}.{name}"].double()
                std = ref.std().item() if ref.numel() > 1 else 0.0
                param.normal_(ref.mean().item(), std)
                drawn += 1
    normalization, note = normalization_of(weights)
    notes = [f"{drawn} conv/linear tensors drawn i.i.d. with the source's per-tensor mean/std",
             "BatchNorm and head at default init"]
    notes += [f"{key}: stats of the RGB-summed filters" for key in adapted] + ([note] if note else [])
    return InitInfo(normalization, weights.source, "; ".join(notes))
