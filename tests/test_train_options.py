"""Training recipes change training as intended."""
import numpy as np
import torch

from xfer import train_options
from xfer.config import AugmentConfig, TrainConfig


def test_mixup_batches_are_convex_combinations():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 4, 4)
    y = torch.nn.functional.one_hot(torch.arange(8) % 2, 2).float()
    mixed, targets, lam = train_options.mixup(x, y, 0.4, g)
    assert 0 <= lam <= 1
    assert torch.allclose(targets.sum(1), torch.ones(8))
    # every mixed image is lam·x_i + (1-lam)·x_j for some j
    for i in range(8):
        rest = (mixed[i] - lam * x[i]) / (1 - lam)
        assert any(torch.allclose(rest, x[j], atol=1e-4) for j in range(8))


def test_progressive_schedule_changes_size_at_given_epochs():
    steps = ((1, 16), (3, 32), (5, 64))
    sizes = [train_options.size_for_epoch(steps, e, 64) for e in range(1, 7)]
    assert sizes == [16, 16, 32, 32, 64, 64]
    assert train_options.size_for_epoch((), 3, 48) == 48


def test_weighted_sampler_balances_classes():
    labels = np.array([0] * 900 + [1] * 100)
    sampler = train_options.weighted_sampler(labels, torch.Generator().manual_seed(0))
    drawn = labels[list(iter(sampler))]
    assert abs(drawn.mean() - 0.5) < 0.05


def test_class_weights_inverse_frequency():
    w = train_options.class_weights(np.array([0, 0, 0, 1]), 2)
    assert torch.allclose(w, torch.tensor([4 / 6, 2.0]))


def test_augment_keeps_shape_and_range_and_changes_images():
    torch.manual_seed(0)
    aug = train_options.make_augment(AugmentConfig(hflip=True, rotate_degrees=15, scale=0.1, shift=0.05,
                                             brightness=0.2, contrast=0.2, erase_p=0.5))
    x = torch.rand(4, 1, 32, 32)
    out = aug(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert not torch.allclose(out, x)
    assert train_options.make_augment(AugmentConfig()) is None


def test_schedulers_change_the_learning_rate():
    model = torch.nn.Linear(2, 2)
    for name, expect in (("onecycle", "batch"), ("cosine", "epoch"), ("plateau", "metric")):
        cfg = TrainConfig(scheduler=name, epochs=4)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched, when = train_options.make_scheduler(opt, cfg, steps_per_epoch=5)
        assert when == expect
        before = opt.param_groups[0]["lr"]
        for _ in range(6):
            sched.step(0.5) if when == "metric" else sched.step()
        assert opt.param_groups[0]["lr"] != before
