"""Penultimate-layer features of a trained model and their 2-D t-SNE embedding."""
from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.manifold import TSNE
from torch import nn


def head_module(model: nn.Module, model_name: str) -> nn.Module:
    """The classifier module named by the model's registry spec (e.g. `fc`, `classifier`)."""
    from xfer.models import model_spec

    return model.get_submodule(model_spec(model_name).head)


@torch.no_grad()
def penultimate_features(model: nn.Module, model_name: str, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """What the classifier head receives, flattened: (N, features) for model-ready images."""
    model.eval()
    captured: list[torch.Tensor] = []
    handle = head_module(model, model_name).register_forward_pre_hook(
        lambda _m, inputs: captured.append(inputs[0].detach().flatten(1)))
    try:
        for start in range(0, len(images), batch_size):
            model(images[start:start + batch_size])
    finally:
        handle.remove()
    return torch.cat(captured).numpy()


def tsne_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE of feature rows; perplexity shrinks for small sets (it must stay below the row count)."""
    n = len(features)
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 images, got {n}")
    features = features.astype(np.float64)
    if not np.isfinite(features).all() or np.ptp(features, axis=0).max() == 0:
        # a collapsed model (every image → the same features) would crash sklearn's Barnes-Hut tree
        warnings.warn(f"t-SNE skipped: the {n} feature rows are identical or not finite (a collapsed model); "
                      "they are drawn at one point", RuntimeWarning, stacklevel=2)
        return np.zeros((n, 2))
    perplexity = float(min(30.0, (n - 1) / 3))
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
