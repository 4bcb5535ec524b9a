"""Never lose or fake a result (issue 15), one fast test per rule: safe names, one writer, verified caches, checks
before trials, honest outcomes, and the small CLI faults. The real interruption is in test_safety_study.py (slow)."""
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import ROOT, write_study
from xfer.config import ConfigError
from xfer.load import parse_study
from xfer.paths import CorruptCacheWarning, UnsafePathError, inside, make_owned_dir, remove_owned_dir

SMOKE = ROOT / "experiments" / "smoke.yaml"
FIXED_SPLIT = {"val_fraction": 0.2, "test_fraction": 0.3, "seed": 0}


def smoke_raw() -> dict:
    raw = yaml.safe_load(SMOKE.read_text())
    raw["trials"]["init"] = [{"strategy": "random"}]
    raw["data"]["split"] = dict(FIXED_SPLIT)
    return raw


def problems_of(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_study(raw, "s.yaml", ROOT / "experiments")
    return error.value.problems


# ---------------------------------------------------------------- 1. data loss


def canary_tree(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A working directory with experiments/, pretrain/, .xfer_cache/ and mlflow.db, each holding a canary."""
    work = tmp_path / "work"
    canaries = [work / "experiments" / "canary.txt", work / "pretrain" / "canary.txt",
                work / ".xfer_cache" / "canary.txt", work / "mlflow.db", tmp_path / "canary.txt"]
    for c in canaries:
        c.parent.mkdir(parents=True, exist_ok=True)
        c.write_text("alive")
    return work, canaries


@pytest.mark.parametrize("name", ["../..", "../../evil", "a/b", "", ".hidden", "x" * 101])
def test_study_named_outside_its_folder_is_refused_and_nothing_is_deleted(tmp_path, monkeypatch, capsys, name):
    from xfer.run import main

    work, canaries = canary_tree(tmp_path)
    study = write_study(SMOKE, work / "experiments", {"name": name, "trials.init": [{"strategy": "random"}]})
    raw = yaml.safe_load(study.read_text())
    del raw["output_dir"]  # outputs/<name>, as a user writes it
    study.write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(work)
    for _ in range(2):  # the second run (no --resume) once called rmtree on <storage>/../..
        assert main([str(study), "--no-report"]) == 2
        assert f"name: {name!r} is not a safe name" in capsys.readouterr().err
    assert all(c.read_text() == "alive" for c in canaries)
    assert not (work / "outputs").exists()


def test_stage_and_label_names_are_safe_identifiers():
    raw = smoke_raw()
    raw["trials"]["init"] = [{"strategy": "meanvar", "source": "stage:../../evil"},
                             {"strategy": "imagenet", "source": "stage:smoke_natural", "label": "../x"}]
    problems = problems_of(raw)
    assert any(p.startswith("trials.init[0].source: '../../evil' is not a safe name") for p in problems)
    assert any(p.startswith("trials.init[1].label: '../x' is not a safe name") for p in problems)


def test_stage_recipe_lookup_never_leaves_its_folders(tmp_path):
    from xfer.stages import StageError, find_recipe

    (tmp_path / "evil.yaml").write_text("stage: evil")
    with pytest.raises(StageError, match="not a safe name"):
        find_recipe("../evil", [tmp_path / "pretrain"])


def test_paths_stay_inside_their_root(tmp_path):
    assert inside(tmp_path, "study") == (tmp_path / "study").resolve()
    for escape in ("..", "../x", "a/../../x", "/etc"):
        with pytest.raises(UnsafePathError, match="outside"):
            inside(tmp_path / "root", escape)
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafePathError):
        inside(tmp_path / "root", "link/..")


def test_only_folders_xfer_marked_as_its_own_are_deleted(tmp_path):
    work, canaries = canary_tree(tmp_path)
    with pytest.raises(UnsafePathError, match="not created by xfer"):
        remove_owned_dir(work)
    assert all(c.read_text() == "alive" for c in canaries)
    owned = make_owned_dir(tmp_path / "ray" / "study")
    (owned / "trial").mkdir()
    remove_owned_dir(owned)
    assert not owned.exists() and all(c.exists() for c in canaries)


def test_mlflow_artifacts_of_an_odd_experiment_name_stay_beside_the_database(tmp_path):
    from xfer import track

    with pytest.raises(UnsafePathError):
        track.artifact_location(f"sqlite:///{tmp_path / 'mlflow.db'}", "../../evil")


# ---------------------------------------------------------------- 3. colliding grid entries


def test_duplicate_grid_entries_are_errors_naming_both():
    raw = smoke_raw()
    raw["trials"]["init"] = [{"strategy": "meanvar", "source": "stage:smoke_natural"},
                             {"strategy": "meanvar", "source": "stage:natural"}]
    raw["trials"]["seeds"] = [0, 1, 0]
    raw["trials"]["n_per_class"] = [4, "all", 4]
    raw["trials"]["models"] = ["cbr_tiny", "cbr_tiny"]
    raw["data"]["datasets"].append(copy.deepcopy(raw["data"]["datasets"][0]) | {"name": "again"})
    problems = "\n".join(problems_of(raw))
    assert "trials.init[1]: duplicates trials.init[0] (init name 'meanvar')" in problems and "label" in problems
    assert "trials.seeds[2]: duplicates trials.seeds[0] (seed 0)" in problems
    assert "trials.n_per_class[2]: duplicates trials.n_per_class[0]" in problems
    assert "trials.models[1]: duplicates trials.models[0]" in problems
    assert "data.datasets[1]: reads the same files as data.datasets[0]" in problems


def test_labels_tell_two_inits_of_one_strategy_apart():
    raw = smoke_raw()
    raw["trials"]["init"] = [{"strategy": "meanvar", "source": "stage:smoke_natural", "label": "meanvar_smoke"},
                             {"strategy": "meanvar", "source": "stage:natural"}]
    assert [i.name for i in parse_study(raw, "s.yaml", ROOT / "experiments").trials.init] == ["meanvar_smoke",
                                                                                              "meanvar"]


# ---------------------------------------------------------------- 4. one writer per study


def test_second_run_of_a_study_is_refused_while_the_first_holds_the_lock(tmp_path):
    from xfer.lock import StudyLockedError, study_lock

    with study_lock(tmp_path, "s") as lock:
        holder = json.loads(lock.read_text())
        assert holder["pid"] == os.getpid() and holder["host"]
        with pytest.raises(StudyLockedError, match=f"already running into {tmp_path} \\(pid {os.getpid()} on"):
            with study_lock(tmp_path, "s"):
                pass
    assert not lock.exists()


def test_a_lock_left_by_a_dead_process_is_taken_over(tmp_path):
    from xfer.lock import LOCK_FILE, study_lock

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    import socket

    (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": int(gone.stdout), "host": socket.gethostname()}))
    with study_lock(tmp_path, "s") as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()


# ---------------------------------------------------------------- 5. corrupt caches


def test_corrupt_image_cache_is_named_moved_aside_and_rebuilt(tmp_path):
    from xfer.data import Record, load_image_array

    records = []
    for i in range(3):
        Image.new("L", (20, 20), 40 * i).save(tmp_path / f"{i}.png")
        records.append(Record(str(tmp_path / f"{i}.png"), i % 2, f"p{i}", "tmp"))
    first, _ = load_image_array(records, 16, 1, tmp_path / "cache")
    first = np.array(first)
    [npy] = (tmp_path / "cache").glob("*.npy")
    npy.write_bytes(npy.read_bytes()[:200])  # truncated
    with pytest.warns(CorruptCacheWarning, match=str(npy)):
        again, kept = load_image_array(records, 16, 1, tmp_path / "cache")
    np.testing.assert_array_equal(again, first)
    assert kept == [0, 1, 2] and list((tmp_path / "cache").glob("*.npy.corrupt-*"))


def test_corrupt_stage_checkpoint_is_named_moved_aside_and_retrained(tmp_path):
    from test_stages import write_cached_stage, write_recipe
    from xfer.stages import cached_checkpoint, plan_stage, stage_dir

    write_recipe(tmp_path, "base")
    job = plan_stage("base", None, [tmp_path])
    write_cached_stage(job, tmp_path / "cache", 0.9)
    assert cached_checkpoint(job, tmp_path / "cache") is not None
    checkpoint = stage_dir(job, tmp_path / "cache") / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    with pytest.warns(CorruptCacheWarning, match="checkpoint.pt: sha256"):
        assert cached_checkpoint(job, tmp_path / "cache") is None  # None: ensure_stages trains it again
    assert not checkpoint.parent.exists() and list(checkpoint.parent.parent.glob("*.corrupt-*"))


def test_corrupt_tune_trial_state_restarts_the_trial_with_a_warning_naming_it(tmp_path):
    from ray import tune

    from xfer.tune import STATE_FILE, load_trial_state

    (tmp_path / STATE_FILE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(CorruptCacheWarning, match=f"{STATE_FILE} is corrupt"):
        assert load_trial_state(tune.Checkpoint.from_directory(str(tmp_path))) is None


# ---------------------------------------------------------------- 6. checks before trials


def test_bad_values_and_type_errors_are_reported_all_at_once():
    raw = smoke_raw()
    raw["train"].update(lr=-1, epochs=0, batch_size="eight")
    raw["trials"]["seeds"] = []
    raw["trials"]["init"] = [{"strategy": "imagenett"}]
    raw["data"]["image_size"] = "big"
    problems = "\n".join(problems_of(raw))
    for expected in ("train.lr: -1.0 is out of range", "train.epochs: 0 is out of range",
                     "train.batch_size: expected an integer", "trials.seeds: empty",
                     "trials.init[0]: unknown strategy 'imagenett'", "data.image_size: expected an integer"):
        assert expected in problems


def test_data_problems_are_found_before_any_trial():
    from xfer.preflight import study_preflight

    raw = smoke_raw()
    raw["trials"]["n_per_class"] = [4, 500]
    study = parse_study(raw, "s.yaml", ROOT / "experiments")
    [problem] = study_preflight(study, ROOT / "experiments")
    assert problem.startswith("trials.n_per_class[1]: 500 is more than the training images of class(es)")

    raw = smoke_raw()
    raw["data"]["datasets"][0]["views"] = ["LATERAL"]  # no image has this view: every class is empty
    [problem] = study_preflight(parse_study(raw, "s.yaml", ROOT / "experiments"), ROOT / "experiments")
    assert problem.startswith("data.classes: ['normal', 'covid'] have no images")

    raw = smoke_raw()
    raw["data"]["datasets"][0]["patient_column"] = "patient"
    [problem] = study_preflight(parse_study(raw, "s.yaml", ROOT / "experiments"), ROOT / "experiments")
    assert problem.startswith("data.datasets[0] (actualmed):") and "patient" in problem


def test_a_study_that_fails_its_checks_writes_a_summary_and_starts_nothing(tmp_path, capsys):
    from xfer.run import main

    study = write_study(SMOKE, tmp_path, {"name": "checks", "trials.init": [{"strategy": "random"}],
                                          "trials.n_per_class": [500], "data.split": FIXED_SPLIT})
    assert main([str(study)]) == 2
    assert "500 is more than the training images" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["status"] == "never started" and "500" in summary["problems"][0]


# ---------------------------------------------------------------- 2. outcomes: runs terminated, counts honest


def test_trials_in_flight_end_killed_and_the_counts_say_what_never_started(tmp_path):
    from xfer import record, track
    from xfer.outcomes import trial_outcomes

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = track.ensure_experiment(uri, "outcomes")
    parent = track.study_run_id(uri, experiment_id, "outcomes", reuse=False)
    tags = {record.KIND_TAG: record.TRIAL, track.PARENT_TAG: parent}
    client = track.client(uri)
    done, flight = (client.create_run(experiment_id, tags=tags).info.run_id for _ in range(2))
    client.set_terminated(done, "FINISHED")
    counts = trial_outcomes(uri, experiment_id, parent, None, total=8)
    assert counts == {"finished": 1, "failed": 0, "killed": 1, "never_started": 6}
    assert client.get_run(flight).info.status == "KILLED"


# ---------------------------------------------------------------- 7. smaller ones


def trial_checkpoint(path: Path) -> Path:
    from test_predict import write_trial_checkpoint

    return write_trial_checkpoint(path)


def test_gradcam_outputs_of_images_with_one_stem_do_not_overwrite_each_other(tmp_path):
    from xfer.explain import output_names

    names = output_names(["a/img.png", "a/img.dcm", "b/img.png", "c/other.png"])
    assert len(set(names)) == 4 and names[3] == "other_explain.png"
    assert names[:3] == ["a_img.png_explain.png", "a_img.dcm_explain.png", "b_img.png_explain.png"]


def test_explain_goes_on_past_an_unreadable_image(tmp_path, capsys):
    from xfer.explain import main

    good = sorted((ROOT.parent / "shared" / "data" / "covid-actualmed" / "images").iterdir())[0]
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    assert main([str(trial_checkpoint(tmp_path / "best.pt")), str(bad), str(good), "--out", str(tmp_path / "x")]) == 0
    assert f"error: {bad}" in capsys.readouterr().err
    assert [p.name for p in (tmp_path / "x").iterdir()] == [f"{good.stem}_explain.png"]


@pytest.mark.parametrize("cli", ["xfer.predict", "xfer.explain"])
def test_wrong_run_id_or_a_non_checkpoint_file_is_one_line(tmp_path, capsys, cli):
    import importlib

    main = importlib.import_module(cli).main
    image = sorted((ROOT.parent / "shared" / "data" / "covid-actualmed" / "images").iterdir())[0]
    extra = ["--out", str(tmp_path / "x")] if cli == "xfer.explain" else []
    uri = ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    for ref in (str(image), "0123456789abcdef"):
        assert main([ref, str(image), *extra, *uri]) == 2
        err = capsys.readouterr().err
        assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1
        assert "Traceback" not in err and ref in err


def test_read_only_store_says_readonly_database(tmp_path):
    from xfer import track

    track.ensure_experiment(f"sqlite:///{tmp_path / 'mlflow.db'}", "exists")
    read_only = f"sqlite:///file:{tmp_path / 'mlflow.db'}?mode=ro&uri=true"
    with pytest.raises(track.TrackingStoreError, match="readonly database"):
        track.ensure_experiment(read_only, "new")


def test_a_resumed_trial_logs_each_epoch_once(tmp_path):
    from xfer import track
    from xfer.config import InitConfig, TrainConfig
    from xfer.pipeline import train_and_test
    from xfer.train import FitData

    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (24, 1, 32, 32), dtype=np.uint8)
    labels = np.arange(24) % 2
    data = FitData(lambda size: images, labels, np.arange(16), np.arange(16, 20), ("a", "b"), 32)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = track.client(uri).create_run(track.ensure_experiment(uri, "resume")).info.run_id
    states = {}
    cfg = TrainConfig(epochs=3, batch_size=8)
    train_and_test(uri, run_id, "cbr_tiny", InitConfig("random"), data, np.arange(20, 24), cfg, 1, 0, {},
                   on_epoch=lambda epoch, metrics, state: states.setdefault(epoch, state()))
    # Tune restores the state of epoch 1 after the trial got to epoch 3
    train_and_test(uri, run_id, "cbr_tiny", InitConfig("random"), data, np.arange(20, 24), cfg, 1, 0, {},
                   resume=states[1])
    steps = [m.step for m in mlflow.MlflowClient(uri).get_metric_history(run_id, "train_loss")]
    assert sorted(steps) == [1, 2, 3]


def test_local_ray_listens_on_loopback_only_and_the_cluster_dashboard_too():
    from xfer.cluster import LOCAL_RAY

    assert LOCAL_RAY["_node_ip_address"] == "127.0.0.1" and LOCAL_RAY["include_dashboard"] is False
    cluster = (ROOT / "ray_cluster.yaml").read_text()
    assert "--dashboard-host=0.0.0.0" not in cluster and "--dashboard-host=127.0.0.1" in cluster
