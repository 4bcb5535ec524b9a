"""Models: every registered architecture builds, runs on 1-channel input and exposes head and blocks."""
import pytest
import torch
from torch import nn

from xfer.models import (MODELS, adapt_first_conv, build_model, head_and_backbone_params, is_known_model,
                         known_models, layer_blocks, model_spec)
from xfer.models.cbr import CBR_ARCHITECTURES
from xfer.registry import UnknownNameError

ALL_MODELS = sorted(MODELS) + ["timm:resnet10t"]
NUM_CLASSES = 3


@pytest.fixture(scope="module", params=ALL_MODELS)
def built(request):
    """(name, model) built once per module for every registered model plus a tiny timm model."""
    torch.manual_seed(0)
    return request.param, build_model(request.param, NUM_CLASSES)


def test_every_model_runs_forward_on_one_channel_images(built):
    name, model = built
    assert model.get_submodule(model_spec(name).first_conv).in_channels == 1
    with torch.no_grad():
        out = model.eval()(torch.randn(2, 1, 64, 64))
    assert out.shape == (2, NUM_CLASSES)


def test_layer_blocks_cover_backbone_in_forward_order(built):
    name, model = built
    blocks = layer_blocks(model, name)
    assert len(blocks) >= 4
    head, backbone = head_and_backbone_params(model, name)
    block_params = [id(p) for _, block in blocks for p in block.parameters()]
    assert len(block_params) == len(set(block_params)), "a parameter is in two blocks"
    assert set(block_params) == {id(p) for p in backbone}
    assert head and not {id(p) for p in head} & set(block_params)
    assert all(model.get_submodule(path) is block for path, block in blocks)

    called = []
    hooks = [block.register_forward_hook(lambda *_, path=path: called.append(path)) for path, block in blocks]
    with torch.no_grad():
        model.eval()(torch.randn(1, 1, 64, 64))
    for hook in hooks:
        hook.remove()
    assert called == [path for path, _ in blocks]


@pytest.mark.parametrize("name", ["resnet18", "cbr_tiny", "xrv_densenet121", "timm:resnet10t"])
def test_three_channel_models_for_natural_image_pretraining(name):
    model = build_model(name, NUM_CLASSES, in_channels=3)
    assert model.get_submodule(model_spec(name).first_conv).in_channels == 3
    with torch.no_grad():
        assert model.eval()(torch.randn(2, 3, 32, 32)).shape == (2, NUM_CLASSES)


def test_head_and_backbone_params_split_at_the_classifier():
    model = build_model("resnet18", NUM_CLASSES)
    head, backbone = head_and_backbone_params(model, "resnet18")
    assert [tuple(p.shape) for p in head] == [(NUM_CLASSES, 512), (NUM_CLASSES,)]
    assert len(head) + len(backbone) == len(list(model.parameters()))


def test_adapt_first_conv_sums_rgb_filters():
    rgb = nn.Conv2d(3, 8, 5, bias=False)
    gray = nn.Conv2d(1, 8, 5, bias=False)
    gray.weight.data = adapt_first_conv(rgb.weight.data)
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(gray(x), rgb(x.expand(-1, 3, -1, -1)))
    with pytest.raises(ValueError, match="3 input channels"):
        adapt_first_conv(torch.zeros(8, 1, 5, 5))


@pytest.mark.parametrize("name", sorted(CBR_ARCHITECTURES))
def test_cbr_models_follow_transfusion_appendix(name):
    widths, kernel, _ = CBR_ARCHITECTURES[name]
    convs = [m for m in build_model(name, 2).modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == list(widths)
    assert {c.kernel_size for c in convs} == {(kernel, kernel)}
    assert {c.stride for c in convs} == {(1, 1)}


def test_cbr_parameter_counts_match_the_paper():
    millions = {n: sum(p.numel() for p in build_model(n, 2).parameters()) / 1e6 for n in CBR_ARCHITECTURES}
    assert millions["cbr_large_t"] == pytest.approx(8.5, abs=0.1)
    assert millions["cbr_large_w"] == pytest.approx(8.4, abs=0.1)
    assert millions["cbr_small"] == pytest.approx(2.1, abs=0.1)


def test_timm_spec_comes_from_its_pretrained_cfg():
    assert (model_spec("timm:resnet10t").head, model_spec("timm:resnet10t").first_conv) == ("fc", "conv1.0")
    assert model_spec("timm:convnext_atto").head == "head.fc"
    assert model_spec("timm:resnet10t").imagenet_source == "timm:resnet10t"


def test_unknown_model_names_the_known_ones():
    assert is_known_model("resnet18") and is_known_model("timm:resnet10t")
    assert not is_known_model("resnet19") and not is_known_model("timm:no_such_model")
    with pytest.raises(UnknownNameError, match="known: cbr_large_t.*xrv_densenet121"):
        build_model("resnet19", 2)
    assert "timm:NAME" in known_models()
