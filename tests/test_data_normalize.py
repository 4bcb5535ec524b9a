"""Named normalizations match what each family of pretrained weights expects."""
import numpy as np
import pytest
import torch

from xfer.data.normalize import NORMALIZATIONS, normalize
from xfer.registry import UnknownNameError
from xfer.xrv import import_xrv


def test_registry_names():
    assert set(NORMALIZATIONS) == {"xrv", "imagenet", "unit"}


def test_xrv_matches_torchxrayvision():
    xrv = import_xrv()
    pixels = np.array([0, 1, 64, 128, 255], dtype=np.uint8)
    expected = xrv.datasets.normalize(pixels.astype(np.float32), 255)
    batch = torch.from_numpy(pixels).view(1, 1, 1, 5)
    np.testing.assert_allclose(normalize(batch, "xrv").flatten().numpy(), expected, rtol=1e-5, atol=1e-3)


def test_uint8_and_float_inputs_agree():
    batch = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    for name in NORMALIZATIONS:
        out = normalize(batch, name)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, normalize(batch.float() / 255, name))


def test_imagenet_stats_for_one_and_three_channels():
    gray = torch.full((2, 1, 3, 3), 0.449)
    assert normalize(gray, "imagenet").abs().max() < 1e-6
    rgb = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1).expand(2, 3, 3, 3)
    assert normalize(rgb, "imagenet").abs().max() < 1e-6
    torch.testing.assert_close(normalize(torch.ones(1, 3, 1, 1), "imagenet").flatten(),
                               torch.tensor([(1 - 0.485) / 0.229, (1 - 0.456) / 0.224, (1 - 0.406) / 0.225]))
    assert normalize(torch.zeros(3, 5, 5), "imagenet").shape == (3, 5, 5)  # a single image works too
    with pytest.raises(ValueError, match="1 or 3 channels"):
        normalize(torch.zeros(1, 2, 4, 4), "imagenet")


def test_unit_range_and_unknown_name():
    torch.testing.assert_close(normalize(torch.tensor([0.0, 0.5, 1.0]).view(1, 1, 1, 3), "unit").flatten(),
                               torch.tensor([-1.0, 0.0, 1.0]))
    with pytest.raises(UnknownNameError, match="known: imagenet, unit, xrv"):
        normalize(torch.zeros(1, 1, 2, 2), "chexpert")
