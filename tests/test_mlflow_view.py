"""`xfer ui`'s comparison view: a study's trials grouped by init, val_auc overlaid, stored as an MLflow shared view."""
import json

from xfer import record, track
from xfer.mlflow_view import SHARED_VIEW_TAG, VIEW_KEY, compare_view_url, write_compare_view


def test_the_view_groups_trial_runs_by_init_and_charts_val_auc_first(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = track.ensure_experiment(uri, "mine")
    for init in ("random", "imagenet", "random"):
        track.client(uri).create_run(experiment, tags={record.KIND_TAG: record.TRIAL, "init": init})
    tuning = {record.KIND_TAG: record.TRIAL, "init": "meanvar", "xfer.phase": "tuning"}
    track.client(uri).create_run(experiment, tags=tuning)  # a tuning trial: never one of the compared runs
    key = write_compare_view(uri, experiment)
    state = json.loads(track.client(uri).get_experiment(experiment).tags[SHARED_VIEW_TAG + key])
    shown = track.client(uri).search_runs([experiment], state["searchFilter"])  # the study run's single values and
    assert sorted(r.data.tags["init"] for r in shown) == ["imagenet", "random", "random"]  # tuning trials stay out
    assert state["groupBy"]["groupByKeys"] == [{"mode": "tag", "groupByData": "init"}]
    assert set(state["groupsExpanded"]) == {"tag.init.imagenet", "tag.init.random"}
    assert state["compareRunCharts"][0]["metricKey"] == "val_auc" and state["compareRunCharts"][0]["type"] == "LINE"
    url = compare_view_url("http://127.0.0.1:5000", experiment, key)
    assert url.startswith(f"http://127.0.0.1:5000/#/experiments/{experiment}/runs?")
    assert "workflowType=machine_learning" in url and f"viewStateShareKey={VIEW_KEY}" in url
