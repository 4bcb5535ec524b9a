"""The MLflow UI view that compares strategies: a study's trials as runs grouped by init, their `val_auc` curves
overlaid (mean per init), stored as an MLflow shared view (experiment tag) that `xfer ui` opens."""
from __future__ import annotations

import json
from typing import Optional
from urllib.parse import quote, urlencode

from xfer import record, track

VIEW_KEY = "xfer-compare-inits"  # MLflow 3 reads a view from the experiment tag mlflow.sharedViewState.<key>
SHARED_VIEW_TAG = "mlflow.sharedViewState."
FIRST_METRICS = ("val_auc", "train_loss", "val_loss", "test_auc")  # the charts a trial comparison needs first


def line_chart(metric: str, uuid: str) -> dict:
    """One line chart of `metric` against epoch (MLflow's step), as MLflow's chart cards are stored."""
    return {"type": "LINE", "uuid": uuid, "metricSectionId": "xfer", "metricKey": metric,
            "selectedMetricKeys": [metric], "displayName": metric, "xAxisKey": "step", "scaleType": "linear",
            "lineSmoothness": 0, "isGenerated": False, "deleted": False, "runsCountToCompare": 100,
            "useGlobalLineSmoothing": False, "useGlobalXaxisKey": False}


def compare_view_state(groups: list[str], group_tag: str = "init") -> dict:
    """MLflow's experiment-page state (the fields MLflow 3.17's share button stores): trial runs only, grouped by `group_tag` (mean per group, each of `groups`
    one collapsed row), the val_auc chart first."""
    return {"searchFilter": record.EVALUATION_TRIALS,  # tuning trials chose recipes: not compared here
            "orderByKey": "attributes.start_time", "orderByAsc": False,
            "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": group_tag}]},
            "groupsExpanded": {f"tag.{group_tag}.{g}": False for g in groups},
            "useGroupedValuesInCharts": True, "hideEmptyCharts": True, "chartsSearchFilter": "val_auc",
            "compareRunCharts": [line_chart(m, f"xfer-{m}") for m in FIRST_METRICS],
            "compareRunSections": [{"uuid": "xfer", "name": "xfer: compare inits", "display": True,
                                    "isReordered": False, "deleted": False, "isGenerated": False}],
            "runsHiddenMode": "SHOW_ALL",  # MLflow charts the first 10 runs only by default: a group would go missing
            "runListHidden": False, "viewMaximized": False}


def write_compare_view(uri: str, experiment_id: str) -> str:
    """Store the comparison view on the experiment (its inits as they are now); returns its share key."""
    client = track.client(uri)
    runs = client.search_runs([experiment_id], record.EVALUATION_TRIALS, max_results=5000)
    inits = sorted({r.data.tags["init"] for r in runs if "init" in r.data.tags})
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + VIEW_KEY, json.dumps(compare_view_state(inits)))
    return VIEW_KEY


def compare_view_url(base: str, experiment_id: str, key: Optional[str] = VIEW_KEY) -> str:
    """The UI address of the experiment's runs in chart mode, in the model-training (not GenAI) layout."""
    query = {"workflowType": "machine_learning", "compareRunsMode": "CHART"}
    if key:
        query["viewStateShareKey"] = key
    return f"{base.rstrip('/')}/#/experiments/{quote(experiment_id)}/runs?{urlencode(query)}"
