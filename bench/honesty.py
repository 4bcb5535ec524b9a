"""False decisions, coverage and power of the report's hypotheses and leaderboard on simulated studies with a
population truth (xfer.analysis.simulate). Run with the code to measure first on PYTHONPATH:
`PYTHONPATH=$PWD python bench/honesty.py [studies] [rates|SCENARIO…|power|lone]`; prints one markdown row per
scenario (3-seed, cross-validated and seeds-per-n rows get `studies` studies, the 8-seed rows half; `rates` is
3seeds 8seeds cv plateau; `unequal` and `waves` give each n its own seeds)."""
import os
import sys
import time

import numpy as np
from scipy import stats as st

from xfer.analysis.paired import image_scores
from xfer.analysis.simulate import Arm, Design, honesty_rates, null_design, simulate_study
from xfer.analysis.simulate_waves import seeds_draw, waves_draw
from xfer.analysis.stats import Components, variance_components
from xfer.config import SeedWaves

INITS = ("random", "imagenet", "chexpert")


SCENARIOS = {  # key: (row name, design, share of `studies`[, draw])
    "3seeds": ("fixed split, 3 seeds, no effect", lambda: null_design(3, 300, inits=INITS), 1.0),
    "8seeds": ("fixed split, 8 seeds, no effect", lambda: null_design(8, 300, inits=INITS), 0.5),
    "cv": ("3-fold × 3-repeat CV, 1 seed, no effect",
           lambda: null_design(1, 150, folds=3, repeats=3, inits=INITS), 1.0),
    "plateau": ("fixed split, 8 seeds, equal speed, imagenet plateau +0.04",
                lambda: null_design(8, 300, inits=INITS[:2], plateau={"5": 0.04, "80": 0.04}), 0.5),
    "unequal": ("fixed split, 24 seeds at n = 5 and 4 at n = 80, no effect",
                lambda: null_design(24, 300, inits=INITS), 1.0, seeds_draw({"5": 24, "80": 4})),
    "waves": ("seed waves {min: 4, max: 32, until_mde: 0.14}, no effect",
              lambda: null_design(32, 300, inits=INITS), 1.0, waves_draw(SeedWaves(min=4, max=32, until_mde=0.14))),
}


def row(name, r, studies, seconds):
    h2 = r["hypotheses"]
    h2 = h2[h2["comparison"].str.contains("epochs")]
    return (f"| {name} | {studies} | {r['hyp_decisive']:.3f} | {r['hyp_family']:.3f} | {r['hyp_coverage']:.3f} | "
            f"{(h2['verdict'] == 'supported').mean():.3f} | {r['board_decisive']:.3f} | {r['board_table']:.3f} | "
            f"{r['board_coverage']:.3f} | {r['board_auc_coverage']:.3f} | {seconds:.0f} | {os.getloadavg()[0]:.1f} |")


def power(seeds: int, studies: int, planted: dict | None = None):
    """Share of planted effects of 2 × the reported mde (at n = 80, per leaderboard row / H1 at n = 5) decided;
    `planted` {n: Δ} replaces the pilot (to run older code, which reports no leaderboard mde, on the same truth)."""
    pilot = honesty_rates(null_design(seeds, 300, inits=INITS[:2]), max(studies // 3, 5), seed=11)
    mde_board = (pilot["leaderboard"].groupby("n_per_class")["mde"].median() if "mde" in pilot["leaderboard"]
                 else {})
    mde_h1 = pilot["hypotheses"].loc[pilot["hypotheses"]["comparison"].str.contains("test AUC at"), "mde"].median()
    effect = planted or {"80": 2 * mde_board.get("80", np.nan), "5": 2 * mde_h1}
    room = {"80": 0.14, "5": 0.25}  # the simulated AUCs (0.85, 0.70) leave this much room below 1
    effect = {n: min(e, room[n]) for n, e in effect.items() if np.isfinite(e)}
    r = honesty_rates(null_design(seeds, 300, inits=INITS[:2], effect=effect), studies, seed=12)
    board, hyp = r["leaderboard"], r["hypotheses"]
    at80 = board[board["n_per_class"] == "80"]
    h1 = hyp[hyp["comparison"].str.contains("test AUC at")]
    return (f"| {seeds} seeds | {mde_board.get('80', np.nan):.3f} | {effect.get('80', np.nan):.3f} | "
            f"{(at80['verdict'] == 'better').mean():.3f} | {mde_h1:.3f} | {effect.get('5', np.nan):.3f} | "
            f"{(h1['verdict'] == 'supported').mean():.3f} |")


def df_before(c: Components) -> float:
    """The df of main at 4625f3e: the whole per-seed spread at its upper 90% limit (for the before column)."""
    k = c.seeds
    upper = max(c.per_seed * (k - 1) / st.chi2.ppf(0.1, k - 1), c.own_noise) / k
    return (c.shared + upper) ** 2 / (c.shared ** 2 / c.image_df + upper ** 2 / (k - 1)) if upper > 0 else k - 1


def lone(studies: int, levels=(0.75, 0.8, 0.85, 0.9)):
    """A lone image-level comparison (imagenet − random at AUC 0.8, no effect): share of p < α/12 (Holm's first
    step in a family of 12) and of p < 0.05, and the median df, for each df rule on the same simulated studies."""
    print("| seeds, seed SD, test images | studies | df rule | p < α/12 | p < 0.05 | coverage | median df | CPU s |")
    for k, sd, images in [(3, 0.012, 624), (3, 0.03, 624), (3, 0.10, 200), (8, 0.012, 624), (8, 0.03, 624),
                          (8, 0.10, 200)]:
        design = Design({i: {"80": Arm(0.8, seed_sd=sd)} for i in ("random", "imagenet")}, k, images)
        rng, start, n = np.random.default_rng(7), time.process_time(), studies if k == 3 else studies // 2
        parts = []
        for _ in range(n):
            trials, predictions, _ = simulate_study(rng, design)
            scores = image_scores(trials, predictions)
            terms = [(trials["init"] == "imagenet", 1.0), (trials["init"] == "random", -1.0)]
            parts.append(variance_components(scores.cells(trials, terms, ("model", "n_per_class", "seed")),
                                             scores.images))
        seconds = time.process_time() - start
        t = np.array([abs(c.estimate) / np.sqrt(c.variance()) for c in parts])
        rules = [("before (whole spread, 90%)", df_before)] + [
            (f"excess at {level:.0%}", lambda c, level=level: c.df(confidence=level)) for level in levels]
        for name, rule in rules:
            df = np.array([rule(c) for c in parts])
            p = 2 * st.t.sf(t, df)
            print(f"| {k}, {sd}, {images} | {n} | {name} | {np.mean(p < 0.05 / 12):.4f} | {np.mean(p < 0.05):.3f} | "
                  f"{np.mean(p >= 0.05):.3f} | {np.median(df):.1f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    studies = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    which = sys.argv[2:] if len(sys.argv) > 2 else ["rates"]
    if which[0] == "lone":
        lone(studies)
    elif which[0] != "power":
        print("| scenario | studies | hyp false/comparison | hyp false/family | hyp coverage | H2 supported | "
              "board false/row | board false/table | board Δ coverage | board AUC coverage | CPU s | load |")
        for key in ("3seeds", "8seeds", "cv", "plateau") if which == ["rates"] else which:
            name, design, share, *draw = SCENARIOS[key]
            start, n = time.process_time(), int(studies * share)
            r = honesty_rates(design(), n, seed=1, draw=draw[0] if draw else simulate_study)
            print(row(name, r, n, time.process_time() - start), flush=True)
    else:
        print("| design | board mde n=80 | planted | board 'better' | H1 mde n=5 | planted | H1 supported |")
        planted = {3: dict(zip(("80", "5"), map(float, sys.argv[3:5]))) if len(sys.argv) > 4 else None,
                   8: dict(zip(("80", "5"), map(float, sys.argv[5:7]))) if len(sys.argv) > 6 else None}
        for seeds in (3, 8):
            print(power(seeds, studies, planted[seeds]), flush=True)
