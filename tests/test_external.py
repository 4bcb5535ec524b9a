"""External validation: every trial's best checkpoint scored on data.external sets (a one-label COVID set gives
sensitivity, a two-class set AUC), logged as external/<name>/… metrics and predictions; duplicates of the target
pool leave the external set with a warning."""
import warnings
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from PIL import Image

from xfer import track
from xfer.config import InitConfig
from xfer.data.dedup import OverlapWarning
from xfer.data.prepare import prepare_data, prepare_external
from xfer.external import external_metrics
from xfer.load import parse_study
from xfer.plan import TrialSpec
from xfer.trial import run_trial

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
HANNOVER = {"name": "hannover", "layout": "metadata_csv", "root": str(DATA / "covid-hannover"), "images_dir": "png",
            "metadata": "data.csv", "filename_column": "image_id", "patient_column": "patient_id", "label": "covid",
            "max_per_class": 20}
IEEE_MARCH = {"name": "ieee_march", "layout": "metadata_csv", "root": str(DATA / "covid-ieee8023-2020-03"),
              "images_dir": "images", "patient_column": "Patientid", "view_column": "view", "views": ["PA", "AP"],
              "label_map": {"COVID-19": "covid", "No Finding": "normal"}, "max_per_class": 20}


def tiny_study(tmp_path: Path, external: list[dict]):
    raw = yaml.safe_load((ROOT / "experiments" / "smoke.yaml").read_text())
    raw["data"].update(cache_dir=str(tmp_path / "cache"), external=external,
                       split={"val_fraction": 0.2, "test_fraction": 0.3, "seed": 0})
    raw["train"]["epochs"] = 1
    return parse_study(raw, base_dir=ROOT / "experiments")


def test_a_one_label_set_measures_only_what_it_can():
    labels, probs = np.array([1, 1, 1, 1]), np.array([[0.2, 0.8], [0.6, 0.4], [0.1, 0.9], [0.3, 0.7]])
    metrics = external_metrics(labels, probs, ("normal", "covid"), 1, "external/h/")
    assert metrics["external/h/sensitivity"] == 0.75 and metrics["external/h/images"] == 4
    assert "external/h/specificity" not in metrics and np.isnan(metrics["external/h/auc"])


def test_a_trial_with_external_sets_logs_external_metrics_and_predictions(tmp_path):
    study = tiny_study(tmp_path, [HANNOVER, IEEE_MARCH])
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = track.ensure_experiment(uri, "external")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        final = run_trial(study, TrialSpec(InitConfig("random"), "cbr_tiny", "all", 0), uri, experiment_id,
                          base_dir=ROOT)
    client = mlflow.MlflowClient(uri)
    metrics = client.get_run(final["run_id"]).data.metrics
    assert 0 <= metrics["external/hannover/sensitivity"] <= 1 and "external/hannover/specificity" not in metrics
    assert metrics["external/hannover/images"] == 20
    assert 0 <= metrics["external/ieee_march/auc"] <= 1 and "external/ieee_march/specificity" in metrics
    logged = {a.path for a in client.list_artifacts(final["run_id"], "eval/external")}
    assert logged == {"eval/external/hannover_predictions.csv", "eval/external/ieee_march_predictions.csv"}


def test_external_images_also_in_the_target_pool_are_dropped_with_a_warning(tmp_path):
    target = prepare_data(tiny_study(tmp_path, []).data, ROOT)
    folder = tmp_path / "mixed" / "images"
    folder.mkdir(parents=True)
    rows = ["filename,label,patient_id"]
    for k, record in enumerate(target.records[:3]):  # re-uploads: resized, re-encoded as PNG
        with Image.open(record.path) as image:
            image.convert("L").resize((200, 200)).save(folder / f"copy{k}.png")
        rows.append(f"copy{k}.png,covid,c{k}")
    for k, png in enumerate(sorted((DATA / "covid-hannover" / "png").glob("*.png"))[:4]):
        (folder / png.name).write_bytes(png.read_bytes())
        rows.append(f"{png.name},covid,h{k}")
    (tmp_path / "mixed" / "labels.csv").write_text("\n".join(rows) + "\n")
    mixed = {"name": "mixed", "layout": "label_csv", "root": str(tmp_path / "mixed")}
    study = tiny_study(tmp_path, [mixed])
    with pytest.warns(OverlapWarning, match="removed 3 of 7"):
        (external,) = prepare_external(study.data, target, ROOT)
    assert len(external.records) == 4 and not any("copy" in r.path for r in external.records)
    listing = (tmp_path / "cache" / "dedup" / "overlap_external_mixed_vs_actualmed.csv").read_text()
    assert listing.count("copy") == 3
