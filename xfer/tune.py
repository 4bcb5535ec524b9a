"""The study as a Ray Tune grid (init × model × n × seed): resources, retries, checkpoints, resume."""
from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Optional

import ray
import torch
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from xfer.config import InitConfig, StudyConfig
from xfer.console import TrialProgress, quiet_trial_worker
from xfer.paths import CorruptCacheWarning, inside, keep_copy, make_owned_dir, remove_owned_dir
from xfer.sweep import apply_sweep
from xfer.trial import TrialSpec, run_trial

STATE_FILE = "trial_state.pt"
CORRUPT_FOLDER = "corrupt"  # in the study's output folder: copies of corrupt Tune trial states, for inspection


def _ignore_exit_in_finalizers() -> None:
    """In a trainable's worker: don't print the SystemExit that Ray's SIGTERM handler raises inside a finalizer.

    When Tune stops its reused trainable actors at the end of the run, Ray sends SIGTERM, and its handler raises
    SystemExit in whatever the main thread runs; when that is a weakref callback (WeakSet._remove at garbage
    collection) Python cannot propagate it and prints "Exception ignored in ... SystemExit: 1". The worker is being
    stopped either way; any other unraisable exception is still printed."""
    previous = sys.unraisablehook
    if getattr(previous, "xfer_ignores_exit", False):
        return

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, SystemExit):
            previous(unraisable)

    hook.xfer_ignores_exit = True
    sys.unraisablehook = hook


def _trainable(config: dict, study: StudyConfig, inits: dict, uri: str, experiment_id: str,
               parent_run_id: Optional[str], checkpoint_every: int) -> None:
    """Tune function trainable: one trial, reporting every epoch and checkpointing for resume."""
    _ignore_exit_in_finalizers()
    quiet_trial_worker()
    torch.set_num_threads(max(int(study.resources.cpu), 1))
    spec = trial_spec(config, inits)
    study = apply_sweep(study, spec.sweep)
    resume = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        resume = load_trial_state(checkpoint, study.output_path / CORRUPT_FOLDER)

    def on_epoch(epoch: int, metrics: dict, state) -> None:
        if checkpoint_every and epoch % checkpoint_every == 0:
            with tempfile.TemporaryDirectory() as d:
                torch.save(state(), Path(d) / STATE_FILE)
                tune.report(dict(metrics, epoch=epoch), checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report(dict(metrics, epoch=epoch))

    final = run_trial(study, spec, uri, experiment_id, parent_run_id, on_epoch, resume)
    tune.report({k: v for k, v in final.items() if isinstance(v, (int, float))}
                | {"trial_done": 1, "run_id": final["run_id"]})  # run_id: the study run records its trials


def load_trial_state(checkpoint: tune.Checkpoint, keep_in: Optional[Path] = None) -> Optional[dict]:
    """The trial's saved state; a corrupt one is reported by file name (a copy kept in `keep_in` for inspection)
    and the trial restarts from epoch 1."""
    with checkpoint.as_directory() as d:
        path = Path(d) / STATE_FILE
        try:
            return torch.load(path, weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many types for a truncated file
            kept = f"; kept a copy as {keep_copy(path, keep_in)}" if keep_in is not None and path.is_file() else ""
            warnings.warn(f"{path} is corrupt ({type(e).__name__}: {e}){kept}; this trial restarts from its first "
                          f"epoch", CorruptCacheWarning, stacklevel=2)
            return None


def param_space(study: StudyConfig) -> dict:
    t = study.trials
    return {"init": tune.grid_search([i.name for i in t.init]), "model": tune.grid_search(list(t.models)),
            "n_per_class": tune.grid_search(list(t.n_per_class)), "seed": tune.grid_search(list(t.seeds)),
            **{name: tune.grid_search(list(values)) for name, values in t.sweep.items()}, **fold_axes(study)}


def fold_axes(study: StudyConfig) -> dict:
    """Cross-validated studies (data.split.folds): fold and repeat are grid axes too."""
    split = study.data.split
    if not split.folds:
        return {}
    return {"fold": tune.grid_search(list(range(split.folds))),
            "repeat": tune.grid_search(list(range(split.fold_repeats)))}


def trial_spec(config: dict, inits: dict) -> TrialSpec:
    """The trial a Tune config stands for (swept `train.*` values in the config's `train.` keys)."""
    sweep = tuple((k, v) for k, v in sorted(config.items()) if k.startswith("train."))
    return TrialSpec(inits[config["init"], config["model"]], config["model"], config["n_per_class"], config["seed"],
                     sweep, config.get("fold"), config.get("repeat", 0))


def trial_name(trial) -> str:
    """A readable Tune trial name and folder: init-model-nN-sS[-lr0.01...], no characters paths dislike."""
    c = trial.config
    swept = "".join(f"-{k[len('train.'):]}{v}" for k, v in sorted(c.items()) if k.startswith("train."))
    folds = f"-f{c['fold']}r{c['repeat']}" if "fold" in c else ""
    name = f"{c['init']}-{c['model']}-n{c['n_per_class']}-s{c['seed']}{folds}{swept}"
    return name.replace("/", "_").replace(":", "_")


def trial_count(study: StudyConfig) -> int:
    t = study.trials
    count = len(t.init) * len(t.models) * len(t.n_per_class) * len(t.seeds)
    count *= (study.data.split.folds or 1) * study.data.split.fold_repeats
    for values in t.sweep.values():
        count *= len(values)
    return count


def _storage(study: StudyConfig) -> str:
    """Tune's storage: a local folder (resolved) or a remote URI such as s3://bucket/xfer, kept as is."""
    given = study.ray.storage_path
    if given and "://" in str(given):
        return str(given)
    return str(Path(given or study.output_path / "ray").resolve())


def run_grid(study: StudyConfig, inits: dict[tuple[str, str], InitConfig], uri: str, experiment_id: str,
             parent_run_id: Optional[str], resume: bool, checkpoint_every: int = 5) -> tune.ResultGrid:
    """Run every trial through `Tuner`; with `resume`, restore the interrupted Tune experiment."""
    storage = _storage(study)
    trainable = tune.with_resources(
        tune.with_parameters(_trainable, study=study, inits=inits, uri=uri, experiment_id=experiment_id,
                             parent_run_id=parent_run_id, checkpoint_every=checkpoint_every),
        {"cpu": study.resources.cpu, "gpu": study.resources.gpu})
    path = f"{storage.rstrip('/')}/{study.name}"
    progress = TrialProgress(trial_count(study), lambda config: trial_spec(config, inits).key)
    if resume and tune.Tuner.can_restore(path):
        print(f"[xfer] resuming Tune experiment {path}", flush=True)
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True)
    else:
        if "://" not in path:  # finished trials live in MLflow: start Tune afresh, in a folder marked as xfer's
            remove_owned_dir(inside(Path(storage), study.name))
            make_owned_dir(Path(path))
        tuner = tune.Tuner(
            trainable,
            param_space=param_space(study),
            tune_config=tune.TuneConfig(max_concurrent_trials=study.ray.max_concurrent, reuse_actors=True,
                                        trial_name_creator=trial_name, trial_dirname_creator=trial_name),
            run_config=tune.RunConfig(name=study.name, storage_path=storage, verbose=0,
                                      callbacks=[progress, JsonLoggerCallback(), CSVLoggerCallback()],
                                      failure_config=tune.FailureConfig(max_failures=study.ray.max_failures),
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    return tuner.fit()
