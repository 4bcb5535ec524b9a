"""A trial's best model as an MLflow model: `mlflow.pyfunc.load_model(uri).predict(paths)` classifies raw image files.

The model holds no weights of its own: it names its run, and loads that run's `checkpoint/best.pt` (the one stored
copy of a trial's weights) from the tracking store when loaded."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import mlflow
import mlflow.data
import numpy as np
import pandas as pd

from xfer.record import prob_column

MODEL_ARTIFACT = "model"  # the MLflow model's folder in a trial run: runs:/<run_id>/model
PATH_COLUMN = "path"
ERROR_COLUMN = "error"  # why an image could not be classified (empty when it was)
MODEL_TAG = "xfer.model"  # on a trial run with a logged model: the model's URI (models:/m-…)


def as_paths(model_input) -> list[str]:
    """Image paths from a DataFrame's `path` column (or its first column), a Series, a list or one string."""
    if isinstance(model_input, pd.DataFrame):
        column = PATH_COLUMN if PATH_COLUMN in model_input.columns else model_input.columns[0]
        return [str(p) for p in model_input[column]]
    if isinstance(model_input, (str, Path)):
        return [str(model_input)]
    return [str(p) for p in model_input]


class ImageClassifier(mlflow.pyfunc.PythonModel):
    """xfer's preprocessing (decode, grey, resize, normalise as trained) + the trained network, from file paths."""

    def load_context(self, context) -> None:
        from xfer.checkpoint import load_trial

        config = context.model_config or {}
        if "checkpoint" in (context.artifacts or {}):  # a model logged with its own copy of the weights
            self.model, self.meta = load_trial(context.artifacts["checkpoint"])
        else:  # the run's checkpoint: the one stored copy
            self.model, self.meta = load_trial(config["run_id"], config.get("tracking_uri"))

    # model_input is annotated: MLflow warns at class definition (through its own warning filter, so a filter here
    # cannot stop it) when it is not; a DataFrame hint asks it for no schema, and xfer logs a signature instead
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """One row per input, in order: `prob_<class>` columns (softmax, or sigmoid when multi-label),
        `prediction`, and `error` (empty; for an unreadable image the reason, with no probabilities)."""
        from xfer.predict import predict_files

        paths = [Path(p) for p in as_paths(model_input)]
        rows, errors = predict_files(self.model, self.meta, paths) if paths else ([], [])
        probs = {str(p): q for p, q in rows}
        reasons = {str(p): e for p, e in errors}
        classes = self.meta.classes
        table = np.array([probs.get(str(p), np.full(len(classes), np.nan)) for p in paths],
                         dtype=np.float64).reshape(len(paths), len(classes))
        frame = pd.DataFrame(table, columns=[prob_column(c) for c in classes])
        frame["prediction"] = [classes[int(np.argmax(q))] if str(p) in probs else None for p, q in zip(paths, table)]
        frame[ERROR_COLUMN] = [reasons.get(str(p), "") for p in paths]
        return frame


def log_split_inputs(uri: str, run_id: str, inputs: dict[str, pd.DataFrame]) -> None:
    """`inputs` (context → image listing: file, patient, label) as the run's MLflow dataset inputs."""
    mlflow.set_tracking_uri(uri)
    with warnings.catch_warnings(), mlflow.start_run(run_id=run_id):
        warnings.simplefilter("ignore", UserWarning)
        for context, frame in inputs.items():
            mlflow.log_input(mlflow.data.from_pandas(frame, name=context), context=context)


def log_trial_model(uri: str, run_id: str, example_images: list[str], classes: tuple[str, ...]) -> str:
    """Log a pyfunc model of the run (signature: paths → class probabilities) that loads the run's checkpoint
    artifact, so the weights are stored once; returns the model URI.

    The signature is given, not the input example: with an example, MLflow reloads the logged model and predicts on
    it through its scoring-server parser to validate it (~4 s in a fresh worker; pyfunc.log_model has no switch
    for that). The signature alone documents the paths → probabilities contract; `example_images` only shapes it."""
    from mlflow.models import infer_signature

    example = pd.DataFrame({PATH_COLUMN: example_images[:2]})
    output = pd.DataFrame({**{prob_column(c): [0.5] * len(example) for c in classes},
                           "prediction": [classes[0]] * len(example), ERROR_COLUMN: [""] * len(example)})
    mlflow.set_tracking_uri(uri)
    mlflow_logger = logging.getLogger("mlflow")
    level = mlflow_logger.level
    try:  # MLflow's advice (type hints, cloudpickle caution) is for hand-written models: one per trial floods the log
        mlflow_logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), mlflow.start_run(run_id=run_id):
            warnings.simplefilter("ignore", UserWarning)
            info = mlflow.pyfunc.log_model(name=MODEL_ARTIFACT, python_model=ImageClassifier(),
                                    model_config={"run_id": run_id, "tracking_uri": uri},
                                    signature=infer_signature(example, output),
                                    pip_requirements=["xfer", "torch", "torchvision", "pandas", "numpy", "pillow"])
    finally:
        mlflow_logger.setLevel(level)
    mlflow.MlflowClient(uri).set_tag(run_id, MODEL_TAG, info.model_uri)
    return info.model_uri


def best_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Per init, the finished trial of highest best validation AUC (ties: the first run)."""
    ranked = trials.dropna(subset=["best_val_auc"]).sort_values(["best_val_auc", "run_id"], ascending=[False, True])
    return ranked.drop_duplicates("init")


def log_best_models(uri: str, trials: pd.DataFrame, classes: tuple[str, ...]) -> list[str]:
    """tracking.log_models: best — a model for each init's best trial that has none yet (its run gets MODEL_TAG);
    returns the URIs logged now. Studies that set `all` or `none` (or predate the setting) are left alone."""
    setting = trials.get("param.tracking.log_models")
    if setting is None or not (setting == "best").any():
        return []
    client = mlflow.MlflowClient(uri)
    logged = []
    for run_id in best_trials(trials[setting == "best"])["run_id"]:
        if MODEL_TAG in client.get_run(run_id).data.tags:
            continue
        logged.append(log_trial_model(uri, run_id, ["image.png"], classes))
    return logged
