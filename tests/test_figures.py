"""The report's figures: nothing clipped, one colour scale per figure."""
from pathlib import Path

import numpy as np
from PIL import Image

from xfer.analysis import figures

CLASSES = ("COVID19", "NORMAL", "PNEUMONIA")


def test_a_gradcam_grid_of_one_probe_column_keeps_its_title_and_colour_bar_inside_the_image(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.array([0])
    cams = {key: rng.random((1, 32, 32)) for key in ("imagenet|resnet18", "random|resnet18")}
    probs = {key: np.array([[0.8, 0.1, 0.1]]) for key in cams}
    path = figures.gradcam_grid(rng.integers(0, 255, (1, 1, 32, 32)).astype(np.uint8), labels, cams, probs, CLASSES,
                                tmp_path / "gradcam.png")
    pixels = np.asarray(Image.open(path).convert("L"))
    border = np.concatenate([pixels[:3].ravel(), pixels[-3:].ravel(), pixels[:, :3].ravel(), pixels[:, -3:].ravel()])
    assert border.min() == 255  # a clipped title or colour-bar label would run into the edge


def test_confusion_panels_of_one_figure_share_the_row_fraction_scale_and_print_counts():
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2)
    large, small = np.array([[50, 3, 7], [2, 80, 8], [10, 5, 120]]), np.array([[5, 1, 1], [0, 9, 2], [1, 0, 11]])
    shown = [figures._confusion_panel(ax, m, CLASSES, "") for ax, m in zip(axes, (large, small))]
    assert [s.get_clim() for s in shown] == [(0, 1), (0, 1)]
    assert np.allclose(shown[1].get_array(), small / small.sum(axis=1, keepdims=True))
    assert [t.get_text() for t in axes[1].texts][:2] == ["5\n71%", "1\n14%"]
    plt.close(fig)
