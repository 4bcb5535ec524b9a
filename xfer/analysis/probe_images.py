"""The fixed images every trained model is probed with (CKA, t-SNE, Grad-CAM), stored once in MLflow."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from mlflow.tracking import MlflowClient

from xfer import track
from xfer.analysis.collect import download_artifact
from xfer.checkpoint import CheckpointMeta
from xfer.config import AnalysisConfig

MAX_TEST_IMAGES = 256  # enough for a readable t-SNE, small enough to probe every model quickly


@dataclass(frozen=True)
class AnalysisImages:
    """A fixed validation batch (CKA) and test images (t-SNE; `explain` picks the Grad-CAM ones), uint8 N,C,S,S."""

    val_images: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    explain: np.ndarray  # positions in test_images, classes taken in turn
    classes: tuple[str, ...]


def select_analysis_images(images: np.ndarray, labels: np.ndarray, val: np.ndarray, test: np.ndarray,
                           classes: tuple[str, ...], cfg: AnalysisConfig, seed: int = 0) -> AnalysisImages:
    """Pick `cka_images` validation images and up to MAX_TEST_IMAGES test images, deterministically."""
    rng = np.random.default_rng(seed)
    val_pick = np.sort(rng.permutation(np.asarray(val))[:cfg.cka_images])
    test_pick = np.sort(rng.permutation(np.asarray(test))[:MAX_TEST_IMAGES])
    test_labels = labels[test_pick]
    by_class = [list(np.nonzero(test_labels == k)[0]) for k in range(len(classes))]
    explain = []
    while len(explain) < cfg.explain_images and any(by_class):
        for positions in by_class:
            if positions and len(explain) < cfg.explain_images:
                explain.append(positions.pop(0))
    return AnalysisImages(images[val_pick], images[test_pick], test_labels, np.asarray(explain, dtype=int), classes)


def log_analysis_images(client: MlflowClient, run_id: str, images: AnalysisImages) -> None:
    """Store the probe images as `analysis/images.npz` on the study run, so reports rebuild from MLflow."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(track.IMAGES_ARTIFACT).name
        np.savez_compressed(path, val_images=images.val_images, test_images=images.test_images,
                            test_labels=images.test_labels, explain=images.explain, classes=np.array(images.classes))
        client.log_artifact(run_id, str(path), str(Path(track.IMAGES_ARTIFACT).parent))


def read_analysis_images(client: MlflowClient, run_id: str) -> AnalysisImages | None:
    """The study run's probe images, or None if it has not stored any."""
    with tempfile.TemporaryDirectory() as tmp:
        local = download_artifact(client, run_id, track.IMAGES_ARTIFACT, Path(tmp))
        if local is None:
            return None
        with np.load(local) as z:
            return AnalysisImages(z["val_images"], z["test_images"], z["test_labels"], z["explain"],
                                  tuple(str(c) for c in z["classes"]))


def model_input(images: np.ndarray, meta: CheckpointMeta) -> torch.Tensor:
    """uint8 (N,C,S,S) → the float batch a trial's model expects: its channels, size and normalization."""
    from xfer.data.normalize import normalize

    x = torch.from_numpy(np.array(images, dtype=np.float32)).div_(255)  # a copy: cached arrays are read-only
    channels = meta.in_channels
    if x.shape[1] != channels:
        x = x.mean(1, keepdim=True).expand(-1, channels, -1, -1).contiguous()
    size = meta.image_size or x.shape[-1]
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return normalize(x, meta.normalization)
