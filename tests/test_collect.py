"""Which trial runs make up a study: those its study run recorded, else the newest finished run per trial key."""
import time
from types import SimpleNamespace

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from xfer import record, track
from xfer.analysis.collect import load_study_runs
from xfer.outcomes import study_trial_run_ids


def fake_store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    return uri, client, client.create_experiment("edited", artifact_location=str(tmp_path / "artifacts"))


def trial_run(client, experiment_id, key, test_auc, status="FINISHED", parent=None) -> str:
    init, seed = key.split("|")
    tags = {record.KIND_TAG: record.TRIAL, record.TRIAL_KEY_TAG: key, "init": init, "strategy": init,
            "model": "cbr_tiny", "n_per_class": "all", "seed": seed, **({track.PARENT_TAG: parent} if parent else {})}
    run_id = client.create_run(experiment_id, run_name=key, tags=tags).info.run_id
    client.log_batch(run_id, metrics=[Metric("test_auc", test_auc, 0, 0), Metric("best_val_auc", 0.9, 0, 0)])
    client.set_terminated(run_id, status)
    time.sleep(0.01)  # distinct start times: "newest" is by start time
    return run_id


def test_report_uses_exactly_the_trial_runs_the_study_run_recorded(tmp_path):
    uri, client, experiment_id = fake_store(tmp_path)
    stale = trial_run(client, experiment_id, "random|0", 0.5)
    reused = trial_run(client, experiment_id, "imagenet|0", 0.8)
    fresh = trial_run(client, experiment_id, "random|0", 0.7)
    study_run = client.create_run(experiment_id, tags={record.KIND_TAG: track.STUDY}).info.run_id
    client.log_dict(study_run, {"run_ids": [reused, fresh]}, track.STUDY_TRIALS_ARTIFACT)
    study = load_study_runs(uri, "edited", study_run)
    assert set(study.trials["run_id"]) == {reused, fresh} and stale not in set(study.trials["run_id"])
    assert "recorded" in study.selection
    assert set(load_study_runs(uri, "edited").trials["run_id"]) == {reused, fresh}  # newest study run by default


def test_without_a_record_the_newest_finished_run_per_trial_key_is_used_with_a_note(tmp_path):
    uri, client, experiment_id = fake_store(tmp_path)
    trial_run(client, experiment_id, "random|0", 0.5)
    fresh = trial_run(client, experiment_id, "random|0", 0.7)
    other = trial_run(client, experiment_id, "imagenet|0", 0.8)
    trial_run(client, experiment_id, "imagenet|0", 0.1, status="FAILED")  # a failed retry of a finished key
    study = load_study_runs(uri, "edited")
    assert set(study.trials["run_id"]) == {fresh, other} and study.failed.empty
    assert "no trials.json" in study.selection and "1 older runs" in study.selection


def test_the_study_records_reused_finished_trials_and_its_own_unfinished_ones(tmp_path):
    uri, client, experiment_id = fake_store(tmp_path)
    parent = client.create_run(experiment_id, tags={record.KIND_TAG: track.STUDY}).info.run_id
    reused = trial_run(client, experiment_id, "random|0", 0.7, parent="an earlier study run")
    broken = trial_run(client, experiment_id, "imagenet|0", 0.1, status="FAILED", parent=parent)
    results = [SimpleNamespace(error=None, metrics={"run_id": reused, "trial_done": 1}),
               SimpleNamespace(error=RuntimeError("boom"), metrics={})]
    assert study_trial_run_ids(uri, experiment_id, parent, results) == [reused, broken]


def test_trial_tags_written_and_read_back_are_the_same_record():
    from xfer.record import RECORD_VERSION, TrialTags

    tags = TrialTags(study="s", key="imagenet|cbr_tiny|n=5|seed=1|fold=2|repeat=0", init="imagenet",
                     strategy="imagenet", model="cbr_tiny", n_per_class="5", seed=1, dataset="d", fold=2, repeat=0,
                     sweep=(("train.lr", "0.01"),))
    logged = tags.to_mlflow()
    assert logged["xfer.record_version"] == str(RECORD_VERSION) and logged["train.lr"] == "0.01"
    assert TrialTags.from_mlflow("r", logged) == tags


def test_runs_logged_before_the_record_was_versioned_read_as_version_1_and_a_newer_version_is_refused(tmp_path):
    import pytest

    from xfer.record import RecordVersionError, TrialTags

    uri, client, experiment_id = fake_store(tmp_path)
    old = trial_run(client, experiment_id, "random|0", 0.7)  # the tag set today's main writes, no version tag
    assert load_study_runs(uri, "edited").trials.set_index("run_id").loc[old, "test_auc"] == 0.7
    assert TrialTags.from_mlflow(old, client.get_run(old).data.tags).version == 1
    with pytest.raises(RecordVersionError, match="record version 99"):
        TrialTags.from_mlflow("r", {**client.get_run(old).data.tags, "xfer.record_version": "99"})


def test_tuning_trials_are_never_analysed(tmp_path):
    uri, client, experiment_id = fake_store(tmp_path)
    kept = trial_run(client, experiment_id, "random|0", 0.7)
    tuning = trial_run(client, experiment_id, "random|1", 0.9)
    client.set_tag(tuning, "xfer.phase", "tuning")
    assert set(load_study_runs(uri, "edited").trials["run_id"]) == {kept}


def test_trial_seconds_end_at_the_trial_s_last_test_metric_not_at_a_later_model_log(tmp_path):
    import mlflow

    from xfer.analysis.collect import trial_seconds

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("durations")
    run = client.create_run(experiment, start_time=1_000_000)
    client.log_metric(run.info.run_id, "test_auc", 0.8, timestamp=1_030_000)
    client.set_terminated(run.info.run_id, end_time=1_900_000)  # the report logged a model onto it much later
    tuning = client.create_run(experiment, start_time=2_000_000)
    client.log_metric(tuning.info.run_id, "best_val_auc", 0.7, timestamp=2_012_000)
    bare = client.create_run(experiment, start_time=3_000_000)
    client.set_terminated(bare.info.run_id, end_time=3_005_000)
    assert trial_seconds(client, [run.info.run_id, tuning.info.run_id, bare.info.run_id]) == {
        run.info.run_id: 30.0, tuning.info.run_id: 12.0, bare.info.run_id: 5.0}
