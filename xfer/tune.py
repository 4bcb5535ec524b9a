"""The Tune layer: runs a plan's phase (its units as Tune trials, a grid or a search with a scheduler) with
resources, retries, checkpoints and a resume that never mixes settings."""
from __future__ import annotations

import dataclasses
import json
import math
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

from xfer.config import InitConfig, StudyConfig
from xfer.console import quiet_trial_worker, say
from xfer.data.records import SkippedImagesWarning
from xfer.paths import CorruptCacheWarning, inside, keep_copy, make_owned_dir, remove_owned_dir
from xfer.progress import TrialProgress
from xfer.plan import Phase, TrialSpec, Unit, with_resolved_init
from xfer.sweep import apply_sweep
from xfer.trial import run_trial

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


def _trainable(config: dict, study: StudyConfig, phase: Phase, inits: dict, uri: str, experiment_id: str,
               parent_run_id: Optional[str], checkpoint_every: int) -> None:
    """Tune function trainable: one unit of the plan (its trials one after another), reporting every epoch with the
    trial's MLflow run id and checkpointing for resume; the last report names every run the unit logged."""
    _ignore_exit_in_finalizers()
    quiet_trial_worker(SkippedImagesWarning)
    torch.set_num_threads(max(int(study.resources.cpu), 1))
    checkpoint = tune.get_checkpoint()
    resume = load_trial_state(checkpoint, study.output_path / CORRUPT_FOLDER) if checkpoint is not None else None

    best: list[float] = []  # best validation AUC so far of each trial the unit has started

    def on_epoch(epoch: int, metrics: dict, state) -> None:
        if math.isfinite(metrics.get("val_auc", math.nan)):
            best[-1] = max(best[-1], metrics["val_auc"])
        # what a search and its scheduler compare: the mean over the unit's trials of their best validation AUC
        metrics = dict(metrics, epoch=epoch, tuning_score=sum(best) / len(best))
        if checkpoint_every and epoch % checkpoint_every == 0:
            with tempfile.TemporaryDirectory() as d:
                torch.save(state(), Path(d) / STATE_FILE)
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))
        else:
            tune.report(metrics)

    finals = []
    for spec in unit_specs(unit_of(phase, config), config, inits):
        best.append(0.5)
        finals.append(run_trial(apply_sweep(study, spec.train_values), spec, uri, experiment_id, parent_run_id,
                                on_epoch, resume))
        resume = None  # a unit's state is its running trial's: the next trial starts at epoch 1
    tune.report({k: v for k, v in finals[-1].items() if isinstance(v, (int, float))}
                | {"trial_done": 1, "run_id": finals[-1]["run_id"], "run_ids": ",".join(f["run_id"] for f in finals),
                   "tuning_score": sum(f["best_val_auc"] for f in finals) / len(finals)})


def unit_label(unit: Unit, config: dict) -> str:
    """How the console names a Tune trial: its unit's first trial key, the other seeds, sampled values (3 digits)."""
    spec = unit.specs[0]
    more = f" (+ seeds {', '.join(str(s.seed) for s in unit.specs[1:])})" if len(unit.specs) > 1 else ""
    sampled = "".join(f" {k[len('train.'):]}={v:.3g}" if isinstance(v, float) else f" {k[len('train.'):]}={v}"
                      for k, v in sorted(config.items()) if k.startswith("train."))
    return f"{spec.key}{more}{sampled}"


def unit_of(phase: Phase, config: dict) -> Unit:
    """The unit a Tune trial runs: named in its config (a grid over units), or a search phase's only unit."""
    return phase.unit(config["unit"]) if "unit" in config else phase.units[0]


def unit_specs(unit: Unit, config: dict, inits: dict) -> list[TrialSpec]:
    """The unit's trials with their inits' sources resolved and a search's sampled `train.*` values (tuning: they
    name the trial, so they go in its key)."""
    sampled = tuple(sorted((k, v) for k, v in config.items() if k.startswith("train.")))
    return [dataclasses.replace(with_resolved_init(spec, inits), sweep=(*spec.sweep, *sampled)) for spec in unit.specs]


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


def _storage(study: StudyConfig) -> str:
    """Tune's storage: a local folder (resolved) or a remote URI such as s3://bucket/xfer, kept as is."""
    given = study.ray.storage_path
    if given and "://" in str(given):
        return str(given)
    return str(Path(given or study.output_path / "ray").resolve())


@dataclass(frozen=True)
class Search:
    """How Tune explores a phase instead of running each unit once: sampled `train.*` values for its unit, a search
    algorithm and a scheduler that may stop a trial early (its run then ends FINISHED with `xfer.outcome:
    stopped_early`: neither failed, killed nor re-run)."""

    space: dict  # "train.NAME" → a Tune domain (tune.loguniform(...), tune.choice([...]))
    key: str  # what the search is, as text (the study's tuning block): a resume restores only the same search
    metric: str
    mode: str
    samples: int  # Tune's num_samples
    trials: int  # the Tune trials it makes (a grid: every combination of its lists, once)
    search_alg: Any = None  # a ray.tune.search.Searcher; None: Tune's random/grid variant generator
    scheduler: Any = None  # a ray.tune.schedulers.TrialScheduler (ASHA); None: every trial runs to its end


def phase_dir(study: StudyConfig, name: str) -> str:
    """The Tune experiment folder (or remote URI) of one phase run of the study."""
    return f"{_storage(study).rstrip('/')}/{name}"


def run_phase(study: StudyConfig, phase: Phase, inits: dict[tuple[str, str], InitConfig], uri: str,
              experiment_id: str, parent_run_id: Optional[str], resume: bool, *, name: Optional[str] = None,
              search: Optional[Search] = None, checkpoint_every: int = 5) -> tune.ResultGrid:
    """Run a phase's units through `Tuner` (each unit once, or `search`'s samples of its one unit); with `resume`, restore
    the interrupted Tune experiment only when the phase is the one it was running (else start it afresh: a trial
    must never be finished with settings it was not started with)."""
    name = name or study.name
    storage, path = _storage(study), phase_dir(study, name)
    trainable = tune.with_resources(
        tune.with_parameters(_trainable, study=study, phase=phase, inits=inits, uri=uri, experiment_id=experiment_id,
                             parent_run_id=parent_run_id, checkpoint_every=checkpoint_every),
        {"cpu": study.resources.cpu, "gpu": study.resources.gpu})
    samples = search.samples if search else 1
    progress = TrialProgress(search.trials if search else len(phase.units), lambda config: unit_label(unit_of(phase, config), config),
                             study.train.epochs)
    fingerprint = phase.fingerprint(study) + (search.key if search else "")
    if resume and tune.Tuner.can_restore(path) and _same_phase(study, name, fingerprint):
        print(f"[xfer] resuming Tune experiment {path}", flush=True)
        tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True, resume_errored=True)
    else:
        if "://" not in path:  # finished trials live in MLflow: start Tune afresh, in a folder marked as xfer's
            remove_owned_dir(inside(Path(storage), name))
            make_owned_dir(Path(path))
        _remember_phase(study, name, fingerprint)
        space = search.space if search else {"unit": tune.grid_search([u.key for u in phase.units])}
        tuner = tune.Tuner(
            trainable, param_space=space,
            tune_config=tune.TuneConfig(
                max_concurrent_trials=study.ray.max_concurrent, reuse_actors=True, num_samples=samples,
                metric=search.metric if search else None, mode=search.mode if search else None,
                search_alg=search.search_alg if search else None, scheduler=search.scheduler if search else None,
                trial_name_creator=lambda trial: unit_of(phase, trial.config).name + _sample_suffix(trial),
                trial_dirname_creator=lambda trial: unit_of(phase, trial.config).name + _sample_suffix(trial)),
            run_config=tune.RunConfig(name=name, storage_path=storage, verbose=0,
                                      callbacks=[progress, JsonLoggerCallback(), CSVLoggerCallback()],
                                      failure_config=tune.FailureConfig(max_failures=study.ray.max_failures),
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)))
    return tuner.fit()


def _sample_suffix(trial) -> str:
    """Sampled values in a tuning trial's name (e.g. -lr0.00123), so every sample has its own folder."""
    return "".join(f"-{k[len('train.'):]}{v:.3g}" if isinstance(v, float) else f"-{k[len('train.'):]}{v}"
                   for k, v in sorted(trial.config.items()) if k.startswith("train."))


def _phase_record(study: StudyConfig, name: str) -> Path:
    return inside(study.output_path, f".xfer-phase-{name}.json")


def _remember_phase(study: StudyConfig, name: str, fingerprint: str) -> None:
    record = _phase_record(study, name)
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"fingerprint": fingerprint}))


def _same_phase(study: StudyConfig, name: str, fingerprint: str) -> bool:
    """Whether the interrupted Tune experiment ran this very phase; says so when it did not."""
    record = _phase_record(study, name)
    try:
        same = json.loads(record.read_text()).get("fingerprint") == fingerprint
    except (OSError, ValueError):
        same = False
    if not same:
        say(f"the study changed since its Tune experiment {name!r} was interrupted (or it left no record): its "
            f"trials start afresh; finished trials whose reuse key still matches are reused from MLflow")
    return same
