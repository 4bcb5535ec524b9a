"""`xfer plan`: from a pilot's runs, each comparison's mde now, the seeds a target needs, and the recommended
seeds per n — on simulated pilots where the seed-to-seed spread is large at small n and small at large n."""
import dataclasses

import numpy as np
import yaml

from helpers import ROOT
from xfer.analysis.simulate import Arm, Design, simulate_study
from xfer.load import parse_study
from xfer.analysis.plan import allocate, plan_comparisons, worst_mde
from xfer.seed_plan import budget_lines, plan_lines


def study_of(sizes):
    raw = yaml.safe_load((ROOT / "experiments" / "tuning_smoke.yaml").read_text())
    raw.pop("tuning")
    raw["trials"].update(init=[{"strategy": "random"}, {"strategy": "imagenet", "source": "stage:smoke_natural"}],
                         n_per_class=sizes)
    return parse_study(raw, base_dir=ROOT / "experiments")


def test_the_plan_spends_seeds_where_the_seed_variance_is():
    design = Design({"random": {"5": Arm(0.70, seed_sd=0.10), "80": Arm(0.88, seed_sd=0.01)},
                     "imagenet": {"5": Arm(0.80, seed_sd=0.10), "80": Arm(0.89, seed_sd=0.01)}},
                    seeds=4, test_images=624)
    trials, predictions, _ = simulate_study(np.random.default_rng(3), design)
    study = study_of([5, 80])
    plans = {p.n_per_class: p for p in plan_comparisons(trials, predictions, {}, target=0.08)}
    assert set(plans) == {"5", "80"} and all(p.pilot_seeds == 4 for p in plans.values())
    assert plans["5"].mde_now > plans["80"].mde_now, "seed noise at n = 5 dominates"
    assert plans["5"].seeds_needed > plans["80"].seeds_needed >= 3
    lines = plan_lines(list(plans.values()), study, 0.08, slots=2)
    assert any(line.startswith("recommended trials.seeds: {5: ") for line in lines)


def test_a_budget_buys_seeds_where_the_worst_comparison_is_least_precise():
    design = Design({"random": {"5": Arm(0.70, seed_sd=0.10), "80": Arm(0.88, seed_sd=0.01)},
                     "imagenet": {"5": Arm(0.80, seed_sd=0.10), "80": Arm(0.89, seed_sd=0.01)}},
                    seeds=4, test_images=624)
    trials, predictions, _ = simulate_study(np.random.default_rng(3), design)
    plans = plan_comparisons(trials, predictions, {}, target=0.08)
    cost = {"5": 60.0, "80": 120.0}  # seconds per seed at each n
    seeds = allocate(plans, cost, budget=3000)
    assert sum(cost[n] * k for n, k in seeds.items()) <= 3000 < sum(cost[n] * k for n, k in seeds.items()) + 120
    assert seeds["5"] > seeds["80"] >= 3, seeds
    worst = max(worst_mde([p for p in plans if p.n_per_class == n], k) for n, k in seeds.items())
    richer = allocate(plans, cost, budget=6000)
    assert max(worst_mde([p for p in plans if p.n_per_class == n], k) for n, k in richer.items()) < worst
    lines = budget_lines([dataclasses.replace(p, seconds_per_trial=30.0) for p in plans], study_of([5, 80]),
                         budget=3000, slots=2)
    assert lines[0].startswith("for a budget of 50m00s on 2 slot(s): trials.seeds: {5: "), lines
