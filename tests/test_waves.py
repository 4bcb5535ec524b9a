"""Seed waves (`trials.seeds: {min, max, until_mde}`): the stopping rule reads precision only, spends seeds where the
seed variance is, and — fed simulated studies with a population truth — keeps the false decisive rate at 5% per
comparison and per table under no effect while reaching 80% power at the target effect."""
import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import ROOT, not_above
from xfer.analysis.leaderboard import leaderboard
from xfer.analysis.plan import PlannedComparison
from xfer.analysis.simulate import honesty_rates, null_design
from xfer.analysis.simulate_waves import waves_draw, waves_of
from xfer.config import ConfigError, SeedWaves
from xfer.load import parse_study
from xfer.waves import BUDGET, FLOOR, MAXIMUM, MORE, PRECISE, next_wave, wave_study, within_budget

INITS = ("random", "imagenet", "chexpert")


def planned(n, mde, needed, estimate=0.0, seeds=4):
    return PlannedComparison(n, "imagenet − random", seeds, estimate, mde, needed, 0.02, 30.0)


def test_each_n_stops_when_precise_at_the_maximum_or_at_the_floor_and_otherwise_grows_at_most_double():
    waves = SeedWaves(min=4, max=24, until_mde=0.10)
    plans = [planned("5", 0.30, 40), planned("20", 0.12, 6), planned("80", 0.08, 3), planned("160", 0.2, None)]
    steps = next_wave(plans, {"5": 4, "20": 4, "80": 4, "160": 4, "320": 4}, waves)
    assert (steps["5"].reason, steps["5"].add) == (MORE, 4), "needs 40: at most doubles"
    assert (steps["20"].reason, steps["20"].add) == (MORE, 2), "needs 6: goes there"
    assert (steps["80"].reason, steps["80"].add) == (PRECISE, 0)
    assert (steps["160"].reason, steps["160"].add) == (FLOOR, 0), "no seed count reaches the target"
    assert steps["320"].add == 0 and "no comparison" in steps["320"].why
    assert next_wave([planned("5", 0.3, 40, seeds=24)], {"5": 24}, waves)["5"].reason == MAXIMUM


def test_the_rule_never_reads_an_estimate():
    waves = SeedWaves(min=4, max=24, until_mde=0.10)
    a = next_wave([planned("5", 0.2, 12, estimate=-0.4), planned("5", 0.15, 9, estimate=0.01)], {"5": 4}, waves)
    b = next_wave([planned("5", 0.2, 12, estimate=0.3), planned("5", 0.15, 9, estimate=0.5)], {"5": 4}, waves)
    assert a == b and a["5"].add == 4 and a["5"].mde == 0.2, "the least precise comparison decides"


def test_a_wave_that_would_overrun_the_budget_is_not_started():
    steps = next_wave([planned("5", 0.3, 8), planned("80", 0.3, 6)], {"5": 4, "80": 4},
                      SeedWaves(min=4, max=24, until_mde=0.10))
    cost = {"5": 60.0, "80": 200.0}  # seconds per added seed (all inits), this machine
    assert within_budget(steps, cost, elapsed=600, budget=None) == steps
    assert within_budget(steps, cost, elapsed=600, budget=600 + 4 * 60 + 2 * 200) == steps
    over = within_budget(steps, cost, elapsed=600, budget=600 + 4 * 60 + 2 * 200 - 1)
    assert all(s.add == 0 and s.reason == BUDGET for s in over.values())


def test_waves_spend_seeds_where_the_seed_variance_is_and_stop_at_the_printed_mde():
    waves = SeedWaves(min=4, max=24, until_mde=0.12)
    rng = np.random.default_rng(5)
    for _ in range(2):
        trials, predictions, _, seeds, number = waves_of(rng, null_design(24, 300, inits=INITS), waves)
        assert seeds["5"] > seeds["80"] and number >= 2, seeds  # n = 5 is seed-dominated, n = 80 is not
        board = leaderboard(trials, predictions=predictions)
        tested = board[board["diff_vs_random"].notna()]
        for n, rows in tested.groupby("n_per_class"):
            assert (rows["runs"] == seeds[n]).all()
            assert rows["mde"].max() <= waves.until_mde or seeds[n] == waves.max, (n, rows["mde"].max())


def study_with(seeds):
    raw = yaml.safe_load((ROOT / "experiments" / "tuning_smoke.yaml").read_text())
    raw.pop("tuning")
    raw["trials"]["seeds"] = seeds
    return raw


def test_seed_waves_parse_and_run_their_first_wave_first():
    study = parse_study(study_with({"min": 3, "max": 12, "until_mde": 0.1, "budget_minutes": 30}),
                        base_dir=ROOT / "experiments")
    t = study.trials
    assert t.seeds == SeedWaves(3, 12, 0.1, 30.0) and t.seeds_for(t.n_per_class[0]) == (0, 1, 2)
    assert t.all_seeds == tuple(range(12)), "tuning seeds must stay clear of every seed a wave may add"
    second = wave_study(study, {str(t.n_per_class[0]): (3, 4)})
    assert second.trials.seeds_for(t.n_per_class[0]) == (3, 4)


@pytest.mark.parametrize("seeds, says", [
    ({"min": 2, "max": 12, "until_mde": 0.1}, "3 <= min <= max"),
    ({"min": 5, "max": 4, "until_mde": 0.1}, "3 <= min <= max"),
    ({"min": 3, "max": 12, "until_mde": 1.5}, "trials.seeds.until_mde"),
    ({"min": 3, "max": 12, "until_mde": 0.1, "budget": 30}, "trials.seeds.budget: unknown key"),
    ({"min": 3, "max": 12}, "min, max and until_mde required"),
])
def test_bad_seed_waves_are_named(seeds, says):
    with pytest.raises(ConfigError) as e:
        parse_study(study_with(seeds), base_dir=ROOT / "experiments")
    assert says in str(e.value)


def test_seed_waves_need_an_untrained_baseline():
    raw = study_with({"min": 3, "max": 12, "until_mde": 0.1})
    raw["trials"]["init"] = [i for i in raw["trials"]["init"] if i["strategy"] != "random"]
    with pytest.raises(ConfigError, match="untrained baseline"):
        parse_study(raw, base_dir=ROOT / "experiments")


def rates(effect, studies, seed):
    log = []
    waves = SeedWaves(min=4, max=32, until_mde=0.14)
    design = null_design(32, 300, inits=INITS, effect=effect)
    r = honesty_rates(design, studies, seed, draw=waves_draw(waves, log))
    seeds = pd.DataFrame(log)
    print({k: round(float(v), 3) for k, v in r.items() if not isinstance(v, pd.DataFrame)},
          seeds.mean().round(2).to_dict())
    return r, seeds


@pytest.mark.slow
def test_waves_keep_false_decisive_rates_at_five_percent_under_no_effect():
    r, seeds = rates({}, 200, seed=21)
    # measured (200 studies): leaderboard 0.009 per row, 0.030 per table, coverage 0.950; hypotheses 0.011 per
    # comparison, 0.055 per family, coverage 0.946 (seed 31, 300 studies: 0.005 / 0.030). Before the comparisons
    # across n combined every seed of each n (xfer/analysis/strata.py), the family rate was 0.085.
    assert r["board_decisive"] <= 0.05 and r["hyp_decisive"] <= 0.05
    assert not_above(r["board_table"], 0.05, 200) and not_above(r["hyp_family"], 0.05, 200)
    assert 0.93 <= r["board_coverage"] <= 0.97 and 0.93 <= r["hyp_coverage"] <= 0.97
    assert seeds["seeds_5"].mean() > seeds["seeds_80"].mean()


@pytest.mark.slow
def test_waves_reach_eighty_percent_power_at_the_target_effect():
    r, seeds = rates({"5": 0.14}, 100, seed=22)
    board = r["leaderboard"]
    at5 = board[(board["init"] == "imagenet") & (board["n_per_class"] == "5")]
    precise = at5["mde"] <= 0.14
    print(f"better at n=5: {(at5['verdict'] == 'better').mean():.3f}; precise {precise.mean():.3f}")
    power, reached = (at5.loc[precise, "verdict"] == "better").mean(), int(precise.sum())
    # measured: 0.798 of the 84 studies (of 100) whose waves reached the target mde at n = 5 said "better"
    assert power >= 0.8 - 2 * np.sqrt(0.8 * 0.2 / reached), "80% power where the waves reached the target"
    assert precise.mean() >= 0.8, "the budget (32 seeds) allows it in most studies (measured 0.84)"


@pytest.mark.slow
def test_a_waves_study_on_real_images_adds_seeds_only_where_imprecise_and_reports_why_it_stopped(tmp_path):
    import json
    import subprocess
    import sys
    from collections import Counter

    from helpers import ray_env, short_temp_dir, trial_runs, write_study

    study = write_study(ROOT / "experiments" / "waves_smoke.yaml", tmp_path, {})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = ray_env(short_temp_dir("xwaves"), MLFLOW_TRACKING_URI=uri)
    run = subprocess.run([sys.executable, "-m", "xfer.run", str(study)], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    print(run.stdout[-3000:])
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    waves = summary["waves"]
    runs = trial_runs(uri, "waves_smoke")
    keys = Counter(r.data.tags["xfer.trial_key"] for r in runs)
    assert max(keys.values()) == 1 and len(runs) == summary["trials"] == summary["finished"], "each trial once"
    seeds = Counter((r.data.tags["n_per_class"], r.data.tags["init"]) for r in runs)
    final = {s["n_per_class"]: s for s in waves[-1]["steps"]}
    assert all(s["add"] == 0 for s in final.values()), "the last wave adds nothing"
    for (n, _), count in seeds.items():
        assert count == final[n]["seeds"] and 3 <= count <= 6
        assert final[n]["reason"] in ("precise", "max", "floor") and (final[n]["mde"] <= 0.15) == (
            final[n]["reason"] == "precise")
    if len(waves) > 1:
        grew = [s["n_per_class"] for s in waves[0]["steps"] if s["add"]]
        assert grew and all(final[n]["seeds"] > 3 for n in grew)
    report = (tmp_path / "out" / "report" / "report.html").read_text()
    assert f"Seed waves ({len(waves)} wave" in report and "never estimates or p-values" in report
    again = subprocess.run([sys.executable, "-m", "xfer.run", str(study), "--no-report"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=1500)
    assert again.returncode == 0, again.stderr[-4000:]
    assert len(trial_runs(uri, "waves_smoke")) == len(runs), "a second run reuses every finished trial"
