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


def activation_maximization(model: nn.Module, shape: tuple[int, int, int], target: int, layer: nn.Module | None = None,
                            steps: int = 200, lr: float = 0.05, decay: float = 1e-3, jitter: int = 2,
                            blur_every: int = 4, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """Activation maximization (Erhan et al. 2009, regularised as Yosinski et al. 2015): gradient ascent on one
    model-ready input of `shape` (C,H,W), from faint noise, on the logit of class `target` (layer None) or on the
    mean activation of channel `target` of `layer`; L2 decay, random shifts and a blur every few steps keep it
    image-like. Returns the image as an (H,W) map in [0,1] and the objective before and after."""
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    x = (0.01 * torch.randn(shape, generator=generator)).to(device)[None].requires_grad_(True)
    optimizer = torch.optim.Adam([x], lr=lr)
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out)) if layer is not None else None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one small image: more threads only spin (7× the CPU time on a busy 2-core machine)

    def objective(image: torch.Tensor) -> torch.Tensor:
        captured.clear()
        logits = model(image)
        return captured[-1][0, target].mean() if layer is not None else logits[0, target]

    try:
        with torch.enable_grad():
            with torch.no_grad():
                before = float(objective(x))
            for step in range(steps):
                dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
                optimizer.zero_grad()
                loss = -objective(torch.roll(x, (dy, dx), dims=(2, 3))) + decay * x.pow(2).sum()
                loss.backward()
                optimizer.step()
                if blur_every and step % blur_every == blur_every - 1:
                    with torch.no_grad():
                        x.copy_(F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1))
            with torch.no_grad():
                after = float(objective(x))
    finally:
        torch.set_num_threads(threads)
        if handle is not None:
            handle.remove()
    image = x.detach()[0].mean(0)
    image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-8)
    return image.cpu().numpy().astype(np.float32), before, after
