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
