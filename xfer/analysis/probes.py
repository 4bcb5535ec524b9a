"""Probe each trained trial once: CKA by depth against its initial weights, t-SNE, Grad-CAM, size and speed."""
from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from mlflow.tracking import MlflowClient
from torch import nn

from xfer import record, track
from xfer.analysis.cka import layerwise_cka
from xfer.analysis.collect import download_artifact, n_order
from xfer.analysis.embed import penultimate_features, tsne_2d
from xfer.analysis.probe_images import AnalysisImages, model_input
from xfer.analysis.saliency import grad_cam, last_conv_block
from xfer.checkpoint import CheckpointMeta

CKA_COLUMNS = ["run_id", "init", "model", "n_per_class", "seed", "depth", "block", "cka"]
FLOOR_COLUMNS = ["model", "depth", "block", "cka"]
FLOOR_SEEDS = (10_001, 10_002)  # two random inits no trial uses
TIMING_BATCH = 16
TIMING_REPEATS = 5


@dataclass
class ProbeResults:
    cka: pd.DataFrame  # run_id, init, model, n_per_class, seed, depth, block, cka
    cost: pd.DataFrame  # model, parameters, ms_per_image, batch, threads
    tsne: dict[str, np.ndarray] = field(default_factory=dict)  # "init / model" → (N, 2)
    gradcam: dict[str, np.ndarray] = field(default_factory=dict)  # "init / model" → (explain, H, W)
    probs: dict[str, np.ndarray] = field(default_factory=dict)  # "init / model" → explain images' class probs
    skipped: list[str] = field(default_factory=list)  # "trial key: why" for trials not (fully) probed
    cka_floor: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FLOOR_COLUMNS))  # per model × block


def representatives(trials: pd.DataFrame) -> pd.DataFrame:
    """Per (init, model): the best-validation trial at the largest n_per_class — the rows of grids and panels."""
    ranked = trials.assign(_n=trials["n_per_class"].map(n_order))
    best = ranked.sort_values(["_n", "best_val_auc"], ascending=False).drop_duplicates(["init", "model"])
    return best.drop(columns="_n").sort_values(["model", "init"]).reset_index(drop=True)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.inference_mode()
def inference_ms_per_image(model: nn.Module, batch: torch.Tensor, repeats: int = TIMING_REPEATS) -> float:
    """Median wall time of a forward pass over `batch`, per image, in milliseconds (after one warm-up)."""
    model.eval()
    model(batch)
    times = []
    for _ in range(repeats):
        tic = time.perf_counter()
        model(batch)
        times.append(time.perf_counter() - tic)
    return float(np.median(times) / len(batch) * 1000)


def model_cost(model: nn.Module, model_name: str, batch: torch.Tensor) -> dict:
    """Parameter count and CPU/GPU-as-loaded inference time of one model."""
    return {"model": model_name, "parameters": parameter_count(model),
            "ms_per_image": inference_ms_per_image(model, batch), "batch": len(batch),
            "threads": torch.get_num_threads()}


def load_checkpoint(client: MlflowClient, run_id: str) -> tuple[nn.Module, CheckpointMeta] | None:
    """A trial's trained model and meta via a temporary download (MLflow's default one is never deleted)."""
    from xfer.checkpoint import load_trial

    with tempfile.TemporaryDirectory() as tmp:
        path = download_artifact(client, run_id, record.CHECKPOINT_ARTIFACT, Path(tmp))
        return load_trial(str(path)) if path else None


def random_init_floor(meta: CheckpointMeta, images: torch.Tensor) -> list[tuple[str, float]]:
    """CKA by block between two independently seeded random inits of the model: what "unrelated" scores."""
    from xfer.pipeline import rebuild_initial_model

    a, b = (rebuild_initial_model(dataclasses.replace(meta, strategy="random", source="", seed=s)) for s in FLOOR_SEEDS)
    return layerwise_cka(a, b, images, model_name=meta.model)


def probe_trials(trials: pd.DataFrame, tracking_uri: str, images: AnalysisImages, seed: int = 0) -> ProbeResults:
    """Load every finished trial's checkpoint; CKA for all, t-SNE and Grad-CAM for the representatives.

    A trial whose checkpoint or initial weights cannot be rebuilt is listed in `skipped` with the reason."""
    from xfer.pipeline import rebuild_initial_model

    client = track.client(tracking_uri)
    chosen = set(representatives(trials)["run_id"])
    cka_rows, costs, floors = [], {}, []
    results = ProbeResults(pd.DataFrame(), pd.DataFrame())
    for _, trial in trials.iterrows():
        loaded = load_checkpoint(client, trial["run_id"])
        if loaded is None:
            results.skipped.append(f"{trial['trial_key']}: no checkpoint artifact")
            continue
        model, meta = loaded
        name = meta.model
        try:
            initial = rebuild_initial_model(meta)
        except (FileNotFoundError, ValueError) as e:  # e.g. the init's source weights are gone
            results.skipped.append(f"{trial['trial_key']}: no CKA, initial weights not rebuilt: {e}")
        else:
            pairs = layerwise_cka(initial, model, model_input(images.val_images, meta), model_name=name)
            cka_rows += [{"run_id": trial["run_id"], "init": trial["init"], "model": name,
                          "n_per_class": trial["n_per_class"], "seed": trial["seed"], "depth": depth, "block": block,
                          "cka": value} for depth, (block, value) in enumerate(pairs)]
        if name not in costs:
            floors += [{"model": name, "depth": depth, "block": block, "cka": value} for depth, (block, value)
                       in enumerate(random_init_floor(meta, model_input(images.val_images, meta)))]
            costs[name] = model_cost(model, name, model_input(images.test_images[:TIMING_BATCH], meta))
        if trial["run_id"] in chosen:
            key = f"{trial['init']} / {name}"
            x_test = model_input(images.test_images, meta)
            results.tsne[key] = tsne_2d(penultimate_features(model, name, x_test), seed)
            explain = x_test[images.explain]
            if len(explain):
                layer = last_conv_block(model, name, explain[0])
                targets = images.test_labels[images.explain]
                results.gradcam[key] = np.stack([grad_cam(model, x, int(t), layer) for x, t in zip(explain, targets)])
                with torch.no_grad():
                    results.probs[key] = torch.softmax(model(explain), 1).numpy()
    results.cka = pd.DataFrame(cka_rows, columns=CKA_COLUMNS)
    results.cka_floor = pd.DataFrame(floors, columns=FLOOR_COLUMNS)
    results.cost = pd.DataFrame(list(costs.values()), columns=["model", "parameters", "ms_per_image", "batch",
                                                               "threads"])
    return results
