"""`xfer check STUDY.yaml`: validate a study, count its trials, list its stages (cached / to train), estimate wall time."""
from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Optional

from xfer.config import SeedWaves, StudyConfig
from xfer.data.root import absolutize

EVAL_COST = 1 / 3  # an image scored (validation, test) costs about a third of one trained (forward only)
# measured in bench/RESULTS.md (overhead section, idle machine): Tune + MLflow add ~5 s per trial (now ~8 s with
# the logged MLflow model), and Ray start-up plus each worker's imports ~17 s once per study
TRIAL_OVERHEAD_S = 8.0
STUDY_OVERHEAD_S = 17.0


def images_per_second(model_name: str, channels: int, classes: int, size: int, batch: int, threads: int) -> float:
    """Training throughput of `model_name` on this machine, from a few timed steps on random images."""
    import torch

    from xfer.models import build_model

    torch.set_num_threads(max(threads, 1))
    model = build_model(model_name, classes, channels)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, channels, size, size), torch.randint(0, classes, (batch,))
    timings = []
    for _ in range(4):  # the first step warms up allocators and kernels; it is not timed
        began = time.perf_counter()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        timings.append(time.perf_counter() - began)
    return batch / (sum(timings[1:]) / 3)


def pool_per_class(data, base_dir: Path) -> Counter:
    """Images per class in the study's data (read from the CSVs / folders; no image is decoded)."""
    from xfer.data.records import load_records

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Counter(r.label for r in load_records(data, base_dir))


def trial_images(study: StudyConfig, n, pool: Counter) -> float:
    """Images one trial trains on per epoch, plus its validation and test images weighted by EVAL_COST."""
    total = sum(pool.values())
    split = study.data.split
    train = (1 - split.val_fraction - split.test_fraction) * total if n == "all" else int(n) * len(pool)
    return train + EVAL_COST * total * (split.val_fraction + split.test_fraction / study.train.epochs)


def seed_axis(trials) -> str:
    """'8 seeds', or per n where the study gives each n its own seeds: 'seeds 32/12/6 at n 5/20/80'."""
    if isinstance(trials.seeds, SeedWaves):
        w = trials.seeds
        budget = f", within {w.budget_minutes:g} min" if w.budget_minutes else ""
        return f"seed waves: {w.min} seeds per n first, up to {w.max} until every mde ≤ {w.until_mde:g}{budget}"
    counts = [len(trials.seeds_for(n)) for n in trials.n_per_class]
    if not isinstance(trials.seeds, dict):
        return f"{counts[0]} seeds"
    return f"seeds {'/'.join(map(str, counts))} at n {'/'.join(map(str, trials.n_per_class))}"


def check_study(path: Path, recipes: Optional[Path] = None, measure: bool = True) -> list[str]:
    """The check's report, line by line; raises ConfigError (every problem) when the study is invalid."""
    from xfer.console import duration
    from xfer.load import load_study
    from xfer.config import ConfigError
    from xfer.preflight import study_preflight
    from xfer.stages import cached_checkpoint, plan_stage, recipe_dirs
    from xfer.plan import evaluation_specs, trial_count, trials_at_once
    from xfer.tuning import asha_share, cells, samples, tuning_trial_count

    from xfer.data.records import LISTINGS_ENV

    study = load_study(path)
    os.environ.setdefault(LISTINGS_ENV, str(study.output_path))  # skipped-file listings in the study's folder
    study = dataclasses.replace(study, data=absolutize(study.data, path.parent))
    t = study.trials
    axes = [f"{len(t.init)} inits", f"{len(t.models)} models", f"{len(t.n_per_class)} sizes", seed_axis(t),
            *(f"{len(v)} {k}" for k, v in t.sweep.items())]
    planned = trial_count(study)
    count = f"{planned} trials"
    if isinstance(t.seeds, SeedWaves):
        count += f" in the first wave, at most {planned * t.seeds.max // t.seeds.min}"
    lines = [f"{path}: valid (data, weights and splits checked); {count} ({' × '.join(axes)}), "
             f"{study.train.epochs} epochs each"]
    problems = study_preflight(study, path.parent)
    if problems:
        raise ConfigError(str(path), problems)
    pool = pool_per_class(study.data, path.parent)
    lines.append(f"data: {sum(pool.values())} images; per class: "
                 + ", ".join(f"{study.data.classes[k]} {v}" for k, v in sorted(pool.items())))
    dirs = recipe_dirs(path, recipes)
    stages, stage_images = [], 0.0
    for init in t.init:
        source = init.origin
        for model in t.models if source.kind == "stage" else ():
            job = plan_stage(source.name, model, dirs)
            while job is not None:
                cached = cached_checkpoint(job, Path(study.data.cache_dir)) is not None
                if not cached and job.key not in {s[0] for s in stages}:
                    size = sum(pool_per_class(job.config.data, Path.cwd()).values())
                    stage_images += job.config.train.epochs * size * (1 - job.config.data.split.test_fraction)
                stages.append((job.key, f"stage {job.name} ({job.key}): {'cached' if cached else 'to train'}"))
                job = job.depends_on
    lines += sorted({line for _, line in stages})
    if study.tuning is not None:
        lines.append(f"tuning: {tuning_trial_count(study)} trials before the evaluation ({len(cells(study))} cells × "
                     f"{samples(study.tuning)} configurations × {len(study.tuning.seeds)} tuning seeds; "
                     f"{study.tuning.search} search, scheduler {study.tuning.scheduler}; validation only)")
    if not measure:
        return lines
    slots = trials_at_once(study)
    seconds, tuning_seconds = 0.0, 0.0
    for model in t.models:
        speed = images_per_second(model, study.data.channels, len(study.data.classes), study.data.image_size,
                                  study.train.batch_size, int(study.resources.cpu))
        runs = Counter(spec.n_per_class for spec in evaluation_specs(study) if spec.model == model)
        seconds += sum(runs[n] * study.train.epochs * trial_images(study, n, pool) / speed for n in t.n_per_class)
        seconds += stage_images / speed / len(t.models)
        tuning_runs = tuning_trial_count(study) // len(t.models) // len(t.n_per_class)  # at full length
        tuning_seconds += sum(tuning_runs * study.train.epochs * trial_images(study, n, pool) / speed
                              for n in t.n_per_class)
        lines.append(f"throughput {model}: {speed:.0f} training images/s at {study.data.image_size} px, "
                     f"batch {study.train.batch_size}, {int(study.resources.cpu)} thread(s)")
    seconds += (planned + tuning_trial_count(study)) * TRIAL_OVERHEAD_S
    share = asha_share(study)
    wall = f"~{duration(STUDY_OVERHEAD_S + (seconds + tuning_seconds) / slots)}"
    asha = ""
    if share < 1:
        wall = f"~{duration(STUDY_OVERHEAD_S + (seconds + share * tuning_seconds) / slots)} to {wall}"
        asha = (f"; tuning from ASHA stopping half the configurations at every rung ({share:.0%} of its epochs) "
                f"to none stopped")
    seconds += tuning_seconds
    lines.append(f"estimated wall time: {wall} ({slots} trial(s) at once; "
                 f"measured training speed + bench/RESULTS.md overheads; a first run also decodes the images; "
                 f"speed measured at load {os.getloadavg()[0]:.1f}{asha})")
    if isinstance(t.seeds, SeedWaves):
        most = STUDY_OVERHEAD_S + seconds * t.seeds.max / t.seeds.min / slots
        cap = f"; the budget stops adding waves at {t.seeds.budget_minutes:g} min" if t.seeds.budget_minutes else ""
        lines.append(f"seed waves: that is the first wave; all waves at most ~{duration(most)} (every n at "
                     f"{t.seeds.max} seeds){cap}")
    return lines
