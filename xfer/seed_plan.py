"""`xfer plan STUDY.yaml`: how many seeds each planned comparison needs, from a pilot's finished runs.

For every n and every init against the study's baseline (random), the pilot's paired test predictions give the
variance components the verdicts use (the test set's shared part, the seed-to-seed part); `analysis.plan` turns
them into the minimum detectable effect (mde) now, the seeds a target mde needs, and the wall time of those seeds
at the pilot's measured seconds per trial."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from xfer.analysis.plan import PlannedComparison


def plan_lines(plans: list[PlannedComparison], study, target: float, slots: int) -> list[str]:
    """The plan as the console prints it: a row per comparison, then the seeds per n and their wall time."""
    from xfer.analysis.plan import by_n, seconds_per_seed
    from xfer.console import duration
    from xfer.plan import trials_per_seed

    if not plans:
        return ["no comparison to plan: the pilot has no paired test predictions of an init and the baseline "
                "at any n (run a few seeds of the study first, or name a pilot experiment with --from)"]
    lines = [f"target: minimum detectable effect {target:.3f} AUC at power {study.analysis.power:.0%}, "
             f"α {study.analysis.alpha} (Holm over {len(plans)} comparisons)",
             f"{'n':>5}  {'comparison':<28} {'pilot Δ':>8} {'seeds':>5} {'mde now':>8} {'floor':>6} {'needed':>7}"]
    for p in plans:
        needed = str(p.seeds_needed) if p.seeds_needed else "never"
        lines.append(f"{p.n_per_class:>5}  {p.comparison:<28} {p.estimate:>+8.3f} {p.pilot_seeds:>5} "
                     f"{p.mde_now:>8.3f} {p.floor:>6.3f} {needed:>7}")
    cost = seconds_per_seed(plans, trials_per_seed(study), max(slots, 1))
    total, seeds = 0.0, {}
    for n, group in by_n(plans).items():
        reachable = [p.seeds_needed for p in group if p.seeds_needed]
        seeds[n] = max(reachable) if reachable else max(p.pilot_seeds for p in group)
        total += seeds[n] * cost[n]
    lines.append("recommended trials.seeds: {" + ", ".join(f"{n}: {k}" for n, k in seeds.items()) + "}"
                 + ("  (where no count reaches the target, the pilot's: the test set's own variance, the floor, "
                    "is above it — a larger test set helps, more seeds do not)" if any(
                        p.seeds_needed is None for p in plans) else ""))
    if math.isfinite(total):
        lines.append(f"wall time at the pilot's seconds per trial: ~{duration(total)} on {slots} "
                     f"slot(s); ~{duration(total / 4)} on 4× as many (GPUs or cluster slots)")
    return lines


def budget_lines(plans: list[PlannedComparison], study, budget: float, slots: int) -> list[str]:
    """The seeds per n that a wall-time budget buys, spent where the worst comparison is least precise, with the
    mde each n then reaches (the pilot's variance components and seconds per trial)."""
    from xfer.analysis.plan import allocate, by_n, seconds_per_seed, worst_mde
    from xfer.console import duration
    from xfer.plan import trials_per_seed

    cost = seconds_per_seed(plans, trials_per_seed(study), slots)
    if not all(math.isfinite(c) for c in cost.values()):
        return ["no budget plan: the pilot's runs have no recorded durations"]
    alpha, power = study.analysis.alpha, study.analysis.power
    seeds = allocate(plans, cost, budget, alpha=alpha, power=power)
    spent = sum(cost[n] * k for n, k in seeds.items())
    groups = by_n(plans)
    mdes = ", ".join(f"n={n} {worst_mde(groups[n], k, alpha, power):.3f}" for n, k in seeds.items())
    return [f"for a budget of {duration(budget)} on {slots} slot(s): trials.seeds: "
            + "{" + ", ".join(f"{n}: {k}" for n, k in seeds.items()) + "}"
            + f" (~{duration(spent)}); worst mde per n: {mdes}"]


def seconds_of(text: str) -> float:
    """'45m', '2h', '90s' or minutes as a plain number → seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text) * 60
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 45m, 2h)") from None


def main(argv: Optional[list[str]] = None) -> int:
    from xfer import track
    from xfer.analysis.collect import load_study_runs, test_predictions, trial_seconds
    from xfer.analysis.plan import plan_comparisons
    from xfer.load import load_study
    from xfer.plan import trials_at_once

    parser = argparse.ArgumentParser(prog="xfer plan", description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="the study YAML to plan")
    parser.add_argument("--from", dest="pilot", help="the pilot's MLflow experiment (default: the study's own)")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: the study's)")
    parser.add_argument("--target-mde", type=float, default=0.05, help="the AUC difference to detect (default 0.05)")
    parser.add_argument("--budget", type=seconds_of, help="wall time to spend (45m, 2h): the seeds per n it buys")
    parser.add_argument("--slots", type=int, default=None, help="trials at once (default: this machine's cores)")
    args = parser.parse_args(argv)
    study = load_study(args.study)
    uri, experiment = track.tracking_for(study.tracking, study.name)
    uri, experiment = args.tracking_uri or uri, args.pilot or experiment
    runs = load_study_runs(uri, experiment)
    client = track.client(uri)
    durations = trial_seconds(client, list(runs.trials["run_id"]))
    predictions = test_predictions(client, list(runs.trials["run_id"]))
    plans = plan_comparisons(runs.trials, predictions, durations, args.target_mde, study.analysis.alpha,
                             study.analysis.power, [i.name for i in study.trials.init], study.trials.n_per_class)
    slots = args.slots or trials_at_once(study)
    print(f"pilot: {len(runs.trials)} finished trials of experiment {experiment!r} in {uri}")
    for line in plan_lines(plans, study, args.target_mde, slots):
        print(line)
    if args.budget and plans:
        for line in budget_lines(plans, study, args.budget, slots):
            print(line)
    return 0
