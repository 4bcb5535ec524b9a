"""Checkpoint files: one versioned CheckpointMeta, written and read in one place; old files still load."""
import pytest
import torch

from xfer.checkpoint import (CHECKPOINT_VERSION, CheckpointMeta, CheckpointVersionError, load_trial, read_checkpoint,
                             save_checkpoint)
from xfer.models import build_model


def trial_meta() -> CheckpointMeta:
    return CheckpointMeta(model="cbr_tiny", num_classes=2, classes=("normal", "covid"), image_size=32,
                          normalization="unit", strategy="random", seed=3)


def test_meta_round_trips_with_its_version(tmp_path):
    state = build_model("cbr_tiny", 2, 1).state_dict()
    checkpoint = read_checkpoint(save_checkpoint(tmp_path / "best.pt", state, trial_meta()))
    assert checkpoint.meta == trial_meta() and checkpoint.meta.version == CHECKPOINT_VERSION
    assert torch.load(tmp_path / "best.pt", weights_only=True)["meta"]["version"] == CHECKPOINT_VERSION
    assert all(torch.equal(checkpoint.state_dict[k], v) for k, v in state.items())


def test_old_checkpoint_with_an_unversioned_meta_dict_still_loads(tmp_path):
    model = build_model("cbr_tiny", 2, 1)
    old = {"model": "cbr_tiny", "num_classes": 2, "classes": ["normal", "covid"], "image_size": 32,
           "normalization": "unit", "strategy": "random", "source": "", "init": "random", "seed": 0}  # no in_channels
    torch.save({"state_dict": model.state_dict(), "meta": old}, tmp_path / "old.pt")
    loaded, meta = load_trial(str(tmp_path / "old.pt"))
    assert meta.in_channels == 1 and meta.classes == ("normal", "covid") and meta.version == CHECKPOINT_VERSION
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_plain_state_dict_loads_with_empty_meta_but_is_no_trial(tmp_path):
    torch.save(build_model("cbr_tiny", 2, 1).state_dict(), tmp_path / "plain.pt")
    assert read_checkpoint(tmp_path / "plain.pt").meta == CheckpointMeta()
    with pytest.raises(ValueError, match="lacks the model, classes"):
        load_trial(str(tmp_path / "plain.pt"))


def test_checkpoint_of_an_unknown_future_version_is_refused_naming_it(tmp_path):
    meta = dict(trial_meta().to_dict(), version=CHECKPOINT_VERSION + 6)
    torch.save({"state_dict": build_model("cbr_tiny", 2, 1).state_dict(), "meta": meta}, tmp_path / "new.pt")
    with pytest.raises(CheckpointVersionError, match=f"version {CHECKPOINT_VERSION + 6} is newer.*upgrade xfer"):
        read_checkpoint(tmp_path / "new.pt")
