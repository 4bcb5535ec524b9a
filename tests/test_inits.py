"""Init strategies applied to fresh models, with checkpoint-file sources written by the tests."""
import pytest
import torch
from torch import nn

from xfer.checkpoint import CheckpointMeta, save_checkpoint
from xfer.config import InitConfig
from xfer.inits import INITS, apply_init
from xfer.models import adapt_first_conv, build_model, head_and_backbone_params
from xfer.registry import UnknownNameError


def save_source(path, model, **meta):
    """A checkpoint file written by xfer.checkpoint (or a plain state dict when no meta is given)."""
    if not meta:
        torch.save(model.state_dict(), path)
        return str(path)
    return str(save_checkpoint(path, model.state_dict(), CheckpointMeta(**meta)))


def source_model(name="resnet18", in_channels=3, num_classes=10):
    """A 'pretrained' source whose tensors have per-layer means/stds and BatchNorm stats unlike a fresh model's."""
    torch.manual_seed(123)
    model = build_model(name, num_classes, in_channels)
    with torch.no_grad():
        for i, (key, value) in enumerate(model.state_dict().items()):
            if value.is_floating_point():
                value.normal_(0.01 * (i % 7) - 0.03, 0.02 + 0.01 * (i % 5))
    return model


def backbone_equal(model, source_state, name):
    """Every non-head tensor equals the source's (the first conv RGB-summed where the model is 1-channel)."""
    head = {id(p) for p in head_and_backbone_params(model, name)[0]}
    params = {k: p for k, p in model.named_parameters()}
    for key, value in model.state_dict().items():
        if key in params and id(params[key]) in head:
            continue
        expected = source_state[key]
        if expected.shape != value.shape:
            expected = adapt_first_conv(expected)
        assert torch.equal(value, expected), key


def test_random_keeps_the_built_init_and_takes_no_source():
    torch.manual_seed(0)
    model = build_model("cbr_tiny", 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    info = apply_init(model, "cbr_tiny", InitConfig("random"))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert (info.normalization, info.source) == ("imagenet", "none")
    assert apply_init(build_model("xrv_densenet121", 2), "xrv_densenet121", InitConfig("random")).normalization == "xrv"
    with pytest.raises(ValueError, match="takes no source"):
        apply_init(model, "cbr_tiny", InitConfig("random", source="x.pt"))


def test_imagenet_from_a_three_channel_stage_checkpoint_sums_the_first_conv(tmp_path):
    source = source_model("cbr_tiny", in_channels=3)
    path = save_source(tmp_path / "natural.pt", source, normalization="imagenet", in_channels=3)
    model = build_model("cbr_tiny", 2)
    info = apply_init(model, "cbr_tiny", InitConfig("imagenet", source=path))
    backbone_equal(model, source.state_dict(), "cbr_tiny")
    assert info.normalization == "imagenet" and info.source == path
    assert "features.cbr1.conv.weight: RGB filters summed" in info.notes


def test_model_without_published_weights_needs_a_source():
    with pytest.raises(ValueError, match="cbr_small.*set init.source to a checkpoint file or stage:NAME"):
        apply_init(build_model("cbr_small", 2), "cbr_small", InitConfig("imagenet"))


def test_grayscale_imagenet_loads_a_one_channel_source_as_is(tmp_path):
    source = source_model(in_channels=1)
    path = save_source(tmp_path / "gray.pt", source, normalization="imagenet", in_channels=1)
    model = build_model("resnet18", 2)
    info = apply_init(model, "resnet18", InitConfig("grayscale_imagenet", source=path))
    backbone_equal(model, source.state_dict(), "resnet18")
    assert info.notes.startswith("grayscale-pretrained source loaded as is")


def test_grayscale_imagenet_with_rgb_source_is_the_cheap_variant(tmp_path):
    source = source_model(in_channels=3)
    path = save_source(tmp_path / "rgb.pt", source)  # plain state dict: no meta
    model = build_model("resnet18", 2)
    info = apply_init(model, "resnet18", InitConfig("grayscale_imagenet", source=path))
    backbone_equal(model, source.state_dict(), "resnet18")
    assert info.notes.startswith("cheap variant") and "assumed imagenet" in info.notes
    with pytest.raises(ValueError, match="1-channel models"):
        apply_init(build_model("resnet18", 2, 3), "resnet18", InitConfig("grayscale_imagenet", source=path), 3)


def test_chexpert_from_an_xray_stage_uses_its_normalization(tmp_path):
    source = source_model("densenet121", in_channels=1, num_classes=14)
    path = save_source(tmp_path / "xray.pt", source, normalization="xrv")
    model = build_model("xrv_densenet121", 2)
    info = apply_init(model, "xrv_densenet121", InitConfig("chexpert", source=path))
    backbone_equal(model, source.state_dict(), "xrv_densenet121")
    assert info.normalization == "xrv"


def meanvar(source_path, seed=0):
    torch.manual_seed(seed)
    model = build_model("resnet18", 2)
    head_before = {k: v.clone() for k, v in model.fc.state_dict().items()}
    info = apply_init(model, "resnet18", InitConfig("meanvar", source=source_path))
    return model, head_before, info


def test_meanvar_matches_source_stats(tmp_path):
    source = source_model()
    path = save_source(tmp_path / "imagenet.pt", source, normalization="imagenet")
    model, head_before, info = meanvar(path)
    source_state, drawn = source.state_dict(), 0
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.Linear)) or name == "fc":
            continue
        ref = source_state[f"{name}.weight"]
        ref = adapt_first_conv(ref) if ref.shape != module.weight.shape else ref
        weight = module.weight.detach()
        assert abs(weight.mean() - ref.mean()) < 0.1 * ref.std(), name
        assert weight.std() == pytest.approx(ref.std().item(), rel=0.1), name
        assert not torch.allclose(weight, ref), f"{name} copied, not drawn"
        drawn += 1
    assert drawn == 20 and info.normalization == "imagenet" and "20 conv/linear tensors" in info.notes
    fresh = build_model("resnet18", 2).state_dict()
    for key, value in model.state_dict().items():
        if ".bn" in key or "downsample.1" in key or key.startswith("bn1"):
            assert torch.equal(value, fresh[key]), f"BatchNorm {key} touched"
    assert all(torch.equal(v, head_before[k]) for k, v in model.fc.state_dict().items())


def test_meanvar_is_deterministic_under_a_seed(tmp_path):
    path = save_source(tmp_path / "imagenet.pt", source_model(), normalization="imagenet")
    first, second, other = meanvar(path, 0)[0], meanvar(path, 0)[0], meanvar(path, 1)[0]
    assert all(torch.equal(v, second.state_dict()[k]) for k, v in first.state_dict().items())
    assert not torch.equal(first.layer1[0].conv1.weight, other.layer1[0].conv1.weight)


def test_apply_init_checks_in_channels_and_strategy_names():
    model = build_model("cbr_tiny", 2, in_channels=3)
    with pytest.raises(ValueError, match="takes 3 channels, but in_channels=1"):
        apply_init(model, "cbr_tiny", InitConfig("random"))
    with pytest.raises(UnknownNameError, match="known: chexpert, grayscale_imagenet, imagenet, meanvar, random"):
        apply_init(model, "cbr_tiny", InitConfig("imagenet21k"), 3)
    assert set(INITS) == {"random", "imagenet", "grayscale_imagenet", "chexpert", "meanvar"}
