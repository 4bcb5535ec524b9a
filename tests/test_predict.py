"""xfer.predict: one CSV row per image; a corrupt file is reported, not fatal."""
import csv
from pathlib import Path

import torch

from xfer.checkpoint import CheckpointMeta, load_trial, save_checkpoint
from xfer.models import build_model
from xfer.predict import main

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_trial_checkpoint(path: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("cbr_tiny", 2, 1)
    meta = CheckpointMeta(model="cbr_tiny", num_classes=2, in_channels=1, classes=("normal", "covid"), image_size=32,
                          normalization="unit", strategy="random")
    return save_checkpoint(path, model.state_dict(), meta)


def test_checkpoint_round_trip(tmp_path):
    path = write_trial_checkpoint(tmp_path / "best.pt")
    model, meta = load_trial(str(path))
    assert meta.classes == ("normal", "covid") and not model.training


def test_predicts_real_images_and_reports_corrupt_file(tmp_path, capsys):
    checkpoint = write_trial_checkpoint(tmp_path / "best.pt")
    images = sorted((DATA / "covid-actualmed" / "images").iterdir())[:5]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    out = tmp_path / "predictions.csv"
    code = main([str(checkpoint), *map(str, images[:3]), str(corrupt), *map(str, images[3:]), "--out", str(out)])
    assert code == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 6
    good = [r for r in rows if not r["error"]]
    assert len(good) == 5
    for r in good:
        assert abs(float(r["prob_normal"]) + float(r["prob_covid"]) - 1) < 1e-4
        assert r["prediction"] in ("normal", "covid")
    bad = [r for r in rows if r["error"]]
    assert bad[0]["path"] == str(corrupt) and "corrupt.png" in capsys.readouterr().err


def test_folder_of_unlabeled_images(tmp_path):
    checkpoint = write_trial_checkpoint(tmp_path / "best.pt")
    out = tmp_path / "p.csv"
    assert main([str(checkpoint), str(DATA / "covid-actualmed" / "images"), "--out", str(out)]) == 0
    n_images = len(list((DATA / "covid-actualmed" / "images").iterdir()))
    assert len(list(csv.DictReader(out.open()))) == n_images


def test_actmax_renders_the_input_a_class_and_a_channel_respond_to_most(tmp_path, capsys):
    from xfer.analysis.saliency import activation_maximization, last_conv_block
    from xfer.explain import main as explain_main

    checkpoint = write_trial_checkpoint(tmp_path / "best.pt")
    model, meta = load_trial(str(checkpoint))
    image, before, after = activation_maximization(model, (1, 32, 32), target=1, steps=60)
    assert image.shape == (32, 32) and 0 <= image.min() < image.max() <= 1 and after > before
    layer = last_conv_block(model, "cbr_tiny", torch.zeros(1, 32, 32))
    _, before, after = activation_maximization(model, (1, 32, 32), target=0, layer=layer, steps=60)
    assert after > before
    assert explain_main([str(checkpoint), "--method", "actmax", "--class", "covid", "--steps", "30",
                         "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "actmax_covid.png").stat().st_size > 2000
    assert explain_main([str(checkpoint), "--method", "actmax", "--channel", "0", "--steps", "30",
                         "--out", str(tmp_path / "x")]) == 0
    assert (tmp_path / "x" / "actmax_channel_0.png").exists()
