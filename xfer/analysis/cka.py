"""CKA (Kornblith et al. 2019) between two networks' activations, block by block: linear, and debiased."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two activation matrices (examples × features); 1 for identical representations.

    Computed from centred Gram matrices, CKA = <HKH, HLH> / (‖HKH‖ ‖HLH‖) with K = XXᵀ, L = YYᵀ,
    which costs O(n²) in memory however wide the layers are.
    """
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs the same examples in both: {x.shape[0]} vs {y.shape[0]} rows")
    x = x.reshape(x.shape[0], -1).double()
    y = y.reshape(y.shape[0], -1).double()
    x = x - x.mean(0, keepdim=True)
    y = y - y.mean(0, keepdim=True)
    k, l = x @ x.T, y @ y.T
    denom = torch.linalg.norm(k) * torch.linalg.norm(l)
    return float((k * l).sum() / denom) if denom > 0 else float("nan")


def unbiased_hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Song et al. (2012)'s unbiased HSIC estimator of two n × n Gram matrices (n ≥ 4)."""
    n = k.shape[0]
    k, l = k.clone().fill_diagonal_(0), l.clone().fill_diagonal_(0)
    ones_k, ones_l = k.sum(0), l.sum(0)
    return ((k * l).sum() + ones_k.sum() * ones_l.sum() / ((n - 1) * (n - 2)) - 2 / (n - 2) * ones_k @ ones_l) \
        / (n * (n - 3))


def debiased_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA with unbiased HSIC (Kornblith et al. 2019, Nguyen et al. 2021): near 0 for unrelated
    representations even on few examples, where plain linear CKA of two random networks is close to 1."""
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"CKA needs the same examples in both: {x.shape[0]} vs {y.shape[0]} rows")
    if x.shape[0] < 4:
        raise ValueError(f"debiased CKA needs at least 4 examples, got {x.shape[0]}; raise analysis.cka_images")
    x = x.reshape(x.shape[0], -1).double()
    y = y.reshape(y.shape[0], -1).double()
    k, l = x @ x.T, y @ y.T
    denom = torch.sqrt(unbiased_hsic(k, k) * unbiased_hsic(l, l))
    return float(unbiased_hsic(k, l) / denom) if denom > 0 else float("nan")


@contextmanager
def capture_outputs(blocks: list[tuple[str, nn.Module]]) -> Iterator[dict[str, torch.Tensor]]:
    """Record each block's forward output (detached) under its name while the context is open."""
    outputs: dict[str, torch.Tensor] = {}

    def hook(name: str):
        def record(_module, _inputs, output):
            if isinstance(output, torch.Tensor):
                outputs[name] = output.detach()
        return record

    handles = [module.register_forward_hook(hook(name)) for name, module in blocks]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def block_activations(model: nn.Module, blocks: list[tuple[str, nn.Module]],
                      images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each block's output for a batch of model-ready images, in eval mode."""
    model.eval()
    with capture_outputs(blocks) as outputs:
        model(images)
    return dict(outputs)


def layerwise_cka(initial_model: nn.Module, trained_model: nn.Module, images: torch.Tensor,
                  blocks: list[str] | None = None, model_name: str | None = None,
                  measure: Callable[[torch.Tensor, torch.Tensor], float] = debiased_cka) -> list[tuple[str, float]]:
    """(block name, CKA) by depth between the two models' activations on the same images (debiased by default).

    Blocks come from `xfer.models.layer_blocks(model, model_name)` unless their names are given.
    """
    def named(model: nn.Module) -> list[tuple[str, nn.Module]]:
        if blocks is None:
            from xfer.models import layer_blocks

            return layer_blocks(model, model_name)
        modules = dict(model.named_modules())
        missing = [b for b in blocks if b not in modules]
        if missing:
            raise KeyError(f"model has no modules {missing}; use names from model.named_modules()")
        return [(b, modules[b]) for b in blocks]

    first_blocks, second_blocks = named(initial_model), named(trained_model)
    a = block_activations(initial_model, first_blocks, images)
    b = block_activations(trained_model, second_blocks, images)
    return [(name, measure(a[name], b[name])) for name, _ in first_blocks if name in a and name in b]
