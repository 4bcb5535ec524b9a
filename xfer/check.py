"""`xfer check STUDY.yaml`: validate a study, count its trials, list its stages (cached / to train), estimate wall time."""
from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import NamedTuple, Optional

from xfer.config import SeedWaves, StudyConfig
from xfer.data.root import absolutize

# measured in bench/RESULTS.md (overhead section, idle machine): Tune + MLflow add ~5 s per trial (now ~8 s with
# the logged MLflow model), and Ray start-up plus each worker's imports ~17 s once per study
TRIAL_OVERHEAD_S = 8.0
STUDY_OVERHEAD_S = 17.0


class Speed(NamedTuple):
    """Images per second on this machine: trained (forward, backward, step) and scored (forward, eval mode)."""
    train: float
    score: float


SCORE_BATCH = 64  # train.predict_probs' batch


def measure_speed(model_name: str, channels: int, classes: int, size: int, batch: int, threads: int) -> Speed:
    """Training and scoring throughput of `model_name`, from a few timed steps on random images."""
    import numpy as np
    import torch

    from xfer.models import build_model

    torch.set_num_threads(max(threads, 1))
    model = build_model(model_name, classes, channels)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    x, y = torch.randn(batch, channels, size, size), torch.randint(0, classes, (batch,))

    def train_step():
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    scored = torch.randn(SCORE_BATCH, channels, size, size)

    @torch.no_grad()
    def score_step():
        model(scored)

    def per_second(step, images: int, least_s: float = 2.0) -> float:
        """images / the median of ≥ 3 timed steps (≥ `least_s` in all); a first, untimed step warms up."""
        step()
        timings: list[float] = []
        while len(timings) < 3 or sum(timings) < least_s:
            began = time.perf_counter()
            step()
            timings.append(time.perf_counter() - began)
        return images / float(np.median(timings))

    model.train()
    train = per_second(train_step, batch)
    model.eval()
    return Speed(train, per_second(score_step, SCORE_BATCH))


def quiet_records(data, base_dir: Path) -> list:
    """The data's records (read from the CSVs / folders; no image is decoded), their warnings left to the run."""
    from xfer.data.records import load_records

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_records(data, base_dir)


def part_sizes(records: list, split) -> dict[str, int]:
    """Images in the train, val and test parts of `records` split as a run splits them (fold 0 under
    cross-validation); the split's warnings are the run's (and the preflight's) to give."""
    from xfer.data.splits import split_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parts = split_for(records, split)
    return {part: len(getattr(parts, part)) for part in ("train", "val", "test")}


def run_seconds(train: float, parts: dict[str, int], epochs: int, speed: Speed) -> float:
    """Compute seconds of one run: `train` images per epoch trained, the validation part scored every epoch and
    the test part once."""
    return epochs * train / speed.train + (epochs * parts["val"] + parts["test"]) / speed.score


def trial_seconds(study: StudyConfig, n, parts: dict[str, int], speed: Speed) -> float:
    """`run_seconds` of one trial at training-set size `n` (per class, or "all")."""
    train = parts["train"] if n == "all" else int(n) * len(study.data.classes)
    return run_seconds(train, parts, study.train.epochs, speed)


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
    records = quiet_records(study.data, path.parent)
    pool = Counter(r.label for r in records)
    lines.append(f"data: {sum(pool.values())} images; per class: "
                 + ", ".join(f"{study.data.classes[k]} {v}" for k, v in sorted(pool.items())))
    dirs = recipe_dirs(path, recipes)
    stages, stage_runs = [], []
    for init in t.init:
        source = init.origin
        for model in t.models if source.kind == "stage" else ():
            job = plan_stage(source.name, model, dirs)
            while job is not None:
                cached = cached_checkpoint(job, Path(study.data.cache_dir)) is not None
                if not cached and job.key not in {s[0] for s in stages}:
                    stage_runs.append(job.config)
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
    parts = part_sizes(records, study.data.split)
    stage_parts = [(part_sizes(quiet_records(c.data, Path.cwd()), c.data.split), c.train.epochs) for c in stage_runs]
    for model in t.models:
        speed = measure_speed(model, study.data.channels, len(study.data.classes), study.data.image_size,
                              study.train.batch_size, int(study.resources.cpu))
        runs = Counter(spec.n_per_class for spec in evaluation_specs(study) if spec.model == model)
        seconds += sum(runs[n] * trial_seconds(study, n, parts, speed) for n in t.n_per_class)
        stage_seconds = sum(run_seconds(sizes["train"], sizes, epochs, speed) for sizes, epochs in stage_parts)
        seconds += stage_seconds / len(t.models)
        tuning_runs = tuning_trial_count(study) // len(t.models) // len(t.n_per_class)  # at full length
        tuning_seconds += sum(tuning_runs * trial_seconds(study, n, parts, speed) for n in t.n_per_class)
        lines.append(f"throughput {model}: {speed.train:.0f} training / {speed.score:.0f} scored images/s at "
                     f"{study.data.image_size} px, batch {study.train.batch_size} / {SCORE_BATCH}, "
                     f"{int(study.resources.cpu)} thread(s)")
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
                 f"measured training and scoring speed + bench/RESULTS.md overheads; a first run also decodes the "
                 f"images; speed measured at load {os.getloadavg()[0]:.1f}{asha})")
    if isinstance(t.seeds, SeedWaves):
        most = STUDY_OVERHEAD_S + seconds * t.seeds.max / t.seeds.min / slots
        cap = f"; the budget stops adding waves at {t.seeds.budget_minutes:g} min" if t.seeds.budget_minutes else ""
        lines.append(f"seed waves: that is the first wave; all waves at most ~{duration(most)} (every n at "
                     f"{t.seeds.max} seeds){cap}")
    return lines
