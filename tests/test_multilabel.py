"""Multi-label heads for pretraining stages (CheXpert/NIH style): masked BCE, per-label AUC, a real stage run."""
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from sklearn.metrics import roc_auc_score

from test_config import smoke_raw
from test_xrv_datasets import write_nih_csv
from xfer import track
from xfer.checkpoint import read_checkpoint
from xfer.config import ConfigError, InitConfig, TrainConfig
from xfer.load import load_stage, parse_study
from xfer.inits import apply_init
from xfer.metrics import multilabel_metrics
from xfer.models import build_model
from xfer.stages import plan_stage, train_stage
from xfer.train import FitData, _loss, fit


def test_unknown_targets_get_no_gradient():
    logits = torch.randn(4, 3, requires_grad=True)
    target = torch.tensor([[1, 0, np.nan], [0, np.nan, 1], [np.nan, np.nan, np.nan], [1, 1, 0]], dtype=torch.float32)
    loss = _loss(logits, target, None, 0.0, multi_label=True)
    loss.backward()
    unknown = torch.isnan(target)
    assert torch.isfinite(loss) and (logits.grad[unknown] == 0).all() and (logits.grad[~unknown] != 0).all()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[~unknown], target[~unknown])
    assert torch.isclose(loss, expected)  # the mean BCE over the known labels alone
    weighted = _loss(logits, target, torch.tensor([1.0, 1.0, 5.0]), 0.0, True)
    assert weighted > loss  # pos_weight up-weights the positives of the third label


def test_multilabel_auc_uses_known_labels_only():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 2, (40, 2)).astype(np.float32)
    probs = rng.random((40, 2)).astype(np.float32)
    targets[:10, 1] = np.nan
    out = multilabel_metrics(targets, probs, ("a", "b"), "val_")
    assert out["val_auc_a"] == pytest.approx(roc_auc_score(targets[:, 0], probs[:, 0]))
    assert out["val_auc_b"] == pytest.approx(roc_auc_score(targets[10:, 1], probs[10:, 1]))
    assert out["val_auc"] == pytest.approx((out["val_auc_a"] + out["val_auc_b"]) / 2)


def test_fit_learns_two_labels_with_unknowns():
    """Label a: bright top-left patch; label b: bright bottom-right patch; a third of b's labels unknown."""
    rng = np.random.default_rng(0)
    n = 64
    targets = rng.integers(0, 2, (n, 2)).astype(np.float32)
    images = rng.integers(0, 80, (n, 1, 16, 16)).astype(np.uint8)
    images[targets[:, 0] == 1, :, :6, :6] += 170
    images[targets[:, 1] == 1, :, 10:, 10:] += 170
    targets[::3, 1] = np.nan
    torch.manual_seed(0)
    data = FitData(lambda size: images, targets, np.arange(48), np.arange(48, 64), ("a", "b"), 16)
    result = fit(build_model("cbr_tiny", 2, 1), "cbr_tiny", data, TrainConfig(epochs=4, batch_size=8, lr=0.01),
                 "unit", 0, device=torch.device("cpu"))
    assert result.best_val_auc > 0.8
    assert all(np.isfinite(h["val_loss"]) and np.isfinite(h["train_loss"]) for h in result.history)


def write_nih_corpus(root: Path, n: int = 48) -> None:
    """A tiny ChestX-ray14-format corpus: findings drawn per image, visible as bright patches."""
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(n):
        findings = [f for f, p in (("Effusion", 0.4), ("Pneumonia", 0.4)) if rng.random() < p]
        image = rng.integers(0, 80, (32, 32)).astype(np.uint8)
        if "Effusion" in findings:
            image[20:, :12] += 170
        if "Pneumonia" in findings:
            image[:12, 20:] += 170
        Image.fromarray(image).save(root / "images" / f"{i:03d}.png")
        rows.append((f"{i:03d}.png", "|".join(findings) or "No Finding", i // 2, "PA"))
    write_nih_csv(root / "Data_Entry_2017.csv", rows)


def multilabel_recipe(folder: Path, corpus: Path, **train) -> Path:
    raw = {"stage": "nih_multilabel", "model": "cbr_tiny", "init": {"strategy": "random"},
           "data": {"datasets": [{"name": "nih", "layout": "torchxrayvision", "xrv_class": "NIH_Dataset",
                                  "root": str(corpus / "images"), "metadata": str(corpus / "Data_Entry_2017.csv"),
                                  "label_map": {"Effusion": "effusion", "Pneumonia": "pneumonia"}}],
                    "classes": ["effusion", "pneumonia"], "multi_label": True, "image_size": 16,
                    "split": {"val_fraction": 0.25, "test_fraction": 0.25}},
           "train": {"epochs": 3, "batch_size": 8, "lr": 0.01, **train}}
    path = folder / "nih_multilabel.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_multilabel_stage_trains_and_its_checkpoint_transfers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_nih_corpus(tmp_path / "nih")
    multilabel_recipe(tmp_path, tmp_path / "nih")
    job = plan_stage("nih_multilabel", None, [tmp_path])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = train_stage(job, None, tmp_path / "cache", uri, track.ensure_experiment(uri, "stages"))
    manifest = json.loads((Path(path).parent / "manifest.json").read_text())
    metrics = manifest["final_metrics"]
    assert {"test_auc_effusion", "test_auc_pneumonia"} <= set(metrics)
    assert metrics["test_auc"] > 0.7 and 0 < metrics["chance_accuracy"] < 1 and manifest["learned"] is True
    checkpoint = read_checkpoint(Path(path))
    meta = checkpoint.meta
    assert meta.multi_label is True and meta.classes == ("effusion", "pneumonia")
    # transfer: the 2-label head is dropped, the backbone loads into a 3-class target model
    target = build_model("cbr_tiny", 3, 1)
    apply_init(target, "cbr_tiny", InitConfig("imagenet", path), 1)
    source_conv = next(v for k, v in checkpoint.state_dict.items() if k.endswith("weight") and v.ndim == 4)
    target_conv = next(v for k, v in target.state_dict().items() if k.endswith("weight") and v.ndim == 4)
    assert torch.equal(source_conv, target_conv)


def test_weighted_sampler_is_refused_for_multilabel_stages(tmp_path):
    write_nih_corpus(tmp_path / "nih", n=4)
    with pytest.raises(ConfigError, match="train.sampler: 'weighted' needs single-label data"):
        load_stage(multilabel_recipe(tmp_path, tmp_path / "nih", sampler="weighted"))


def test_studies_refuse_multi_label():
    raw = smoke_raw()
    raw["data"]["multi_label"] = True
    with pytest.raises(ConfigError) as info:
        parse_study(raw, "study.yaml", Path("."))
    assert "data.multi_label: needs datasets of layout torchxrayvision" in str(info.value)
    assert "data.multi_label: studies are single-label" in str(info.value)
