"""Checkpoint files: a state dict plus the metadata needed to rebuild and preprocess for the model."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from xfer.config import InitConfig

CHECKPOINT_ARTIFACT = "checkpoint/best.pt"


def save_checkpoint(path: Path, state_dict: dict, meta: dict) -> Path:
    """Write {"state_dict", "meta"}; meta holds only plain values so `weights_only=True` can read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, "meta": meta}, path)
    return path


def read_checkpoint(path: Path) -> tuple[dict, dict]:
    """(state_dict, meta) from a checkpoint file; meta is {} for a plain state dict."""
    if not Path(path).exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(blob, dict) and "state_dict" in blob:
        return blob["state_dict"], dict(blob.get("meta") or {})
    return blob, {}


def read_trial_checkpoint(run_id_or_path: str, tracking_uri: Optional[str]) -> tuple[dict, dict]:
    """(state_dict, meta) from a checkpoint file, or from an MLflow run's artifact (downloaded to a temp dir)."""
    if Path(run_id_or_path).exists():
        return read_checkpoint(Path(run_id_or_path))
    import mlflow

    from xfer.track import resolve_tracking_uri

    client = mlflow.MlflowClient(resolve_tracking_uri(tracking_uri))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id_or_path, CHECKPOINT_ARTIFACT, tmp)
        except Exception as e:  # noqa: BLE001 - MLflow raises several types for a missing run/artifact
            raise FileNotFoundError(f"{run_id_or_path!r} is neither a checkpoint file nor an MLflow run with "
                                    f"artifact {CHECKPOINT_ARTIFACT} in {client.tracking_uri}: {e}") from None
        return read_checkpoint(Path(path))


def model_from_meta(meta: dict) -> nn.Module:
    from xfer.models import build_model

    return build_model(meta["model"], int(meta["num_classes"]), int(meta.get("in_channels", 1)))


def load_trial(run_id_or_path: str, tracking_uri: Optional[str] = None) -> tuple[nn.Module, dict]:
    """A trained trial's model (eval mode) and its metadata, from an MLflow run id or a checkpoint path."""
    state_dict, meta = read_trial_checkpoint(run_id_or_path, tracking_uri)
    if not meta:
        raise ValueError(f"{run_id_or_path}: a plain state dict has no metadata; expected an xfer checkpoint")
    model = model_from_meta(meta)
    model.load_state_dict(state_dict)
    return model.eval(), meta


def build_initial_model(meta: dict) -> nn.Module:
    """Rebuild the trial's initial weights exactly (same seed, same strategy and source)."""
    from xfer.inits import apply_init

    torch.manual_seed(int(meta["seed"]))
    model = model_from_meta(meta)
    apply_init(model, meta["model"], InitConfig(meta["strategy"], meta.get("source") or None),
               int(meta.get("in_channels", 1)))
    return model.eval()
