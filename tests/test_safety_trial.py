"""A trial restarted from its first epoch (no or a corrupt Tune checkpoint) logs each epoch once (issue 25)."""
import mlflow
import numpy as np
import pytest

from xfer import record, track
from xfer.config import InitConfig, TrainConfig
from xfer.pipeline import train_and_test
from xfer.train import FitData


class Crash(RuntimeError):
    pass


def test_a_trial_restarted_from_its_first_epoch_logs_each_epoch_once(tmp_path):
    """The calls of xfer.trial.run_trial: open the trial's run (from_start: no Tune state), train and test in it."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (24, 1, 16, 16), dtype=np.uint8)
    data = FitData(lambda size: images, np.arange(24) % 2, np.arange(16), np.arange(16, 20), ("a", "b"), 16)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id = track.ensure_experiment(uri, "restart")
    tags = {record.TRIAL_KEY_TAG: "random|cbr_tiny|n=all|seed=0", record.STUDY_HASH_TAG: "h"}

    def attempt(on_epoch=None) -> str:
        run_id = track.open_run(uri, experiment_id, "t", tags, tuple(tags), from_start=True)
        with track.finishing(uri, run_id):
            train_and_test(uri, run_id, "cbr_tiny", InitConfig("random"), data, np.arange(20, 24),
                           TrainConfig(epochs=3, batch_size=8), 1, 0, {}, on_epoch=on_epoch)
        return run_id

    def crash_at_epoch_2(epoch, metrics, state):
        if epoch == 2:
            raise Crash("the worker died")

    with pytest.raises(Crash):
        attempt(crash_at_epoch_2)
    run_id = attempt()  # Tune's retry without a checkpoint: from epoch 1 again
    client = mlflow.MlflowClient(uri)
    steps = [m.step for m in client.get_metric_history(run_id, "train_loss")]
    assert sorted(steps) == [1, 2, 3], steps  # before: 1, 2, 1, 2, 3 in one run
    runs = client.search_runs([experiment_id])
    assert [r.info.status for r in runs] == ["FINISHED"]  # the partial first attempt is in MLflow's trash
