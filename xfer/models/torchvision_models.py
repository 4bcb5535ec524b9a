"""torchvision ResNet-18/50, DenseNet-121 and VGG-16, with an n-channel first conv."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from xfer.models.spec import MODELS, ModelSpec, with_in_channels

if TYPE_CHECKING:
    from torch import nn


def torchvision_builder(arch: str, first_conv: str, init_mode: str) -> Callable[[int, int], nn.Module]:
    """Builder for a torchvision architecture; a replaced first conv gets the architecture's own init."""

    def build(num_classes: int, in_channels: int) -> nn.Module:
        import torchvision  # imported when a model is built: it costs seconds, a spec needs none of it
        from torch import nn

        model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes)
        if in_channels != 3:
            conv = with_in_channels(model.get_submodule(first_conv), in_channels)
            nn.init.kaiming_normal_(conv.weight, mode=init_mode, nonlinearity="relu")
            if conv.bias is not None:
                nn.init.zeros_(conv.bias)
            model.set_submodule(first_conv, conv)
        return model

    return build


# init_mode follows each architecture's own __init__ (torchvision/models/{resnet,densenet,vgg}.py)
for arch, head, first_conv, init_mode in [
    ("resnet18", "fc", "conv1", "fan_out"),
    ("resnet50", "fc", "conv1", "fan_out"),
    ("densenet121", "classifier", "features.conv0", "fan_in"),
    ("vgg16", "classifier.6", "features.0", "fan_out"),
]:
    MODELS.register(arch)(ModelSpec(
        build=torchvision_builder(arch, first_conv, init_mode),
        head=head,
        first_conv=first_conv,
        family="torchvision",
        expand=("features",) if first_conv.startswith("features.") else (),
        imagenet_source=f"torchvision:{arch}.IMAGENET1K_V1",
        # xrv's DenseNet has torchvision's densenet121 layout, so its X-ray weights fit (conv0 is 1-channel)
        xray_source="xrv:densenet121-res224-chex" if arch == "densenet121" else None,
    ))
