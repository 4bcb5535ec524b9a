"""An init `source` string parsed once: none, a stage, a published weight name, or a checkpoint file."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

STAGE_PREFIX = "stage:"
PUBLISHED_LIBRARIES = ("torchvision", "timm", "xrv")  # the keys of xfer.inits.published.PUBLISHERS


@dataclass(frozen=True)
class Source:
    """What an init draws its weights from; `name` is the stage name, `LIBRARY[:NAME]`, or the file path."""

    kind: Literal["none", "stage", "published", "file"]
    name: str = ""

    @property
    def library(self) -> str:
        """A published source's library (torchvision, timm, xrv); "" for other kinds."""
        return self.name.partition(":")[0] if self.kind == "published" else ""

    @property
    def weights(self) -> str:
        """A published source's weight name within its library (`resnet18.IMAGENET1K_V1`); "" if bare."""
        return self.name.partition(":")[2] if self.kind == "published" else ""

    @property
    def is_default_published(self) -> bool:
        """A bare library name (`torchvision`): the model's default weights from that library."""
        return self.kind == "published" and ":" not in self.name

    def __str__(self) -> str:
        return STAGE_PREFIX + self.name if self.kind == "stage" else self.name


def parse_source(text: Optional[str]) -> Source:
    """`stage:NAME`, `LIBRARY[:NAME]` (torchvision, timm, xrv), a checkpoint path, or nothing."""
    if not text:
        return Source("none")
    if text.startswith(STAGE_PREFIX):
        return Source("stage", text[len(STAGE_PREFIX):])
    if text.partition(":")[0] in PUBLISHED_LIBRARIES:
        return Source("published", text)
    return Source("file", text)
