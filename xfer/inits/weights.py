"""Weight sources (published names or checkpoint files) and checked loading into a model."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from xfer.checkpoint import CheckpointMeta, read_checkpoint
from xfer.inits.published import PublishedWeights, published_weights
from xfer.models import adapt_first_conv, model_spec
from xfer.source import parse_source

if TYPE_CHECKING:  # torch is imported by the functions that use it: validating a study needs none of it
    import torch
    from torch import nn

SHOWN_KEYS = 20  # keys listed per kind of mismatch before "... and N more"


class WeightsMissingError(FileNotFoundError):
    """A published weight file is not in its library's cache (and xfer never downloads at run time)."""

    def __init__(self, weights: PublishedWeights):
        self.weights = weights
        super().__init__(
            f"{weights.source}: weight file {weights.file} is not in the cache; searched {weights.cache_path}. "
            f"Provide it with `xfer weights fetch {weights.source}` on a machine with internet access "
            f"(same cache settings: TORCH_HOME, HF_HOME, HOME), or copy the file to that path "
            f"(download: {weights.url}).")


class CheckpointMismatchError(ValueError):
    """A state dict whose keys or shapes do not fit the model; lists every offending key by name."""

    def __init__(self, source: str, missing: list[str], unexpected: list[str], mismatched: list[str]):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        parts = [f"{source} does not fit the model:"]
        for what, keys in [("missing from the checkpoint", missing), ("unexpected in the checkpoint", unexpected),
                           ("shape mismatch", mismatched)]:
            if keys:
                more = f", ... and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
                parts.append(f"  {what} ({len(keys)}): {', '.join(keys[:SHOWN_KEYS])}{more}")
        parts.append("Check that the source was trained with the same architecture (model name) as this trial.")
        super().__init__("\n".join(parts))


@dataclass(frozen=True)
class Weights:
    """A loaded source: its state dict, what it is, and the input normalization it was trained with."""

    state_dict: dict[str, torch.Tensor]
    source: str  # e.g. torchvision:resnet18.IMAGENET1K_V1 or an absolute checkpoint path
    normalization: Optional[str]  # None: the source does not say
    meta: Optional[CheckpointMeta] = None  # checkpoint files only


def source_for(model_name: str, source: Optional[str], role: str) -> str:
    """`source`, or the model's default `role` ("imagenet" | "xray") source when it is None or a bare library name."""
    parsed = parse_source(source)
    if parsed.kind != "none" and not parsed.is_default_published:
        return source
    default = getattr(model_spec(model_name), f"{role}_source")
    if default is None or (source and parse_source(default).library != source):
        raise ValueError(f"model {model_name!r} has no default {source or 'published'} {role} weights; set "
                         f"init.source to a checkpoint file or stage:NAME trained with {model_name!r}")
    return default


def load_weights(source: str) -> Weights:
    """Load a published name (from its library's cache only) or a checkpoint file; never downloads."""
    import torch

    parsed = parse_source(source)
    if parsed.kind == "stage":
        raise ValueError(f"{source}: stage sources are resolved to checkpoint files by xfer.stages first")
    if parsed.kind != "published":
        if not Path(parsed.name).expanduser().is_file():
            raise FileNotFoundError(f"init source checkpoint not found: {parsed.name}; give an existing file, "
                                    f"stage:NAME, or a published name (torchvision:…, timm:…, xrv:…)")
        checkpoint = read_checkpoint(parsed.name)
        return Weights(checkpoint.state_dict, str(checkpoint.path.resolve()), checkpoint.meta.normalization,
                       checkpoint.meta)
    published = published_weights(source)
    if not published.cache_path.is_file():
        raise WeightsMissingError(published)
    with torch.random.fork_rng(devices=[]):  # building the library's model must not shift the trial's RNG
        state_dict = published.load()
    return Weights(state_dict, published.source, published.normalization)


def fetch_weights(source: str) -> PublishedWeights:
    """Download a published name into its library's cache (needs internet); returns its record."""
    published = published_weights(source)
    if not published.cache_path.is_file():
        published.fetch()
        published = published_weights(source)  # the HF cache path is known only after the download
    return published


def checked_state_dict(model: nn.Module, state_dict: dict[str, torch.Tensor], skip_prefixes: tuple[str, ...] = (),
                       source: str = "checkpoint") -> tuple[dict[str, torch.Tensor], tuple[str, ...]]:
    """The model's state dict with `state_dict` laid over it (RGB first conv summed), and the adapted keys."""
    target = model.state_dict()

    def skipped(key: str) -> bool:
        return any(key.startswith(prefix) for prefix in skip_prefixes)

    merged, adapted, mismatched = dict(target), [], []
    missing = [k for k in target if k not in state_dict and not skipped(k)]
    unexpected = [k for k in state_dict if k not in target and not skipped(k)]
    for key, value in state_dict.items():
        if key not in target or skipped(key):
            continue
        want = target[key].shape
        if (value.dim() >= 3 and value.shape[1] == 3 and want[1] == 1
                and value.shape[:1] + value.shape[2:] == want[:1] + want[2:]):
            value = adapt_first_conv(value)
            adapted.append(key)
        if value.shape != want:
            mismatched.append(f"{key} (checkpoint {tuple(value.shape)}, model {tuple(want)})")
        else:
            merged[key] = value.to(target[key].dtype)
    if missing or unexpected or mismatched:
        raise CheckpointMismatchError(source, missing, unexpected, mismatched)
    return merged, tuple(adapted)


def load_state_dict_checked(model: nn.Module, state_dict: dict[str, torch.Tensor],
                            skip_prefixes: tuple[str, ...] = (), source: str = "checkpoint") -> tuple[str, ...]:
    """Load `state_dict` into `model`, keys under `skip_prefixes` left as they are; returns the adapted keys."""
    merged, adapted = checked_state_dict(model, state_dict, skip_prefixes, source)
    model.load_state_dict(merged, strict=True)
    return adapted


def head_prefixes(model_name: str) -> tuple[str, ...]:
    """Key prefixes of the model's classifier, which transfer never copies."""
    return (model_spec(model_name).head + ".",)
