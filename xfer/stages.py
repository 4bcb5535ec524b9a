"""Pretraining stages: resolve `stage:NAME` sources, run missing stages as Ray tasks, cache by recipe hash."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from xfer.checkpoint import read_checkpoint, save_checkpoint
from xfer.config import InitConfig, StageConfig, flatten, set_values
from xfer.data.root import absolutize
from xfer.console import StageProgress, say
from xfer.load import load_stage
from xfer.paths import inside, move_aside, name_problem

STAGE_SEED = 0  # a stage is one checkpoint, trained from one seed
RECIPES_ENV = "XFER_RECIPES"  # a folder of stage recipes, instead of the ones beside the study
LEARNED_MIN_AUC = 0.6  # a stage whose held-out AUC stays below this is at chance: it transfers nothing


class StageError(ValueError):
    """A stage that cannot be found, or stages that depend on each other in a cycle."""


class StageNotLearnedWarning(UserWarning):
    """A stage's checkpoint is no better than chance on its own held-out data."""


def recipe_dirs(study_file: Optional[Path] = None, override: Optional[Path] = None) -> list[Path]:
    """Where `stage:NAME` finds NAME.yaml, one rule for every caller (installed or not): `--recipes DIR` (or
    XFER_RECIPES) alone when given; else the study file's folder, the `pretrain/` beside it, then ./pretrain."""
    given = override or os.environ.get(RECIPES_ENV)
    if given:
        return [Path(given).resolve()]
    folder = [Path(study_file).resolve().parent] if study_file is not None else []
    return [*folder, *(f.parent / "pretrain" for f in folder), Path.cwd() / "pretrain"]


def find_recipe(name: str, dirs: list[Path]) -> Path:
    """`NAME.yaml` in the first folder that has it; NAME must be a safe name (it becomes a path)."""
    if problem := name_problem(name, "stage"):
        raise StageError(problem)
    for d in dirs:
        if inside(d, f"{name}.yaml").exists():
            return d / f"{name}.yaml"
    raise StageError(f"stage {name!r}: no recipe {name}.yaml in {', '.join(str(d) for d in dirs)}")


@dataclass(frozen=True)
class StageJob:
    """One stage recipe bound to the model it pretrains; `key` hashes the recipe and all its inputs."""

    config: StageConfig
    depends_on: Optional["StageJob"]
    key: str

    @property
    def name(self) -> str:
        return f"{self.config.stage}-{self.config.model}"


def plan_stage(name: str, model: Optional[str], dirs: list[Path], _seen: tuple[str, ...] = ()) -> StageJob:
    """Load a stage recipe (for `model`, or the recipe's own) and, recursively, the stage it starts from."""
    if name in _seen:
        raise StageError(f"stages depend on each other in a cycle: {' -> '.join((*_seen, name))}")
    path = find_recipe(name, dirs)
    config = load_stage(path)
    config = dataclasses.replace(config, data=absolutize(config.data, path.parent))
    if config.stage != name:
        raise StageError(f"{path}: field 'stage' is {config.stage!r}, but the file is named for {name!r}")
    if model:
        config = dataclasses.replace(config, model=model)
    source = config.init.origin
    dep = plan_stage(source.name, config.model, dirs, (*_seen, name)) if source.kind == "stage" else None
    recipe = {k: v for k, v in set_values(config).items() if k not in ("description", "tracking.uri")}
    blob = json.dumps([recipe, dep.key if dep else None], sort_keys=True, default=str)
    return StageJob(config, dep, hashlib.sha256(blob.encode()).hexdigest()[:16])


def stage_dir(job: StageJob, cache_root: Path) -> Path:
    return inside(Path(cache_root) / "stages", f"{job.name}-{job.key}")


def cached_checkpoint(job: StageJob, cache_root: Path) -> Optional[Path]:
    """The stage's cached checkpoint if it is there and intact; a corrupt one is moved aside (then retrained)."""
    d = stage_dir(job, cache_root)
    if not ((d / "manifest.json").exists() and (d / "checkpoint.pt").exists()):
        return None
    problem = checkpoint_problem(d)
    if problem:
        move_aside(d, f"{problem}; the stage is retrained")
        return None
    return d / "checkpoint.pt"


def checkpoint_problem(d: Path) -> Optional[str]:
    """Why a stage folder's checkpoint cannot be trusted: a checksum mismatch, or (older folders) unreadable."""
    try:
        expected = json.loads((d / "manifest.json").read_text()).get("checkpoint_sha256")
    except (OSError, ValueError) as e:
        return f"{d / 'manifest.json'} is unreadable: {e}"
    if expected:
        actual = file_sha256(d / "checkpoint.pt")
        return None if actual == expected else f"{d / 'checkpoint.pt'}: sha256 {actual[:12]}… ≠ {expected[:12]}…"
    try:
        read_checkpoint(d / "checkpoint.pt")
    except Exception as e:  # noqa: BLE001 - torch raises many types for a truncated file
        return f"{d / 'checkpoint.pt'} is unreadable: {type(e).__name__}: {e}"
    return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def train_stage(job: StageJob, source_path: Optional[str], cache_root: Path, uri: str, experiment_id: str) -> str:
    """Train one stage (its dependency's checkpoint already made) and write checkpoint + manifest."""
    from xfer import record, track  # MLflow and torch (below) are imported by the stage's task, not by `xfer check`
    from xfer.data.prepare import prepare_data
    from xfer.pipeline import train_and_test
    from xfer.train import FitData

    cfg = job.config
    out = stage_dir(job, cache_root)
    tags = {record.KIND_TAG: track.STAGE, track.STAGE_TAG: cfg.stage, track.STAGE_KEY_TAG: job.key,
            "model": cfg.model}
    run_id = track.open_run(uri, experiment_id, f"stage:{job.name}", tags, (track.STAGE_KEY_TAG,))
    began = time.perf_counter()
    with track.finishing(uri, run_id):
        prepared = prepare_data(cfg.data, Path.cwd())
        labels = prepared.targets if prepared.targets is not None else prepared.labels
        data = FitData(prepared.images_at, labels, np.asarray(prepared.split.train), np.asarray(prepared.split.val),
                       prepared.classes, cfg.data.image_size, cfg.data.positive_index)
        test_idx = np.asarray(prepared.split.test)
        init = dataclasses.replace(cfg.init, source=source_path or cfg.init.source)
        progress = StageProgress(job.name, cfg.train.epochs)
        tested = train_and_test(uri, run_id, cfg.model, init, data, test_idx, cfg.train, cfg.data.channels,
                                STAGE_SEED, {**flatten(cfg), "stage_key": job.key}, on_epoch=progress,
                                on_batch=progress.batch)
        final = dict(tested.metrics, chance_accuracy=chance_accuracy(labels[test_idx]))
        progress.done(final)
        track.log_metrics(uri, run_id, {"chance_accuracy": final["chance_accuracy"]}, step=0)
        meta = dataclasses.replace(tested.meta, stage=cfg.stage, stage_key=job.key)
        save_checkpoint(out / "checkpoint.pt", tested.fit.best_state, meta)
        manifest = {"stage": cfg.stage, "model": cfg.model, "key": job.key, "source": tested.info.source,
                    "checkpoint_sha256": file_sha256(out / "checkpoint.pt"),
                    "data": [d.root for d in cfg.data.datasets], "classes": list(prepared.classes),
                    "n_train": len(data.train_idx), "n_val": len(data.val_idx), "n_test": len(test_idx),
                    "epochs": len(tested.fit.history), "final_metrics": final, "mlflow_run_id": run_id,
                    "wall_seconds": time.perf_counter() - began,
                    "learned": bool(final["test_auc"] >= LEARNED_MIN_AUC)}
        (out / track.MANIFEST_ARTIFACT).write_text(json.dumps(manifest, indent=2, default=float))
        track.log_file(uri, run_id, out / track.MANIFEST_ARTIFACT, track.MANIFEST_ARTIFACT)
    return str(out / "checkpoint.pt")


def chance_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always answering the majority: per image, or per known label when multi-label."""
    if labels.ndim == 1:
        return float(np.bincount(labels).max() / len(labels))
    known = ~np.isnan(labels)
    positives = (labels == 1).sum(0)
    return float(np.maximum(positives, known.sum(0) - positives).sum() / max(known.sum(), 1))


def _stage_task(job: StageJob, source_path: Optional[str], cache_root: str, uri: str, experiment_id: str,
                threads: int) -> str:
    import torch

    torch.set_num_threads(threads)
    return train_stage(job, source_path, Path(cache_root), uri, experiment_id)


def ensure_stages(jobs: list[StageJob], cache_root: Path, uri: str, experiment_id: str,
                  cpus: float = 1, gpus: float = 0) -> dict[str, str]:
    """Checkpoint path per job key; missing stages run as Ray tasks, dependencies first, others in parallel."""
    import ray

    task = ray.remote(num_cpus=cpus, num_gpus=gpus, max_retries=0)(_stage_task)
    refs: dict[str, object] = {}

    def schedule(job: StageJob):
        if job.key in refs:
            return refs[job.key]
        cached = cached_checkpoint(job, cache_root)
        if cached is not None:
            say(f"stage {job.name} ({job.key}): cached, {cached.parent}")
            refs[job.key] = str(cached)
        else:
            dep = schedule(job.depends_on) if job.depends_on else None
            print(f"[xfer] stage {job.name} ({job.key}): training", flush=True)
            refs[job.key] = task.remote(job, dep, str(cache_root), uri, experiment_id, max(int(cpus), 1))
        return refs[job.key]

    for job in jobs:
        schedule(job)
    paths = {k: v if isinstance(v, str) else ray.get(v) for k, v in refs.items()}
    for path in paths.values():
        warn_if_not_learned(Path(path).parent / "manifest.json")
    return paths


def warn_if_not_learned(manifest_path: Path) -> None:
    """Warn when a stage ended at chance: trials initialised from it test a broken source, not pretraining."""
    manifest = json.loads(manifest_path.read_text())
    auc = manifest["final_metrics"].get("test_auc", float("nan"))
    if not auc >= LEARNED_MIN_AUC:
        warnings.warn(f"stage {manifest['stage']}-{manifest['model']} did not learn: held-out AUC {auc:.3f} "
                      f"(< {LEARNED_MIN_AUC}) after {manifest['epochs']} epoch(s); trials initialised from it start "
                      f"from a source at chance. Fix its recipe (learning rate, epochs) and rerun; its files: "
                      f"{manifest_path.parent}", StageNotLearnedWarning, stacklevel=2)


def resolve_init_sources(inits: tuple[InitConfig, ...], models: tuple[str, ...], dirs: list[Path],
                         cache_root: Path, uri: str, experiment_id: str, cpus: float = 1,
                         gpus: float = 0) -> dict[tuple[str, str], InitConfig]:
    """(init name, model) → InitConfig whose `stage:` source is replaced by the stage's checkpoint file."""
    jobs = {(i.name, m): plan_stage(i.origin.name, m, dirs)
            for i in inits if i.origin.kind == "stage" for m in models}
    paths = ensure_stages(list(jobs.values()), cache_root, uri, experiment_id, cpus, gpus) if jobs else {}
    return {(i.name, m): dataclasses.replace(i, source=paths[jobs[i.name, m].key]) if (i.name, m) in jobs else i
            for i in inits for m in models}
