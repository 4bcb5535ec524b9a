"""Checkpoint files: a state dict plus a versioned `CheckpointMeta`, written by one function and read by one."""
from __future__ import annotations

import dataclasses
import pickle
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:  # torch is imported by the functions that use it: validating a study needs none of it
    import torch
    from torch import nn

CHECKPOINT_VERSION = 1  # bump when CheckpointMeta changes meaning; teach `_upgrade` to read the old one


class CheckpointVersionError(ValueError):
    """A checkpoint written by a newer xfer, in a format this one cannot read."""


@dataclass(frozen=True)
class CheckpointMeta:
    """What rebuilds and preprocesses for a checkpoint's model; empty defaults where an old file says nothing."""

    model: str = ""  # xfer model name ("" in plain state dicts and old source files)
    num_classes: int = 0
    classes: tuple[str, ...] = ()
    in_channels: int = 1
    image_size: int = 0  # 0: unknown
    normalization: Optional[str] = None  # None: the file does not say
    multi_label: bool = False
    strategy: str = ""  # init strategy the weights started from
    source: str = ""  # its source, as resolved for the run
    init: str = ""  # the init's label in the study
    seed: int = 0
    stage: str = ""  # stages only: the recipe name and its key
    stage_key: str = ""
    version: int = CHECKPOINT_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Plain values only, so `torch.load(weights_only=True)` reads it back."""
        return dict(dataclasses.asdict(self), classes=list(self.classes))


@dataclass(frozen=True)
class Checkpoint:
    state_dict: dict[str, torch.Tensor]
    meta: CheckpointMeta
    path: Path


def save_checkpoint(path: Path, state_dict: dict, meta: CheckpointMeta) -> Path:
    """Write {"state_dict", "meta"} (tensors on the CPU)."""
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, "meta": meta.to_dict()}, path)
    return path


def _upgrade(meta: dict, path: Path) -> CheckpointMeta:
    """CheckpointMeta from any known version; version 0 (no "version" key) is the plain dict of xfer ≤ 0.1."""
    version = int(meta.get("version", 0))
    if version > CHECKPOINT_VERSION:
        raise CheckpointVersionError(f"{path}: checkpoint format version {version} is newer than this xfer reads "
                                     f"(up to {CHECKPOINT_VERSION}); upgrade xfer to load it")
    known = {f.name for f in dataclasses.fields(CheckpointMeta)}
    values = {k: v for k, v in meta.items() if k in known}  # version 0 carried a few keys of its own
    if "classes" in values:
        values["classes"] = tuple(values["classes"])
    return CheckpointMeta(**dict(values, version=CHECKPOINT_VERSION))


def read_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint file (an xfer checkpoint, or a plain state dict: empty meta), loaded with weights_only=True."""
    import torch

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(f"{path}: not loadable with weights_only=True (save a state dict, not a model): {e}") from None
    has_meta = isinstance(blob, dict) and "state_dict" in blob
    state_dict, meta = (blob["state_dict"], blob.get("meta") or {}) if has_meta else (blob, {})
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise ValueError(f"{path}: neither a state dict nor a {{'state_dict': ..., 'meta': ...}} checkpoint")
    return Checkpoint(dict(state_dict), _upgrade(dict(meta), path), path)


def read_trial_checkpoint(run_id_or_path: str, tracking_uri: Optional[str]) -> Checkpoint:
    """A checkpoint file, or an MLflow run's checkpoint artifact (downloaded to a temp dir)."""
    if Path(run_id_or_path).exists():
        return read_checkpoint(Path(run_id_or_path))
    from xfer import record, track  # MLflow costs seconds to import; a checkpoint file needs none of it

    client = track.client(track.resolve_tracking_uri(tracking_uri))
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = client.download_artifacts(run_id_or_path, record.CHECKPOINT_ARTIFACT, tmp)
        except Exception as e:  # noqa: BLE001 - MLflow raises several types for a missing run/artifact
            raise FileNotFoundError(f"{run_id_or_path!r} is neither a checkpoint file nor an MLflow run with "
                                    f"artifact {record.CHECKPOINT_ARTIFACT} in {client.tracking_uri}: {e}") from None
        return read_checkpoint(Path(path))


def model_from_meta(meta: CheckpointMeta) -> nn.Module:
    from xfer.models import build_model

    return build_model(meta.model, meta.num_classes, meta.in_channels)


def load_trial(run_id_or_path: str, tracking_uri: Optional[str] = None) -> tuple[nn.Module, CheckpointMeta]:
    """A trained trial's model (eval mode) and its metadata, from an MLflow run id or a checkpoint path."""
    checkpoint = read_trial_checkpoint(run_id_or_path, tracking_uri)
    meta = checkpoint.meta
    if not (meta.model and meta.classes and meta.image_size and meta.normalization):
        raise ValueError(f"{run_id_or_path}: its metadata lacks the model, classes, image size or normalization "
                         f"(a plain state dict or a source file?); expected a checkpoint of an xfer trial or stage")
    model = model_from_meta(meta)
    model.load_state_dict(checkpoint.state_dict)
    return model.eval(), meta


def load_trial_or_none(ref: str, tracking_uri: Optional[str]):
    """(model, meta) of a trial's run id or checkpoint file; else one line on stderr saying why, and None."""
    try:
        return load_trial(ref, tracking_uri)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)  # torch's own advice runs on for lines
    except Exception as e:  # noqa: BLE001 - torch's loader raises anything (KeyError: 101) for a non-checkpoint file
        print(f"error: {ref}: not an xfer checkpoint nor a trial's run id ({type(e).__name__}: {e}); give the run id "
              f"of a finished trial or its checkpoint/best.pt", file=sys.stderr)
    return None
