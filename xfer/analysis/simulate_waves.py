"""Seed waves on simulated studies: the study is drawn at its maximum seeds and revealed wave by wave, each n
stopping by `xfer.waves.next_wave` — the rule the study runner uses — on what has been revealed."""
from __future__ import annotations

import dataclasses

import pandas as pd

from xfer.analysis.plan import plan_comparisons
from xfer.analysis.simulate import Design, simulate_study
from xfer.config import SeedWaves
from xfer.waves import next_wave


def revealed(trials: pd.DataFrame, seeds: dict[str, int]) -> pd.DataFrame:
    """The trials of the first `seeds[n]` seeds at each n."""
    return trials[trials["seed"] < trials["n_per_class"].astype(str).map(seeds)].reset_index(drop=True)


def waves_of(rng, design: Design, waves: SeedWaves, alpha: float = 0.05,
             power: float = 0.8) -> tuple[pd.DataFrame, dict, pd.DataFrame, dict[str, int], int]:
    """(trials, predictions, histories) of the seeds the waves ran, the seeds per n and the number of waves."""
    trials, predictions, histories = simulate_study(rng, dataclasses.replace(design, seeds=waves.max))
    seeds = {n: waves.min for n in sorted({n for arms in design.arms.values() for n in arms})}
    number = 0
    while True:
        number += 1
        shown = revealed(trials, seeds)
        plans = plan_comparisons(shown, {r: predictions[r] for r in shown["run_id"]}, {}, waves.until_mde,
                                 alpha, power)
        steps = next_wave(plans, seeds, waves)
        if not any(step.add for step in steps.values()):
            runs = set(shown["run_id"])
            return (shown, {r: p for r, p in predictions.items() if r in runs},
                    histories[histories["run_id"].isin(runs)], seeds, number)
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
        trials, predictions, histories = simulate_study(rng, dataclasses.replace(design, seeds=max(seeds.values())))
        shown = revealed(trials, seeds)
        runs = set(shown["run_id"])
        return shown, {r: p for r, p in predictions.items() if r in runs}, histories[histories["run_id"].isin(runs)]
    return draw
