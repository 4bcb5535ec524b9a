"""Weight sources: published weights read offline from the libraries' caches (under tmp), checked loading, CLI."""
import huggingface_hub
import pytest
import safetensors.torch
import timm
import torch
import torchvision

from xfer.cli import main
from xfer.config import InitConfig
from xfer.inits import apply_init
from xfer.inits.published import published_weights
from xfer.inits.weights import (CheckpointMismatchError, WeightsMissingError, load_state_dict_checked, load_weights,
                                source_for)
from xfer.models import adapt_first_conv, build_model
from xfer.xrv import import_xrv


@pytest.fixture
def caches(tmp_path, monkeypatch):
    """Empty caches of torch.hub (TORCH_HOME), the HF hub and torchxrayvision (~ = HOME), all under tmp."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


def put_in_cache(source, write):
    """Write a weight file where `source`'s library looks for it; returns the path."""
    path = published_weights(source).cache_path
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path)
    return path


def put_in_hf_cache(cache, repo_id, file, state_dict):
    """The HF hub cache layout: refs/main names a snapshot folder holding the file."""
    repo, revision = cache / f"models--{repo_id.replace('/', '--')}", "0" * 40
    (repo / "snapshots" / revision).mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    safetensors.torch.save_file(state_dict, repo / "snapshots" / revision / file)


def assert_transferred(model, source_state, head):
    for key, value in model.state_dict().items():
        if not key.startswith(head + "."):
            expected = source_state[key]
            expected = adapt_first_conv(expected) if expected.shape != value.shape else expected
            assert torch.equal(value, expected), key


def test_torchvision_imagenet_weights_load_offline_from_the_torch_hub_cache(caches):
    published = torchvision.models.resnet18().state_dict()  # stands in for the real RGB ImageNet weights
    path = put_in_cache("torchvision:resnet18", lambda p: torch.save(published, p))
    assert path == caches / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    model = build_model("resnet18", 2)
    info = apply_init(model, "resnet18", InitConfig("imagenet"))
    assert_transferred(model, published, "fc")
    torch.testing.assert_close(model.conv1.weight, published["conv1.weight"].sum(1, keepdim=True))
    assert (info.source, info.normalization) == ("torchvision:resnet18.IMAGENET1K_V1", "imagenet")
    assert "conv1.weight: RGB filters summed" in info.notes


def test_missing_published_weights_name_file_cache_path_and_fetch_command(caches):
    for model_name, strategy, source in [("resnet50", "meanvar", "torchvision:resnet50.IMAGENET1K_V1"),
                                         ("xrv_densenet121", "chexpert", "xrv:densenet121-res224-chex"),
                                         ("timm:resnet10t", "imagenet", "timm:resnet10t.c3_in1k")]:
        published = published_weights(source)
        with pytest.raises(WeightsMissingError) as error:
            apply_init(build_model(model_name, 2), model_name, InitConfig(strategy))
        message = str(error.value)
        assert str(caches) in str(published.cache_path)
        assert published.file in message and str(published.cache_path) in message
        assert f"xfer weights fetch {source}" in message and "copy the file" in message


def test_xrv_chexpert_weights_load_offline_and_train_without_op_threshs(caches):
    xrv = import_xrv()
    published = xrv.models.DenseNet()  # xrv stores whole pickled models; 18 outputs like the real file
    put_in_cache("xrv:densenet121-res224-chex", lambda p: torch.save(published, p))
    model = build_model("xrv_densenet121", 2)
    info = apply_init(model, "xrv_densenet121", InitConfig("chexpert"))
    assert_transferred(model, published.state_dict(), "classifier")
    assert model.op_threshs is None and model.training and not hasattr(model, "input_resolution")
    assert (info.source, info.normalization) == ("xrv:densenet121-res224-chex", "xrv")
    torchvision_densenet = build_model("densenet121", 2)  # same layout: the xrv weights fit it too
    apply_init(torchvision_densenet, "densenet121", InitConfig("chexpert"))
    assert_transferred(torchvision_densenet, published.state_dict(), "classifier")


def test_timm_weights_load_offline_from_the_hf_cache(caches):
    published = timm.create_model("resnet10t").state_dict()
    put_in_hf_cache(caches / "hf", "timm/resnet10t.c3_in1k", "model.safetensors", published)
    model = build_model("timm:resnet10t", 2)
    info = apply_init(model, "timm:resnet10t", InitConfig("imagenet"))
    assert_transferred(model, published, "fc")
    assert (info.source, info.normalization) == ("timm:resnet10t.c3_in1k", "imagenet")


def test_loading_published_weights_leaves_the_rng_alone(caches):
    put_in_cache("torchvision:resnet18", lambda p: torch.save(torchvision.models.resnet18().state_dict(), p))
    torch.manual_seed(0)
    load_weights("torchvision:resnet18")  # builds a torchvision model, which draws random numbers
    after = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(3))


def test_checkpoint_mismatch_names_every_key():
    model = build_model("resnet18", 2)
    state = dict(model.state_dict())
    del state["layer1.0.conv1.weight"]
    state["extra.weight"] = torch.zeros(1)
    state["layer2.0.bn1.weight"] = torch.zeros(7)
    with pytest.raises(CheckpointMismatchError, match="stage.pt does not fit") as error:
        load_state_dict_checked(model, state, source="stage.pt")
    message = str(error.value)
    for part in ["missing from the checkpoint (1): layer1.0.conv1.weight", "unexpected in the checkpoint (1): "
                 "extra.weight", "shape mismatch (1): layer2.0.bn1.weight (checkpoint (7,), model (128,))"]:
        assert part in message
    assert error.value.missing == ["layer1.0.conv1.weight"]


def test_skip_prefixes_leave_the_head_alone_and_rgb_first_conv_is_summed():
    source = torchvision.models.resnet18()  # 3 channels, 1000 classes
    model = build_model("resnet18", 2)
    head = model.fc.weight.clone()
    with pytest.raises(CheckpointMismatchError, match="fc.weight"):
        load_state_dict_checked(model, source.state_dict())
    assert load_state_dict_checked(model, source.state_dict(), skip_prefixes=("fc.",)) == ("conv1.weight",)
    assert torch.equal(model.fc.weight, head)
    x = torch.rand(1, 1, 32, 32)
    torch.testing.assert_close(model.eval().conv1(x), source.conv1(x.expand(-1, 3, -1, -1)))


def test_checkpoint_files_plain_or_with_meta(tmp_path):
    state = build_model("cbr_small", 2).state_dict()
    torch.save(state, tmp_path / "plain.pt")
    torch.save({"state_dict": state, "meta": {"normalization": "xrv", "model": "cbr_small"}}, tmp_path / "meta.pt")
    plain, with_meta = load_weights(str(tmp_path / "plain.pt")), load_weights(str(tmp_path / "meta.pt"))
    assert plain.normalization is None and with_meta.normalization == "xrv"
    assert with_meta.meta.model == "cbr_small" and with_meta.source == str(tmp_path / "meta.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_weights(str(tmp_path / "nope.pt"))
    torch.save(build_model("cbr_small", 2), tmp_path / "module.pt")
    with pytest.raises(ValueError, match="save a state dict, not a model"):
        load_weights(str(tmp_path / "module.pt"))
    with pytest.raises(ValueError, match="resolved to checkpoint files"):
        load_weights("stage:natural")


def test_source_defaults_come_from_the_model_spec():
    assert source_for("resnet50", None, "imagenet") == "torchvision:resnet50.IMAGENET1K_V1"
    assert source_for("resnet50", "torchvision", "imagenet") == "torchvision:resnet50.IMAGENET1K_V1"
    assert source_for("xrv_densenet121", "xrv", "xray") == "xrv:densenet121-res224-chex"
    assert source_for("resnet18", "ckpt.pt", "xray") == "ckpt.pt"
    with pytest.raises(ValueError, match="no default timm imagenet weights"):
        source_for("resnet18", "timm", "imagenet")


def test_cli_where_and_fetch_use_the_libraries_caches(caches, capsys):
    assert main(["weights", "where", "resnet18", "xrv_densenet121"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["missing", "torchvision:resnet18.IMAGENET1K_V1"], ["missing", "torchvision:densenet121.IMAGENET1K_V1"],
        ["missing", "xrv:densenet121-res224-chex"]]
    path = put_in_cache("torchvision:resnet18", lambda p: p.write_bytes(b""))
    assert main(["weights", "fetch", "torchvision:resnet18.IMAGENET1K_V1"]) == 0  # cached: nothing downloaded
    assert capsys.readouterr().out.split()[:3] == ["cached", "torchvision:resnet18.IMAGENET1K_V1", str(path)]
    with pytest.raises(SystemExit, match="cbr_tiny.*has no published weights"):
        main(["weights", "fetch", "cbr_tiny"])
