"""Grad-CAM (Selvaraju et al. 2017) and plain gradient saliency maps for one image."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from xfer.analysis.cka import block_activations


def last_conv_block(model: nn.Module, model_name: str, image: torch.Tensor) -> nn.Module:
    """The deepest block of `xfer.models.layer_blocks` whose output is still a spatial (N,C,H,W) map."""
    from xfer.models import layer_blocks

    blocks = layer_blocks(model, model_name)
    outputs = block_activations(model, blocks, image[None])
    spatial = [module for name, module in blocks if name in outputs and outputs[name].dim() == 4]
    if not spatial:
        raise ValueError(f"model {model_name!r} has no block with a spatial output to explain")
    return spatial[-1]


def _scores_and_activation(model: nn.Module, image: torch.Tensor,
                           layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        logits = model(image[None].requires_grad_(True))
    finally:
        handle.remove()
    return logits[0], captured[-1]


def grad_cam(model: nn.Module, image: torch.Tensor, target_class: int, layer: nn.Module) -> np.ndarray:
    """Grad-CAM of `target_class` at `layer` for one model-ready image (C,H,W): an (H,W) map in [0,1]."""
    model.eval()
    with torch.enable_grad():
        logits, activation = _scores_and_activation(model, image.detach().clone(), layer)
        (grad,) = torch.autograd.grad(logits[target_class], activation)
    weights = grad.mean(dim=(2, 3), keepdim=True)  # α_k: spatially pooled gradients (eq. 1)
    cam = F.relu((weights * activation.detach()).sum(1, keepdim=True))  # ReLU(Σ_k α_k A^k) (eq. 2)
    cam = F.interpolate(cam, size=image.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    peak = cam.max()
    return (cam / peak if peak > 0 else cam).cpu().numpy().astype(np.float32)


def saliency(model: nn.Module, image: torch.Tensor, target_class: int) -> np.ndarray:
    """Plain gradient saliency (Simonyan et al. 2014): max over channels of |∂score/∂pixel|, (H,W) in [0,1]."""
    model.eval()
    x = image.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        score = model(x[None])[0, target_class]
        (grad,) = torch.autograd.grad(score, x)
    sal = grad.abs().amax(0)
    peak = sal.max()
    return (sal / peak if peak > 0 else sal).cpu().numpy().astype(np.float32)
