"""The tuning phase: per (init, model, n) cell, Ray Tune searches `tuning.space` on validation AUC with its own
seeds (a search algorithm and an ASHA scheduler), and the cell's evaluation trials train with the best values.

Tuning trials are MLflow runs nested under the study's tuning run, tagged `xfer.phase: tuning`: never in the
leaderboard nor a verdict. A finished tuning whose key (space, search, data, seeds) matches is reused."""
from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any, Optional

from xfer.config import StudyConfig, TuningConfig, set_values
from xfer.plan import Phase, TrialSpec, Unit, evaluation_specs
from xfer.record import KIND_TAG, OUTCOME_TAG, STOPPED_EARLY, STUDY_TAG, TUNING
from xfer.reuse import digest

DOMAIN = re.compile(r"^\s*(loguniform|uniform|randint)\(\s*([^,()]+?)\s*,\s*([^,()]+?)\s*\)\s*$")
TUNING_KIND = "tuning"  # the kind tag of the study's tuning run (its trials are kind "trial", phase "tuning")
TUNING_KEY_TAG = "xfer.tuning_key"
RECIPES_ARTIFACT = "tuning/tuning_recipes.json"  # track.log_file keeps a file's name
TRIALS_ARTIFACT = "tuning/tuning_trials.csv"
FIGURE_ARTIFACT = "tuning/tuning_sensitivity.png"
Cell = tuple[str, str, Any]  # (init name, model, n_per_class)


def parse_domain(value: Any) -> Optional[tuple[str, float, float]]:
    """`loguniform(1e-5, 1e-1)` → ("loguniform", 1e-05, 0.1); None for anything else."""
    match = DOMAIN.match(value) if isinstance(value, str) else None
    if not match:
        return None
    try:
        return match.group(1), float(match.group(2)), float(match.group(3))
    except ValueError:
        return None


def tuning_problems(tuning: Optional[TuningConfig], evaluation_seeds: tuple[int, ...]) -> list[str]:
    """Every problem of a `tuning` block, with field paths (the names are checked by xfer.sweep's rules)."""
    from xfer.sweep import sweep_problems

    if tuning is None:
        return []
    problems = []
    if not tuning.space:
        problems.append("tuning.space: name at least one train setting to tune, e.g. {train.lr: loguniform(1e-5, 1e-1)}")
    choices = {}
    for name, value in (tuning.space or {}).items():
        domain = parse_domain(value)
        if isinstance(value, (list, tuple)):
            choices[name] = tuple(value)
        elif domain is None:
            problems.append(f"tuning.space.{name}: give a list of values or loguniform(lo, hi) / uniform(lo, hi) / "
                            f"randint(lo, hi); got {str(value)[:80]!r}")
        elif not (domain[1] < domain[2]) or (domain[0] == "loguniform" and domain[1] <= 0):
            problems.append(f"tuning.space.{name}: {value} needs 0 < lo < hi (loguniform) or lo < hi")
        else:
            low = {"randint": int(domain[1]), "loguniform": domain[1], "uniform": domain[1]}[domain[0]]
            choices[name] = (low,)  # its type is checked like a swept value's
    problems += [p.replace("trials.sweep.", "tuning.space.") for p in sweep_problems(choices)]
    if tuning.search == "grid" and not all(isinstance(v, (list, tuple)) for v in (tuning.space or {}).values()):
        problems.append("tuning.search: grid needs a list of values for every tuning.space entry")
    if tuning.samples is not None and tuning.samples < 1:
        problems.append(f"tuning.samples: must be >= 1, got {tuning.samples}")
    if tuning.grace_epochs is not None and tuning.grace_epochs < 1:
        problems.append(f"tuning.grace_epochs: must be >= 1, got {tuning.grace_epochs}")
    if not tuning.seeds:
        problems.append("tuning.seeds: name at least one seed, e.g. [100]")
    shared = sorted(set(tuning.seeds or ()) & set(evaluation_seeds or ()))
    if shared:
        problems.append(f"tuning.seeds: {shared} are also evaluation seeds (trials.seeds); tuning seeds must be "
                        "disjoint, so no evaluated trial is the one its recipe was chosen on")
    return problems


def cells(study: StudyConfig) -> list[Cell]:
    """The (init, model, n) cells a tuning phase chooses one recipe for, in grid order."""
    return list(dict.fromkeys(spec.cell for spec in evaluation_specs(study)))


def tuning_phase(study: StudyConfig, cell: Cell) -> Phase:
    """One unit: the cell's trial at every tuning seed, run one after another on validation only (fixed split, or
    the first fold of a cross-validated study)."""
    init = next(i for i in study.trials.init if i.name == cell[0])
    fold = 0 if study.data.split.folds else None
    specs = tuple(TrialSpec(init, cell[1], cell[2], seed, fold=fold, phase=TUNING) for seed in study.tuning.seeds)
    return Phase(TUNING, (Unit(specs),))


def samples(tuning: TuningConfig) -> int:
    """Configurations tried per cell: every combination of a grid, else `samples`."""
    if tuning.search != "grid":
        return tuning.samples
    return math.prod(len(values) for values in tuning.space.values())


def tuning_trial_count(study: StudyConfig) -> int:
    """Trials of the tuning phase (cells × configurations × tuning seeds); 0 without one."""
    if study.tuning is None:
        return 0
    return len(cells(study)) * samples(study.tuning) * len(study.tuning.seeds)


def asha_rungs(study: StudyConfig) -> tuple[int, int]:
    """(grace, max_t) of a cell's ASHA in reports: a unit reports every epoch of each tuning seed in turn, then
    its summary, and ASHA must let it reach that report."""
    epochs = study.train.epochs * len(study.tuning.seeds) + 1
    return min(study.tuning.grace_epochs, epochs), epochs


def asha_share(study: StudyConfig, reduction: int = 2) -> float:
    """The share of its full length a tuning configuration trains on average when ASHA stops all but 1/reduction
    of those reaching each rung (grace, grace × reduction, …): the low end of the tuning cost (with few
    configurations per cell ASHA stops fewer); 1 without ASHA."""
    if study.tuning is None or study.tuning.scheduler != "asha":
        return 1.0
    rung, total = asha_rungs(study)
    reports, surviving = float(rung), 1.0
    while rung < total:
        surviving /= reduction
        reports += surviving * (min(rung * reduction, total) - rung)
        rung *= reduction
    return reports / total


def tuning_key(study: StudyConfig) -> str:
    """What a finished tuning must match to be reused: the tuning block, data, split and train settings, cells."""
    values = {k: v for k, v in set_values(study).items() if k.startswith(("data.", "train.", "tuning."))}
    return digest({"values": values, "cells": [list(map(str, c)) for c in cells(study)]})


def search_for(study: StudyConfig, seed: int):
    """The Tune search of one cell: domains, search algorithm and ASHA, from the study's `tuning` block."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from xfer.tune import Search

    tuning = study.tuning
    space = {}
    for name, value in tuning.space.items():
        domain = parse_domain(value)
        if domain is None:
            space[name] = tune.grid_search(list(value)) if tuning.search == "grid" else tune.choice(list(value))
        else:
            kind, low, high = domain
            space[name] = tune.randint(int(low), int(high)) if kind == "randint" else getattr(tune, kind)(low, high)
    if tuning.search == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        algorithm = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed))
    else:
        algorithm = BasicVariantGenerator(random_state=seed)
    grace, epochs = asha_rungs(study)
    scheduler = ASHAScheduler(time_attr="training_iteration", max_t=epochs, grace_period=grace,
                              reduction_factor=2) if tuning.scheduler == "asha" else None
    key = json.dumps(dataclasses.asdict(tuning), sort_keys=True, default=str)
    return Search(space=space, key=key, metric="tuning_score", mode="max",
                  samples=1 if tuning.search == "grid" else tuning.samples, trials=samples(tuning),
                  search_alg=algorithm, scheduler=scheduler)


def cell_name(cell: Cell) -> str:
    return f"{cell[0]}-{cell[1]}-n{cell[2]}".replace("/", "_").replace(":", "_")


def run_tuning(study: StudyConfig, inits: dict, uri: str, experiment_id: str, study_run_id: str,
               resume: bool) -> dict[Cell, tuple[tuple[str, Any], ...]]:
    """The tuning phase: every cell searched (or a finished tuning with the same key reused); returns each cell's
    chosen `train.*` values, also logged on the tuning run (recipes.json, every trial in trials.csv)."""
    from xfer import track
    from xfer.console import say
    from xfer.tune import run_phase

    key = tuning_key(study)
    previous = track.find_run(uri, experiment_id, {KIND_TAG: TUNING_KIND, TUNING_KEY_TAG: key})
    if track.is_finished(previous):
        recorded = track.client(uri).download_artifacts(previous.info.run_id, RECIPES_ARTIFACT)
        say(f"tuning: reusing the finished tuning run {previous.info.run_id} (same space, search, data and seeds)")
        return recipes_from_json(Path(recorded).read_text())
    tags = {KIND_TAG: TUNING_KIND, STUDY_TAG: study.name, TUNING_KEY_TAG: key,
            track.PARENT_TAG: study_run_id}
    run_id = track.open_run(uri, experiment_id, f"tuning:{study.name}", tags, (KIND_TAG, TUNING_KEY_TAG))
    recipes, rows = {}, []
    with track.finishing(uri, run_id):
        planned = cells(study)
        for k, cell in enumerate(planned):
            say(f"tuning {cell_name(cell)} ({k + 1}/{len(planned)}): {samples(study.tuning)} configurations × "
                f"{len(study.tuning.seeds)} seed(s), {study.tuning.search} search, scheduler {study.tuning.scheduler}")
            results = run_phase(study, tuning_phase(study, cell), inits, uri, experiment_id, run_id, resume,
                                name=f"{study.name}-tuning-{cell_name(cell)}", search=search_for(study, k))
            cell_rows = [trial_row(cell, r, list(study.tuning.space)) for r in results]
            mark_stopped_early(uri, [r for r in cell_rows if r["outcome"] == "stopped early"])
            rows += cell_rows
            recipes[cell] = best_recipe(cell, cell_rows, list(study.tuning.space))
            say(f"tuning {cell_name(cell)}: chose {dict(recipes[cell])}")
        log_tuning(uri, run_id, study, recipes, rows)
    return recipes


def trial_row(cell: Cell, result, names: list[str]) -> dict:
    """One tuning trial: its sampled values, score, outcome (finished / stopped early / failed) and run ids."""
    metrics = result.metrics or {}
    outcome = "failed" if result.error is not None else "finished" if metrics.get("trial_done") else "stopped early"
    return {"init": cell[0], "model": cell[1], "n_per_class": cell[2],
            **{name: (result.config or {}).get(name) for name in names},
            "tuning_score": metrics.get("tuning_score", math.nan), "epochs": metrics.get("training_iteration", 0),
            "outcome": outcome, "run_id": metrics.get("run_id", "")}


def best_recipe(cell: Cell, rows: list[dict], names: list[str]) -> tuple[tuple[str, Any], ...]:
    """The values of the best finished configuration (a configuration ASHA stopped early never wins)."""
    finished = [r for r in rows if r["outcome"] == "finished" and math.isfinite(r["tuning_score"])]
    if not finished:
        raise RuntimeError(f"tuning {cell_name(cell)}: no configuration finished ({len(rows)} tried); see the "
                           "tuning run's trials in MLflow")
    best = max(finished, key=lambda r: r["tuning_score"])
    return tuple((name, best[name]) for name in names)


def mark_stopped_early(uri: str, rows: list[dict]) -> None:
    """A trial the scheduler stopped ends FINISHED with `xfer.outcome: stopped_early` (Tune stopped it, not a failure
    or an interruption: it is not re-run)."""
    from xfer import track

    client = track.client(uri)
    for row in rows:
        if row["run_id"]:
            client.set_tag(row["run_id"], OUTCOME_TAG, STOPPED_EARLY)
            client.set_terminated(row["run_id"], "FINISHED")


def recipes_to_json(recipes: dict[Cell, tuple]) -> str:
    return json.dumps([{"init": c[0], "model": c[1], "n_per_class": c[2], "values": dict(v)}
                       for c, v in recipes.items()], indent=2)


def recipes_from_json(text: str) -> dict[Cell, tuple[tuple[str, Any], ...]]:
    return {(r["init"], r["model"], r["n_per_class"]): tuple(r["values"].items()) for r in json.loads(text)}


def log_tuning(uri: str, run_id: str, study: StudyConfig, recipes: dict, rows: list[dict]) -> None:
    """On the tuning run and in the study's folder: the chosen recipes, every tuning trial, the sensitivity figure."""
    import pandas as pd

    from xfer import track

    out = study.output_path
    out.mkdir(parents=True, exist_ok=True)
    (out / "tuning_recipes.json").write_text(recipes_to_json(recipes))
    trials = pd.DataFrame(rows)
    trials.to_csv(out / "tuning_trials.csv", index=False)
    track.log_file(uri, run_id, out / "tuning_recipes.json", RECIPES_ARTIFACT)
    track.log_file(uri, run_id, out / "tuning_trials.csv", TRIALS_ARTIFACT)
    stopped = int((trials["outcome"] == "stopped early").sum())
    track.log_metrics(uri, run_id, {"tuning_trials": len(trials), "stopped_early": stopped}, step=0)
    figure = sensitivity_figure(trials, out / "tuning_sensitivity.png")
    if figure is not None:
        track.log_file(uri, run_id, figure, FIGURE_ARTIFACT)


def sensitivity_figure(trials, path: Path) -> Optional[Path]:
    """Validation score vs learning rate, one line per init, one panel per n: does the verdict hang on the recipe?"""
    if "train.lr" not in trials or trials.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(dict.fromkeys(trials["n_per_class"]))
    fig, axes = plt.subplots(1, len(sizes), figsize=(4 * len(sizes), 3.2), squeeze=False, sharey=True)
    for ax, n in zip(axes[0], sizes):
        for init, g in trials[trials["n_per_class"] == n].groupby("init", sort=False):
            g = g.sort_values("train.lr")
            done = g[g["outcome"] == "finished"]
            line = ax.plot(done["train.lr"], done["tuning_score"], "o-", label=init)[0]
            stopped = g[g["outcome"] == "stopped early"]
            ax.plot(stopped["train.lr"], stopped["tuning_score"], "x", color=line.get_color())
        ax.set_xscale("log")
        ax.set_title(f"n = {n} per class")
        ax.set_xlabel("learning rate")
    axes[0][0].set_ylabel("validation AUC (mean over tuning seeds)")
    # beside the panels, never over a point
    axes[0][-1].legend(fontsize=8, title="init (x: stopped early)", loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
