"""The training loop: deterministic, freeze-then-unfreeze, discriminative LRs, early stopping, resume."""
import numpy as np
import torch

from xfer import train_options
from xfer.config import TrainConfig
from xfer.models import build_model, head_and_backbone_params
from xfer.train import FitData, fit

CLASSES = ("normal", "covid")


def toy_data(n=24, size=16, seed=0):
    """Two separable synthetic classes: bright vs dark squares."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 100, (n, 1, size, size)).astype(np.uint8)
    images[labels == 1, :, 4:12, 4:12] += 150
    return images, labels


def run_fit(cfg, seed=0, on_epoch=None, resume=None, model=None):
    images, labels = toy_data()
    torch.manual_seed(seed)
    model = model or build_model("cbr_tiny", 2, 1)
    data = FitData(lambda size: images, labels, np.arange(16), np.arange(16, 24), CLASSES, 16)
    result = fit(model, "cbr_tiny", data, cfg, "unit", seed, device=torch.device("cpu"), on_epoch=on_epoch,
                 resume=resume)
    return model, result


def test_training_is_deterministic_given_the_seed():
    cfg = TrainConfig(epochs=2, batch_size=4, augment=train_options.AugmentConfig(hflip=True), mixup_alpha=0.2)
    _, a = run_fit(cfg, seed=3)
    _, b = run_fit(cfg, seed=3)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    _, c = run_fit(cfg, seed=4)
    assert [h["train_loss"] for h in a.history] != [h["train_loss"] for h in c.history]


def test_freeze_then_unfreeze_trains_only_the_head_first():
    torch.manual_seed(0)
    model = build_model("cbr_tiny", 2, 1)
    head, backbone = head_and_backbone_params(model, "cbr_tiny")
    before_backbone = [p.detach().clone() for p in backbone]
    before_head = [p.detach().clone() for p in head]
    snapshots = {}

    def snapshot(epoch, metrics, state):
        snapshots[epoch] = [p.detach().clone() for p in backbone]

    run_fit(TrainConfig(epochs=2, batch_size=4, freeze_epochs=1), on_epoch=snapshot, model=model)
    assert all(torch.equal(a, b) for a, b in zip(before_backbone, snapshots[1])), "backbone moved while frozen"
    assert any(not torch.equal(a, b) for a, b in zip(snapshots[1], snapshots[2])), "backbone never unfrozen"
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before_head, head))


def test_discriminative_learning_rates_ramp_up_with_depth():
    model = build_model("resnet18", 2, 1)
    groups = train_options.param_groups(model, "resnet18", TrainConfig(lr=1e-2, backbone_lr_mult=0.01))
    lrs = [g["lr"] for g in groups]
    assert groups[-1]["role"] == "head" and lrs[-1] == 1e-2
    assert min(lrs) == 1e-4 and lrs == sorted(lrs)
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(model.parameters()))


def test_early_stopping_and_best_checkpoint():
    _, result = run_fit(TrainConfig(epochs=30, batch_size=8, lr=0.0, early_stopping_patience=2))
    assert len(result.history) == 3 and result.best_epoch == 1  # lr 0: no epoch beats the first


def test_resume_continues_where_it_stopped():
    cfg = TrainConfig(epochs=3, batch_size=4)
    states = {}
    _, full = run_fit(cfg, on_epoch=lambda e, m, state: states.__setitem__(e, state()))
    resume = {k: v for k, v in states[2].items()}
    _, resumed = run_fit(cfg, resume=resume)
    assert len(resumed.history) == 3
    assert resumed.history[-1]["train_loss"] == full.history[-1]["train_loss"]


def test_lr_and_image_size_are_epoch_metrics_only_when_a_scheduler_or_progressive_resizing_changes_them():
    _, constant = run_fit(TrainConfig(epochs=2, batch_size=8))
    assert not {"lr", "image_size"} & set(constant.history[0])  # train.lr and data.image_size are params
    _, scheduled = run_fit(TrainConfig(epochs=2, batch_size=8, scheduler="cosine", progressive_sizes=((1, 12), (2, 16))))
    assert [h["lr"] for h in scheduled.history] == [0.001, 0.0005]  # the rate each epoch trained at (cosine, 2 epochs)
    assert [h["image_size"] for h in scheduled.history] == [12, 16]
