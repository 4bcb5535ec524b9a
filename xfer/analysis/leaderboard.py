"""The study's answer in one table: test AUC with a CI per strategy × model × n (× swept train values), paired vs random."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from xfer.analysis.collect import FOLD_TAGS, sort_by_n
from xfer.analysis.convergence import collapsed
from xfer.analysis.paired import image_scores, positive_class, swept_columns
from xfer.analysis.pooled import arm_aucs
from xfer.analysis.stats import Effect, decision_p, holm, image_level_effect, minimum_detectable_effect, t_effect
from xfer.inits import strategy_info
from xfer.record import prob_classes

SATURATED_VAL_AUC = 0.999  # a best validation AUC this high cannot rank checkpoints: early stopping picks at random
GROUP = ("init", "model", "n_per_class")
ARM_MATCH = ("model", "n_per_class", "seed", "repeat")  # an arm: one seed × repeat, its folds pooled


def t_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, low, high, two-sided p of mean 0) of a t interval over independent values (seeds)."""
    values = np.asarray(values, float)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return (np.nan,) * 4
    mean = float(values.mean())
    if len(values) < 2:
        return mean, np.nan, np.nan, np.nan
    se = values.std(ddof=1) / np.sqrt(len(values))
    if se == 0:
        return mean, mean, mean, (0.0 if mean else 1.0)
    half = scipy_stats.t.ppf(0.5 + level / 2, len(values) - 1) * se
    return mean, mean - half, mean + half, float(2 * scipy_stats.t.sf(abs(mean / se), len(values) - 1))


def is_baseline(strategy: str) -> bool:
    """The strategy the others are compared with: the registry's untrained init (not pretrained, default weights)."""
    return strategy_info(strategy).untrained


def external_columns(trials: pd.DataFrame) -> list[str]:
    """Per external set (`external/<name>/…`, xfer.external), the metric it measures: its AUC where logged (a
    two-class set), else its sensitivity and/or specificity (a one-class set measures only one of them)."""
    names = sorted({c.split("/")[1] for c in trials.columns if c.startswith("external/") and c.count("/") == 2})
    out = []
    for name in names:
        logged = [f"external/{name}/{m}" for m in ("auc", "sensitivity", "specificity")
                  if f"external/{name}/{m}" in trials and trials[f"external/{name}/{m}"].notna().any()]
        out += logged[:1] if logged and logged[0].endswith("/auc") else logged
    return out


def arm_table(trials: pd.DataFrame, keys: list[str], predictions: dict | None = None) -> tuple[pd.DataFrame, str]:
    """One row per arm (keys × seed × repeat) and how its test AUC was made: with cross-validation the AUC of its
    folds' pooled out-of-fold predictions (each image once; the mean of fold AUCs where predictions are missing),
    without it the trial itself. Metrics other than test AUC are means over the arm's folds."""
    if "fold" not in trials:
        return trials.assign(_trials=1, _saturated=trials["best_val_auc"] >= SATURATED_VAL_AUC), "one run per arm"
    arm = [*keys, "seed", *[k for k in FOLD_TAGS if k != "fold" and k in trials]]
    external = external_columns(trials)
    n_test = pd.to_numeric(trials.get("param.n_test", pd.Series(np.nan, index=trials.index)), errors="coerce")
    arms = (trials.assign(_n_test=n_test, _saturated=trials["best_val_auc"] >= SATURATED_VAL_AUC)
            .groupby(arm, dropna=False)
            .agg(strategy=("strategy", "first"), test_auc=("test_auc", "mean"), best_val_auc=("best_val_auc", "mean"),
                 _saturated=("_saturated", "sum"), _trials=("run_id", "size"),
                 _n_test=("_n_test", lambda n: n.sum(min_count=1)),
                 **{c: (c, "mean") for c in external}).reset_index())
    arms["param.n_test"] = arms.pop("_n_test")
    pooled = arm_aucs(trials, predictions or {}, positive_class(trials, classes_of(predictions or {})), arm)
    arms["test_auc"] = arms.join(pooled.rename("_pooled"), on=arm)["_pooled"].fillna(arms["test_auc"])
    how = ("pooled out-of-fold predictions" if pooled.notna().all() else
           "pooled out-of-fold predictions where logged, else the mean of its fold AUCs")
    return arms, how


def classes_of(predictions: dict) -> tuple[str, ...]:
    first = next(iter(predictions.values()), pd.DataFrame())
    return prob_classes(first)


def paired_differences(arms: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Per arm, test AUC minus the baseline-init arm of the same model, n, seed (repeat) and swept values."""
    match = [k for k in keys if k != "init"] + [c for c in ("seed", "fold", "repeat") if c in arms.columns]
    baseline = arms["strategy"].map(is_baseline)
    base = arms[baseline].groupby(match, dropna=False)["test_auc"].mean()
    joined = arms.join(base.rename("baseline_auc"), on=match)
    return joined["test_auc"] - joined["baseline_auc"]


IMAGE_LEVEL = "paired test images (DeLong) + seeds, Holm over this table"
CONDITIONAL = "t over arms: conditional on this test set, no verdict"


def arm_effect(trials: pd.DataFrame, scores, terms: list) -> Effect | None:
    """The image-level Effect of a contrast of arms (a single arm: its AUC), seeds × repeats as clusters; None
    without predictions for it."""
    if scores is None:
        return None
    cells = scores.cells(trials, terms, ARM_MATCH)
    return image_level_effect(cells, scores.images) if cells else None


def baseline_terms(trials: pd.DataFrame, row: pd.Series, keys: list[str]) -> list | None:
    """(row's trials, +1), (the baseline init's trials of the same model, n and swept values, −1); None where the
    row is the baseline or the study has none."""
    baselines = sorted(trials.loc[trials["strategy"].map(is_baseline), "init"].unique())
    if not baselines or row["init"] in baselines:
        return None
    same = np.logical_and.reduce([trials[k].astype(str) == str(row[k]) for k in keys if k != "init"])
    return [(same & (trials["init"] == row["init"]), 1.0), (same & (trials["init"] == baselines[0]), -1.0)]


def leaderboard(trials: pd.DataFrame, level: float = 0.95, predictions: dict | None = None,
                alpha: float = 0.05, power: float = 0.8) -> pd.DataFrame:
    """One row per init × model × n (× swept values): test AUC and Δ vs the untrained baseline, each with an
    interval that carries both the test-set and the seed variance (paired test images + seed clusters) and a
    Holm-adjusted verdict over the table; without predictions, a t interval over arms that is conditional on this
    test set and decides nothing. Also: best validation AUC (how many trials saturated it), runs that never
    learned, each external set's metric, test-set size."""
    keys = [*GROUP, *swept_columns(trials)]
    arms, how = arm_table(trials, keys, predictions)
    arms = arms.assign(_diff=paired_differences(arms, keys))
    scores = image_scores(trials, predictions)
    never = trials.assign(_collapsed=collapsed(trials)).groupby(keys, dropna=False)["_collapsed"].sum()
    rows = []
    for values, g in arms.groupby(keys, dropna=False):
        row = dict(zip(keys, values))
        mask = np.logical_and.reduce([trials[k].astype(str) == str(v) for k, v in row.items()])
        auc = arm_effect(trials, scores, [(mask, 1.0)])
        if auc is not None:
            mean, low, high = auc.estimate, auc.ci_low, auc.ci_high
        else:
            mean, low, high, _ = t_interval(g["test_auc"], level)
        terms = baseline_terms(trials, pd.Series(row), keys)
        diff = arm_effect(trials, scores, terms) if terms else None
        if diff is not None:
            p = decision_p(diff, "greater", 0.0)[0]
            d, d_low, d_high, se, df, inference = (diff.estimate, diff.ci_low, diff.ci_high, diff.se, diff.df,
                                                   IMAGE_LEVEL)
        elif terms:
            (d, d_low, d_high, _), p, se, df = t_interval(g["_diff"], level), np.nan, np.nan, np.nan
            inference = CONDITIONAL
        else:
            d = d_low = d_high = p = se = df = np.nan
            inference = ""
        row.update(runs=len(g), trials=int(g["_trials"].sum()), test_auc=mean, ci_low=max(low, 0.0),
                   ci_high=min(high, 1.0), diff_vs_random=d, diff_ci_low=d_low, diff_ci_high=d_high, p=p,
                   _se=se, _df=df, inference=inference, best_val_auc=g["best_val_auc"].mean(),
                   saturated_val=int(g["_saturated"].sum()), collapsed=int(never.get(values, 0)),
                   n_test=int(pd.to_numeric(g.get("param.n_test"), errors="coerce").max())
                   if "param.n_test" in g else np.nan, arm=how)
        row.update({c: g[c].mean() for c in external_columns(arms)})
        rows.append(row)
    board = pd.DataFrame(rows)
    tested = board["p"].notna()
    board["p_holm"] = np.nan
    if tested.any():
        board.loc[tested, "p_holm"] = holm(board.loc[tested, "p"].to_numpy())
    first_step = alpha / max(int(tested.sum()), 1)
    board["mde"] = [minimum_detectable_effect(t_effect(0.0, se, df, 0, 0), first_step, power) if ok else np.nan
                    for se, df, ok in zip(board["_se"], board["_df"], tested)]
    board["verdict"] = [verdict(d, p, alpha, how) for d, p, how in
                        zip(board["diff_vs_random"], board["p_holm"], board["inference"])]
    board = board.drop(columns=["_se", "_df"]).rename(columns={c: c[len("param."):] for c in keys
                                                               if c.startswith("param.")})
    return sort_by_n(board, ("model", "init", *[c[len("param."):] for c in keys[3:]]))


def external_label(column: str) -> str:
    """'external/hannover/sensitivity' → 'hannover sensitivity' ('AUC' for auc)."""
    _, name, metric = column.split("/")
    return f"{name} {'AUC' if metric == 'auc' else metric}"


def verdict(diff: float, p_adjusted: float, alpha: float = 0.05, inference: str = IMAGE_LEVEL) -> str:
    """'better' / 'worse' than random when the Holm-adjusted p is below alpha, else 'no difference shown'; an
    interval conditional on this test set gets no verdict."""
    if inference == CONDITIONAL:
        return "conditional on this test set"
    if np.isnan(p_adjusted):
        return "baseline" if np.isnan(diff) else "not decided (too few seeds or zero spread)"
    if p_adjusted >= alpha:
        return "no difference shown"
    return "better" if diff > 0 else "worse"


def leaderboard_lines(board: pd.DataFrame) -> list[str]:
    """The leaderboard as aligned console lines, best test AUC first within each model and n."""
    extra = [c for c in board.columns if c.startswith("train.")]
    external_sets = [c for c in board.columns if c.startswith("external/")]
    lines = []
    for _, r in board.iterrows():
        what = " ".join([f"{r['init']:<20}", f"{r['model']:<12}", f"n={r['n_per_class']:<5}",
                         *[f"{c[len('train.'):]}={r[c]}" for c in extra]])
        ci = f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if not np.isnan(r["ci_low"]) else "[–]"
        diff = (f"Δ vs random {r['diff_vs_random']:+.3f} ({r['verdict']})"
                if not np.isnan(r["diff_vs_random"]) else f"({r['verdict']})")
        external = "".join(f"  {external_label(c)} {r[c]:.3f}" for c in external_sets if not np.isnan(r[c]))
        never = f"  never learned {r['collapsed']}/{r['trials']} (warning)" if r.get("collapsed", 0) else ""
        lines.append(f"{what}  test AUC {r['test_auc']:.3f} {ci}  {diff}{external}  runs={r['runs']}{never}")
    return lines


def leaderboard_metrics(board: pd.DataFrame) -> dict[str, float]:
    """The leaderboard as MLflow metric names (`leaderboard/<init>/<model>/n_<n>/test_auc`, …; MLflow allows no '=') and values."""
    extra = [c for c in board.columns if c.startswith("train.")]
    out = {}
    for _, r in board.iterrows():
        name = "/".join(["leaderboard", str(r["init"]), str(r["model"]), f"n_{r['n_per_class']}",
                         *[f"{c}_{r[c]}" for c in extra]])
        for column in ("test_auc", "ci_low", "ci_high", "diff_vs_random", "diff_ci_low", "diff_ci_high", "p_holm",
                       "collapsed",
                       *[c for c in board.columns if c.startswith("external/")]):
            if column in r and not np.isnan(r[column]):
                out[f"{name}/{column}"] = float(r[column])
    return out


def with_report_verdicts(board: pd.DataFrame, verdicts: list) -> pd.DataFrame:
    """Where the report's H1 comparisons (the same image-level inference, Holm over the whole report) cover a
    row's init at its n, show their Δ, CI, adjusted verdict and minimum detectable effect, so a row and its
    hypothesis never disagree."""
    for v in verdicts:
        if v.hypothesis != "H1" or "n=" not in v.comparison or not np.isfinite(v.effect.estimate):
            continue
        init, n = v.comparison.split(" − ")[0], v.comparison.rsplit("n=", 1)[1]
        rows = (board["init"] == init) & (board["n_per_class"].astype(str) == n)
        board.loc[rows, ["diff_vs_random", "diff_ci_low", "diff_ci_high", "p_holm", "mde"]] = \
            [v.effect.estimate, v.effect.ci_low, v.effect.ci_high, v.p_adjusted, v.mde]
        board.loc[rows, ["verdict", "inference"]] = [v.verdict, "paired test images (DeLong) + seeds, Holm over report"]
    return board
