"""Seed waves on simulated studies: the study is drawn at its maximum seeds and revealed wave by wave, each n
stopping by `xfer.waves.next_wave` — the rule the study runner uses — on what has been revealed."""
from __future__ import annotations

import dataclasses

import pandas as pd

from xfer.analysis.plan import plan_comparisons
from xfer.analysis.simulate import Design, simulate_study
from xfer.config import SeedWaves
from xfer.waves import next_wave


def revealed(study: tuple[pd.DataFrame, dict, pd.DataFrame],
             seeds: dict[str, int]) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """(trials, predictions, histories) of a simulated study's first `seeds[n]` seeds at each n."""
    trials, predictions, histories = study
    shown = trials[trials["seed"] < trials["n_per_class"].astype(str).map(seeds)].reset_index(drop=True)
    runs = set(shown["run_id"])
    return shown, {r: p for r, p in predictions.items() if r in runs}, histories[histories["run_id"].isin(runs)]


def waves_of(rng, design: Design, waves: SeedWaves, alpha: float = 0.05,
             power: float = 0.8) -> tuple[pd.DataFrame, dict, pd.DataFrame, dict[str, int], int]:
    """(trials, predictions, histories) of the seeds the waves ran, the seeds per n and the number of waves."""
    study = simulate_study(rng, dataclasses.replace(design, seeds=waves.max))
    seeds = {n: waves.min for n in sorted({n for arms in design.arms.values() for n in arms})}
    number = 0
    while True:
        number += 1
        shown = revealed(study, seeds)
        steps = next_wave(plan_comparisons(shown[0], shown[1], {}, waves.until_mde, alpha, power), seeds, waves)
        if not any(step.add for step in steps.values()):
            return (*shown, seeds, number)
        seeds = {n: seeds[n] + steps[n].add for n in seeds}


def waves_draw(waves: SeedWaves, log: list | None = None):
    """A `draw` for `simulate.honesty_rates`: each study run in waves (`log` collects seeds per n and waves)."""
    def draw(rng, design: Design):
        trials, predictions, histories, seeds, number = waves_of(rng, design, waves)
        if log is not None:
            log.append({"waves": number, **{f"seeds_{n}": k for n, k in seeds.items()}})
        return trials, predictions, histories
    return draw


def seeds_draw(seeds: dict[str, int]):
    """A `draw` for `simulate.honesty_rates` with fixed seeds per n (`{"5": 24, "80": 4}`), no waves."""
    def draw(rng, design: Design):
        return revealed(simulate_study(rng, dataclasses.replace(design, seeds=max(seeds.values()))), seeds)
    return draw
