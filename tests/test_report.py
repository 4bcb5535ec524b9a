"""The report on a tiny real study: real X-rays, real trials (xfer.trial), a real MLflow sqlite store."""
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from xfer import track
from xfer.analysis.probe_images import model_input
from xfer.analysis.saliency import grad_cam, last_conv_block
from xfer.analysis.shortcut import shortcut_probe
from xfer.checkpoint import CheckpointMeta, load_trial, save_checkpoint
from xfer.config import AnalysisConfig, TrainConfig
from xfer.data.root import absolutize
from xfer.data.read_image import read_image_resized
from xfer.data.prepare import prepare_data
from xfer.load import parse_study
from xfer.explain import main as explain_main
from xfer.models import build_model
from xfer.report import build_report, main as report_main
from xfer.train import FitData, fit
from xfer.plan import TrialSpec
from xfer.trial import run_trial

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CHROMIUM = Path("/usr/bin/chromium")
ACTUALMED = {"name": "actualmed", "layout": "metadata_csv", "root": str(DATA / "covid-actualmed"),
             "images_dir": "images", "metadata": "metadata.csv", "filename_column": "imagename",
             "label_column": "finding", "patient_column": "patientid",
             "label_map": {"No finding": "normal", "COVID-19": "covid"}}
KERMANY = {"name": "kermany", "layout": "label_csv", "root": str(DATA / "kermany-pneumonia-sample"),
           "metadata": "labels.csv", "label_column": "label", "patient_column": "patient_id"}
CFG = AnalysisConfig(cka_images=8, explain_images=2)


def pretrain_source(tmp: Path) -> Path:
    """A small X-ray source checkpoint: cbr_tiny trained 2 epochs on the Kermany pediatric sample."""
    data = parse_study({"name": "src", "data": {"datasets": [KERMANY], "classes": ["NORMAL", "PNEUMONIA"],
                                                "image_size": 32, "cache_dir": str(tmp / "cache")},
                        "trials": {"init": [{"strategy": "random"}], "models": ["cbr_tiny"]}}).data
    source = prepare_data(data, ROOT)
    torch.manual_seed(0)
    model = build_model("cbr_tiny", 2, 1)
    data = FitData(source.images_at, source.labels, np.asarray(source.split.train), np.asarray(source.split.val),
                   source.classes, 32)
    result = fit(model, "cbr_tiny", data, TrainConfig(epochs=2, batch_size=16), "unit", 0)
    return save_checkpoint(tmp / "source.pt", result.best_state, CheckpointMeta(model="cbr_tiny", num_classes=2))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """random / pretrained / meanvar × cbr_tiny × n ∈ {4, all} × 3 seeds, 4 epochs at 32 px (Actualmed)."""
    tmp = tmp_path_factory.mktemp("tiny_study")
    source = str(pretrain_source(tmp))
    raw = {"name": "tiny", "data": {"datasets": [ACTUALMED], "classes": ["normal", "covid"], "positive_class": "covid",
                                    "image_size": 32, "cache_dir": str(tmp / "cache"),
                                    "split": {"val_fraction": 0.2, "test_fraction": 0.3, "seed": 0}},
           "trials": {"init": [{"strategy": "random"},
                               {"strategy": "imagenet", "source": source, "label": "xray_pretrained"},
                               {"strategy": "meanvar", "source": source}],
                      "models": ["cbr_tiny"], "n_per_class": [4, "all"], "seeds": [0, 1, 2]},
           "train": {"epochs": 4, "batch_size": 8, "lr": 0.003}}
    config = parse_study(raw, base_dir=ROOT)
    study_file = tmp / "tiny.yaml"
    study_file.write_text(yaml.safe_dump(raw))
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = track.client(uri)
    experiment_id = client.create_experiment("tiny", artifact_location=str(tmp / "artifacts"))
    parent = client.create_run(experiment_id, tags={"xfer.kind": "study", "xfer.study": "tiny"}).info.run_id
    track.log_params(uri, parent, {"study_file": str(study_file)})
    for init in config.trials.init:
        for n in config.trials.n_per_class:
            for seed in config.trials.seeds:
                run_trial(config, TrialSpec(init, "cbr_tiny", n, seed), uri, experiment_id, parent, base_dir=ROOT)
    out = tmp / "out"
    out.mkdir()
    (out / "study.json").write_text(json.dumps({"tracking_uri": uri, "experiment": "tiny",
                                                "study_file": str(study_file)}))
    return {"uri": uri, "out": out, "tmp": tmp, "study_file": study_file, "parent": parent, "config": config}


@pytest.fixture(scope="module")
def report(study) -> Path:
    return build_report(study["uri"], "tiny", study["out"], CFG, parent_run_id=study["parent"])


FIGURES = ("learning_curves", "auc_vs_n", "cka_by_depth", "gradcam_grid", "tsne")


def test_report_has_every_figure_and_table(report):
    assert report == report.parent.parent / "report" / "report.html" and report.exists()
    for name in FIGURES:
        png = report.parent / "figures" / f"{name}.png"
        assert png.stat().st_size > 5000, name
        assert f"figures/{name}.png" in report.read_text()
    verdicts = pd.read_csv(report.parent / "tables" / "verdicts.csv")
    assert set(verdicts["hypothesis"]) == {f"H{i}" for i in range(1, 7)}
    assert set(verdicts["verdict"]) <= {"supported", "not supported", "inconclusive", "underpowered",
                                        "same weights — not compared"}
    h6 = verdicts[verdicts["hypothesis"] == "H6"]
    # one pretrained init: Δ CKA of the lower blocks and Δ(lower) − Δ(upper), each over 2 n × 3 seeds
    assert len(h6) == 2 and (h6["pairs"] == 6).all() and (h6["seeds"] == 3).all()  # CKA measured for every trial
    cka = pd.read_csv(report.parent / "tables" / "cka.csv")
    # debiased CKA (unbiased HSIC) is not bounded below by 0 on few images; it stays finite and at most 1
    assert cka["cka"].between(-1, 1 + 1e-6).all() and (cka["cka"] < 0.999).any()  # fine-tuning changed something
    ensembles = pd.read_csv(report.parent / "tables" / "ensembles.csv")
    assert {"ensemble: average", "ensemble: val-weighted"} <= set(ensembles["member"])
    cost = pd.read_csv(report.parent / "tables" / "model_cost.csv")
    assert cost.loc[0, "model"] == "cbr_tiny" and cost.loc[0, "parameters"] > 0 and cost.loc[0, "ms_per_image"] > 0
    per_class = pd.read_csv(report.parent / "tables" / "per_class.csv")
    assert len(per_class) == 18 and "covid f1" in per_class


def test_report_opens_with_the_answer_and_its_numbers_are_leaderboard_csvs(study, report):
    """The first lines name, per n, the init of highest test AUC with the AUC and Δ of the leaderboard that
    `xfer run` writes to leaderboard.csv (the same function over the same MLflow runs); the AUC-vs-n table too."""
    import re
    from html import unescape

    from xfer.analysis.collect import load_study_runs, test_predictions
    from xfer.analysis.leaderboard import leaderboard

    runs = load_study_runs(study["uri"], "tiny", study["parent"])
    board = leaderboard(runs.trials, predictions=test_predictions(track.client(study["uri"]),
                                                                     list(runs.trials["run_id"])))
    text = report.read_text()
    assert text.index("<div class='answer'>") < text.index("<section")  # the answer comes first
    answer = unescape(re.search(r"<div class='answer'>(.*?)</div>", text, re.S).group(1))
    assert "test AUC: covid vs normal" in answer
    for n, rows in board.groupby("n_per_class"):
        best = rows.loc[rows["test_auc"].idxmax()]
        line = next(line for line in re.findall(r"<li>(.*?)</li>", answer) if line.startswith(f"n={n} per class"))
        assert f"{best['init']} had the highest test AUC, {best['test_auc']:.3f}" in line
        assert "could tell" in line or "could not tell" in line
    shown = pd.read_csv(report.parent / "tables" / "auc.csv").merge(board, on=["init", "model", "n_per_class"])
    assert len(shown) == len(board) and np.allclose(shown["test_auc_x"], shown["test_auc_y"])
    per_class = pd.read_csv(report.parent / "tables" / "per_class.csv")
    assert set(per_class["run id"]) == set(runs.trials["run_id"])  # run ids where a researcher looks
    from xfer.run import study_leaderboard

    written = study_leaderboard(study["uri"], runs.trials, str(report))  # what the console and leaderboard.csv show
    reported = pd.read_csv(report.parent / "tables" / "leaderboard.csv", dtype={"n_per_class": str})
    assert written.equals(reported), "one leaderboard: the console, leaderboard.csv and the report agree"


def test_report_rebuilds_from_mlflow_alone(study, report, tmp_path):
    hidden = study["study_file"].rename(study["study_file"].with_suffix(".hidden"))  # no data, no study file
    try:
        assert report_main(["tiny", "--tracking-uri", study["uri"], "--out", str(tmp_path)]) == 0
    finally:
        hidden.rename(study["study_file"])
    rebuilt = tmp_path / "report"
    for name in FIGURES:
        assert (rebuilt / "figures" / f"{name}.png").stat().st_size > 5000, name
    first = pd.read_csv(report.parent / "tables" / "verdicts.csv")
    again = pd.read_csv(rebuilt / "tables" / "verdicts.csv")
    assert list(first["verdict"]) == list(again["verdict"])  # same bootstrap seed, same data → same verdicts
    np.testing.assert_allclose(first[["ci_low", "ci_high"]].astype(float), again[["ci_low", "ci_high"]].astype(float),
                               atol=1e-9)  # bootstrap seed is the same by default (0)


def colourful_pixels(png: Path) -> int:
    hsv = np.asarray(Image.open(png).convert("RGB").convert("HSV")).astype(int)
    return int(((hsv[..., 1] > 120) & (hsv[..., 2] > 60)).sum())


def screenshot(html: Path, png: Path, profile: Path) -> Path:
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", "--window-size=1280,7000", f"--screenshot={png}",
                    html.as_uri()], check=True, capture_output=True, timeout=120)
    return png


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian chromium: apt-get install -y chromium")
def test_report_renders_offline_in_headless_chromium(report, tmp_path):
    shot = screenshot(report, tmp_path / "report.png", tmp_path / "profile")
    assert shot.stat().st_size > 50_000
    broken = tmp_path / "broken" / "report.html"  # the same page without its figures, as a baseline
    broken.parent.mkdir()
    shutil.copy(report, broken)
    without = screenshot(broken, tmp_path / "broken.png", tmp_path / "profile")
    # the plots and Grad-CAM drew (the baseline keeps the page's own colour: its red warning boxes)
    assert colourful_pixels(shot) > 10 * max(colourful_pixels(without), 1000)


def test_explain_cli_and_gradcam_of_a_trained_trial(study, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(study["uri"])
    run = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                             "tags.init = 'xray_pretrained' and tags.n_per_class = 'all'")[0]
    image = sorted((DATA / "covid-actualmed" / "images").glob("*.png"))[0]
    assert explain_main([run.info.run_id, str(image), "--out", str(tmp_path), "--tracking-uri", study["uri"]]) == 0
    png = tmp_path / f"{image.stem}_explain.png"
    assert png.stat().st_size > 5000 and str(png) in capsys.readouterr().out
    model, meta = load_trial(run.info.run_id, study["uri"])
    x = model_input(read_image_resized(str(image), 32, 1)[None], meta)[0]
    layer = last_conv_block(model, "cbr_tiny", x)
    maps = [grad_cam(model, x, k, layer) for k in range(2)]
    assert all(m.shape == (32, 32) for m in maps)
    assert not np.allclose(maps[0], maps[1])
    assert explain_main([run.info.run_id, str(image), "--out", str(tmp_path), "--tracking-uri", study["uri"],
                         "--class", "flu"]) == 2


def test_shortcut_probe_warns_when_the_source_dataset_is_predictable(study):
    kermany_normals = {**KERMANY, "label_map": {"NORMAL": "normal"}}  # pediatric normals only: source ≈ label
    raw = {"name": "mixed", "data": {"datasets": [ACTUALMED, kermany_normals], "classes": ["normal", "covid"],
                                     "image_size": 32, "cache_dir": str(study["tmp"] / "cache")},
           "trials": {"init": [{"strategy": "random"}], "models": ["cbr_tiny"]}}
    data = prepare_data(absolutize(parse_study(raw, base_dir=ROOT).data, ROOT), ROOT)
    result = shortcut_probe(data)
    assert result.applicable and result.sources == ("actualmed", "kermany")
    assert result.counts["kermany"]["covid"] == 0
    assert result.source_auc > 0.9 and result.warning
    single = shortcut_probe(prepare_data(study["config"].data, ROOT))
    assert not single.applicable and "one source" in single.reason
