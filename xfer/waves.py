"""Seed waves (`trials.seeds: {min: 4, max: 48, until_mde: 0.08}`): every n starts with `min` seeds; after each wave
an n gets more seeds while any of its comparisons with the baseline is less precise than the target, up to `max`
seeds or the study's time budget. The rule reads standard errors only (the leaderboard's minimum detectable
effect and the seeds the pilot's variance components project), never an estimate or a p-value, so stopping does
not bias the verdicts."""
from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Optional, Sequence

from xfer.analysis.plan import PlannedComparison
from xfer.config import SeedWaves, StudyConfig

PRECISE, MAXIMUM, FLOOR, BUDGET, UNPAIRED, MORE = ("precise", "max", "floor", "budget", "no comparison", "more")
WAVES_ARTIFACT = "seed_waves.json"  # on the study run: every wave's seeds per n and why each n stopped


@dataclass(frozen=True)
class WaveStep:
    """What one n does after a wave: its seeds so far, the seeds the next wave adds (0: done) and why."""

    n_per_class: str
    seeds: int
    add: int
    mde: float  # the least precise comparison at this n, as the leaderboard prints its mde
    reason: str  # PRECISE, MAXIMUM, FLOOR, BUDGET, UNPAIRED or MORE

    @property
    def why(self) -> str:
        return {PRECISE: f"precise enough (mde {self.mde:.3f})",
                MAXIMUM: f"at the maximum seeds (mde {self.mde:.3f})",
                FLOOR: f"the test set's own variance keeps the mde ({self.mde:.3f}) above the target: more seeds "
                       f"cannot reach it",
                BUDGET: f"the next wave would overrun the time budget (mde {self.mde:.3f})",
                UNPAIRED: "no comparison with the baseline has test predictions to judge",
                MORE: f"mde {self.mde:.3f}: {self.add} more seed(s)"}[self.reason]


def next_wave(plans: Sequence[PlannedComparison], seeds: dict[str, int], waves: SeedWaves) -> dict[str, WaveStep]:
    """Per n: stop when every comparison's mde ≤ `until_mde`, at `max` seeds, or when no seed count reaches the
    target; else add seeds toward the count the variance components project (at least one, at most doubling)."""
    steps = {}
    for n, k in seeds.items():
        group = [p for p in plans if p.n_per_class == n]
        if not group:
            steps[n] = WaveStep(n, k, 0, math.nan, UNPAIRED)
            continue
        mde = max(p.mde_now for p in group)  # as the leaderboard prints it, at the clusters that finished
        needed = [p.seeds_needed for p in group]
        if mde <= waves.until_mde:
            steps[n] = WaveStep(n, k, 0, mde, PRECISE)
        elif k >= waves.max:
            steps[n] = WaveStep(n, k, 0, mde, MAXIMUM)
        elif any(need is None for need in needed):
            steps[n] = WaveStep(n, k, 0, mde, FLOOR)
        else:
            target = min(waves.max, max(k + 1, min(max(needed), 2 * k)))
            steps[n] = WaveStep(n, k, target - k, mde, MORE)
    return steps


def within_budget(steps: dict[str, WaveStep], seconds_per_seed: dict[str, float], elapsed: float,
                  budget: Optional[float]) -> dict[str, WaveStep]:
    """The steps, every addition cancelled (reason BUDGET) when the next wave's projected wall time would take
    the study past `budget` seconds."""
    if budget is None:
        return steps
    projected = sum(step.add * seconds_per_seed.get(n, math.nan) for n, step in steps.items() if step.add)
    if not math.isfinite(projected) or elapsed + projected <= budget:
        return steps
    return {n: dataclasses.replace(step, add=0, reason=BUDGET) if step.add else step for n, step in steps.items()}


def wave_study(study: StudyConfig, seeds: dict[str, tuple[int, ...]]) -> StudyConfig:
    """The study with exactly these seeds per n (a wave's new seeds; an n with none is left out)."""
    sizes = tuple(n for n in study.trials.n_per_class if seeds.get(str(n)))
    trials = dataclasses.replace(study.trials, seeds={str(n): seeds[str(n)] for n in sizes}, n_per_class=sizes)
    return dataclasses.replace(study, trials=trials)


@dataclass(frozen=True)
class WaveRecord:
    """One wave as the report tells it: the seeds each n had after it and what each n did next."""

    wave: int
    seconds: float
    steps: tuple[WaveStep, ...]


@dataclass
class WavesRun:
    """What the waves ran: Tune's results of every wave, the plan's trial keys, and the record per wave."""

    results: list = dataclasses.field(default_factory=list)
    keys: set = dataclasses.field(default_factory=set)
    records: list = dataclasses.field(default_factory=list)
    target: Optional[SeedWaves] = None

    @property
    def trials(self) -> int:
        return len(self.keys)

    def to_json(self) -> dict:
        return {"waves": [dataclasses.asdict(r) for r in self.records],
                "rule": dataclasses.asdict(self.target) if self.target else None}


def run_waves(study: StudyConfig, recipes: dict, inits: dict, uri: str, experiment_id: str, experiment: str,
              parent: str, resume: bool, began: float, run: WavesRun, on_wave=None) -> WavesRun:
    """Run the study's evaluation in seed waves (each a Tune phase of the new seeds only) into `run` (so an
    interrupted study still knows the trials it planned), deciding after each wave from the finished trials' test
    predictions; `on_wave(run)` after every wave (to record progress)."""
    from xfer import console, track
    from xfer.analysis.collect import load_study_runs, test_predictions, trial_seconds
    from xfer.analysis.plan import plan_comparisons, seconds_per_seed
    from xfer.outcomes import study_trial_run_ids
    from xfer.plan import evaluation_phase, trials_at_once, trials_per_seed
    from xfer.tune import run_phase

    waves = run.target = study.trials.seeds
    sizes = [str(n) for n in study.trials.n_per_class]
    done = {n: 0 for n in sizes}
    target = {n: waves.min for n in sizes}
    number = 0
    per_seed_trials, slots = trials_per_seed(study), trials_at_once(study)
    predictions: dict = {}  # a finished trial's predictions and duration do not change: read each once
    durations: dict = {}
    while True:
        number += 1
        wave_began = time.perf_counter()
        new = {n: tuple(range(done[n], target[n])) for n in sizes if target[n] > done[n]}
        console.say(f"seed wave {number}: " + ", ".join(
            f"n={n} seed {s[0]}" if len(s) == 1 else f"n={n} seeds {s[0]}–{s[-1]}" for n, s in new.items()))
        phase = evaluation_phase(wave_study(study, new), recipes)
        run.keys |= {spec.key for unit in phase.units for spec in unit.specs}
        run.results += list(run_phase(wave_study(study, new), phase, inits, uri, experiment_id, parent, resume,
                                      name=f"{study.name}-wave{number}"))
        done = dict(target)
        run_ids = study_trial_run_ids(uri, experiment_id, parent, run.results, run.keys)
        track.client(uri).log_dict(parent, {"run_ids": run_ids}, track.STUDY_TRIALS_ARTIFACT)
        trials = load_study_runs(uri, experiment, parent).trials
        client = track.client(uri)
        new_runs = [r for r in trials["run_id"] if r not in durations]
        durations.update(trial_seconds(client, new_runs))
        predictions.update(test_predictions(client, new_runs))
        plans = plan_comparisons(trials, predictions, durations, waves.until_mde, study.analysis.alpha,
                                 study.analysis.power, [i.name for i in study.trials.init], sizes)
        steps = within_budget(next_wave(plans, done, waves), seconds_per_seed(plans, per_seed_trials, slots),
                              time.perf_counter() - began,
                              waves.budget_minutes * 60 if waves.budget_minutes else None)
        run.records.append(WaveRecord(number, round(time.perf_counter() - wave_began, 1), tuple(steps.values())))
        for step in steps.values():
            console.say(f"seed wave {number}: n={step.n_per_class}, {step.seeds} seeds: {step.why}")
        if on_wave is not None:
            on_wave(run)
        if not any(step.add for step in steps.values()):
            return run
        target = {n: done[n] + steps[n].add for n in sizes}

