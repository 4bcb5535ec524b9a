"""Are ImageNet weights what they claim? Score them 1000-way on Imagenette's validation photos (real ImageNet)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from xfer.data.images import IMAGE_SUFFIXES, read_image_resized
from xfer.data.normalize import normalize
from xfer.inits.weights import Weights, load_weights
from xfer.source import parse_source

# Imagenette's folders (WordNet ids) → their ImageNet-1k class index
IMAGENETTE_CLASSES = {"n01440764": 0, "n02102040": 217, "n02979186": 482, "n03000684": 491, "n03028079": 497,
                      "n03394916": 566, "n03417042": 569, "n03425413": 571, "n03445777": 574, "n03888257": 701}


@dataclass(frozen=True)
class ImagenetCheck:
    """Top-1 of a weight source on Imagenette photos: among all 1000 ImageNet classes and among Imagenette's 10."""

    source: str
    normalization: str
    images: int
    image_size: int
    top1: float  # 1000-way
    top1_of_10: float  # argmax restricted to the 10 Imagenette classes


def imagenette_photos(folder: Path, per_class: int) -> tuple[list[str], np.ndarray]:
    """The first `per_class` photos (by name) of each WNID folder under `folder`, and their ImageNet ids."""
    missing = [w for w in IMAGENETTE_CLASSES if not (Path(folder) / w).is_dir()]
    if missing:
        raise FileNotFoundError(f"{folder}: no Imagenette class folder(s) {', '.join(missing)}; give the "
                                f"validation folder of imagenette (e.g. ../shared/data/imagenette-128/val)")
    paths, labels = [], []
    for wnid, index in IMAGENETTE_CLASSES.items():
        files = sorted(p for p in (Path(folder) / wnid).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:per_class]
        paths += [str(p) for p in files]
        labels += [index] * len(files)
    return paths, np.asarray(labels)


def imagenet_classifier(weights: Weights) -> torch.nn.Module:
    """The 1000-class network of loaded timm or torchvision weights, head included."""
    parsed = parse_source(weights.source)
    arch = parsed.weights.partition(".")[0]
    if parsed.library == "timm":
        import timm

        model = timm.create_model(arch, pretrained=False)
    elif parsed.library == "torchvision":
        import torchvision

        model = torchvision.models.get_model(arch)
    else:
        raise ValueError(f"{weights.source}: the ImageNet check needs a published timm:… or torchvision:… source")
    model.load_state_dict(weights.state_dict, strict=True)
    return model.eval()


def check_imagenet_weights(source: str, folder: Path, per_class: int = 20, image_size: int = 224,
                           batch_size: int = 50) -> ImagenetCheck:
    """Top-1 of `source`'s own 1000-class head on Imagenette photos, inputs normalized as the source says."""
    weights = load_weights(source)
    normalization = weights.normalization or "imagenet"
    model = imagenet_classifier(weights)
    paths, labels = imagenette_photos(folder, per_class)
    logits = []
    with torch.no_grad():
        for start in range(0, len(paths), batch_size):
            batch = np.stack([read_image_resized(p, image_size, 3) for p in paths[start:start + batch_size]])
            logits.append(model(normalize(torch.from_numpy(batch), normalization)))
    scores = torch.cat(logits).numpy()
    ten = np.asarray(list(IMAGENETTE_CLASSES.values()))
    return ImagenetCheck(weights.source, normalization, len(paths), image_size,
                         float((scores.argmax(1) == labels).mean()),
                         float((ten[scores[:, ten].argmax(1)] == labels).mean()))
