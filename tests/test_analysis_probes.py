"""Model probes on real X-rays: linear CKA by depth, Grad-CAM and saliency, penultimate features and t-SNE."""
from pathlib import Path

import numpy as np
import pytest
import torch

from xfer.analysis.cka import layerwise_cka, linear_cka
from xfer.analysis.embed import penultimate_features, tsne_2d
from xfer.analysis.probe_images import model_input
from xfer.analysis.saliency import grad_cam, last_conv_block, saliency
from xfer.checkpoint import CheckpointMeta
from xfer.data.read_image import read_image_resized
from xfer.models import build_model, layer_blocks

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
META = CheckpointMeta(model="cbr_tiny", in_channels=1, image_size=32, normalization="unit")


@pytest.fixture(scope="module")
def xrays() -> torch.Tensor:
    files = sorted((DATA / "covid-actualmed" / "images").glob("*.png"))[:12]
    return model_input(np.stack([read_image_resized(str(f), 32, 1) for f in files]), META)


def seeded_model(seed: int, name: str = "cbr_tiny") -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, 2, 1).eval()


def test_cka_of_a_network_with_itself_is_one_and_lower_with_an_unrelated_one(xrays):
    model = seeded_model(0)
    same = layerwise_cka(model, model, xrays, model_name="cbr_tiny")
    assert [b for b, _ in same] == [b for b, _ in layer_blocks(model, "cbr_tiny")]
    assert all(v == pytest.approx(1.0, abs=1e-6) for _, v in same)
    other = layerwise_cka(model, seeded_model(1), xrays, model_name="cbr_tiny")
    assert all(v < 1 - 1e-3 for _, v in other)
    assert other[-1][1] < other[0][1]  # random nets share low-level structure more than high-level


def test_linear_cka_is_invariant_to_rotation_and_scale_but_not_to_unrelated_features():
    x = torch.randn(20, 6, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    assert linear_cka(x, 3 * x @ q) == pytest.approx(1.0)
    assert linear_cka(x, torch.randn(20, 6)) < 0.9
    with pytest.raises(ValueError, match="same examples"):
        linear_cka(x, x[:5])


def test_gradcam_maps_have_the_input_size_and_differ_between_classes(xrays):
    model = seeded_model(0)
    image = xrays[0]
    layer = last_conv_block(model, "cbr_tiny", image)
    maps = [grad_cam(model, image, k, layer) for k in (0, 1)]
    for m in maps:
        assert m.shape == tuple(image.shape[-2:])
        assert m.min() >= 0 and m.max() <= 1
    assert np.abs(maps[0] - maps[1]).max() > 0.05
    sal = saliency(model, image, 1)
    assert sal.shape == tuple(image.shape[-2:]) and sal.max() == pytest.approx(1.0)


def test_penultimate_features_feed_a_two_dimensional_tsne(xrays):
    model = seeded_model(0)
    features = penultimate_features(model, "cbr_tiny", xrays, batch_size=5)
    assert features.shape[0] == len(xrays) and features.ndim == 2
    xy = tsne_2d(features, seed=0)
    assert xy.shape == (len(xrays), 2)
    np.testing.assert_allclose(xy, tsne_2d(features, seed=0))


def test_tsne_of_a_collapsed_model_warns_instead_of_crashing():
    """A model that maps every image to the same features (VGG-16 collapsed at lr 0.01 in
    recipe_weighted_sampling) once segfaulted sklearn's Barnes-Hut t-SNE and took the report with it."""
    for features in (np.zeros((12, 8)), np.full((12, 8), np.nan)):
        with pytest.warns(RuntimeWarning, match="t-SNE skipped"):
            assert (tsne_2d(features, seed=0) == 0).all()
