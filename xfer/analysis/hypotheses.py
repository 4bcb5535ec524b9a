"""The six Transfusion (Raghu et al. 2019) hypotheses as one family of paired comparisons, Holm-adjusted.

Strategies are asked what they are (`xfer.inits.strategy_info`: pretrained, weights, source domain); no strategy
is named here. Test-AUC comparisons resample test patients and seeds (DeLong influences); convergence and CKA
comparisons use t intervals over seed/repeat clusters.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xfer.analysis.collect import n_order
from xfer.analysis.convergence import epochs_to_common_target
from xfer.analysis.paired import ImageScores, Term, image_scores, present, value_contrasts
from xfer.analysis.stats import (Claim, Effect, cluster_effect, decide, decision_p, fieller_ratio, holm,
                                 image_level_effect, minimum_detectable_effect, no_effect)
from xfer.config import AnalysisConfig
from xfer.inits import strategy_info

PAIR_KEYS = ("model", "n_per_class", "seed", "repeat", "fold")  # those present
SAME_WEIGHTS = "same weights — not compared"
WEIGHTS_HASH = "param.init.weights_hash"  # a hash of the initial weights, where trials log one
ADJUSTMENT = "Holm"

CLAIMS = {
    "H1": "Pretraining helps at small n, and the gain shrinks as n grows",
    "H2": "Pretrained inits converge faster",
    "H3": "Mean-var init (source statistics, no features) recovers part of its source's convergence speed-up",
    "H4": "X-ray-domain sources beat natural-image sources on X-rays; grayscale ≥ RGB pretraining",
    "H5": "Small CBR CNNs from random init perform comparably to ImageNet-size architectures",
    "H6": "Feature reuse: pretrained lower blocks change less than random-init ones, more so than upper blocks",
}


@dataclass(frozen=True)
class Comparison:
    """One planned comparison before the family is adjusted; `fixed` is a verdict reached without testing."""

    hypothesis: str
    comparison: str
    effect: Effect
    power_margin: float  # smallest difference worth detecting, in the effect's unit
    claim: Claim = "greater"
    margin: float = 0.0  # decision threshold of non_inferior / equivalent claims
    note: str = ""
    fixed: str = ""
    why: str = ""


@dataclass(frozen=True)
class Verdict:
    """A settled comparison: the effect, its adjusted p, minimum detectable effect, verdict and reason."""

    hypothesis: str
    claim: str
    comparison: str
    effect: Effect
    verdict: str
    reason: str
    p_value: float = float("nan")
    p_adjusted: float = float("nan")
    mde: float = float("nan")

    def row(self) -> dict:
        e = self.effect
        return {"hypothesis": self.hypothesis, "comparison": self.comparison, "verdict": self.verdict,
                "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high, "unit": e.unit,
                "mde": self.mde, "p": self.p_value, f"p_{ADJUSTMENT.lower()}": self.p_adjusted,
                "test_images": e.images, "patients": e.patients, "seeds": e.clusters, "pairs": e.pairs,
                "reason": self.reason, "claim": self.claim}


def untestable(h: str, comparison: str, why: str, verdict: str = "inconclusive", unit: str = "AUC") -> Comparison:
    """A comparison the study cannot make (missing strategies, predictions or measurements, or same weights)."""
    return Comparison(h, comparison, no_effect(unit), float("nan"), fixed=verdict, why=why)


def infos(trials: pd.DataFrame) -> dict:
    """Init label → its strategy's declared StrategyInfo."""
    first = trials.drop_duplicates("init")
    return {i: strategy_info(s) for i, s in zip(first["init"], first["strategy"])}


def info(trials: pd.DataFrame, init: str):
    return infos(trials[trials["init"] == init])[init]


def inits_where(trials: pd.DataFrame, **declared) -> list[str]:
    """Init labels whose strategy declares the given StrategyInfo values, e.g. pretrained=True."""
    return sorted(i for i, d in infos(trials).items() if all(getattr(d, k) == v for k, v in declared.items()))


def weights_identity(trials: pd.DataFrame, init: str) -> tuple:
    """What fixes an init's starting weights: their logged hash, else how they arise and the resolved source."""
    rows = trials[trials["init"] == init]
    if WEIGHTS_HASH in rows and rows[WEIGHTS_HASH].notna().all():
        return tuple(sorted(rows[WEIGHTS_HASH].unique()))
    source = tuple(sorted(rows.get("param.init.source", pd.Series(["?"])).fillna("?").unique()))
    return info(trials, init).weights, source


def same_weights(trials: pd.DataFrame, a: str, b: str) -> bool:
    return a != b and weights_identity(trials, a) == weights_identity(trials, b)


def is_init(trials: pd.DataFrame, init: str, n=None) -> pd.Series:
    mask = trials["init"] == init
    return mask if n is None else mask & (trials["n_per_class"] == n)


def auc_comparison(h: str, label: str, trials: pd.DataFrame, scores: ImageScores | None, terms: list[Term],
                   keys: tuple[str, ...], cfg: AnalysisConfig, claim: Claim = "greater", note: str = "") -> Comparison:
    """A test-AUC contrast at the image level (patients within class × seed clusters)."""
    if scores is None:
        return untestable(h, label, "needs the trials' test predictions (eval/test_predictions.csv) to resample "
                                    "test images; pass predictions to evaluate_hypotheses")
    cells = scores.cells(trials, terms, keys)
    if not cells:
        return untestable(h, label, "no trials with predictions share " + ", ".join(present(trials, keys)))
    margin = cfg.equivalence_margin
    return Comparison(h, label, image_level_effect(cells, scores.images), margin, claim,
                      margin if claim != "greater" else 0.0, note)


def value_comparison(h: str, label: str, trials: pd.DataFrame, column: str, terms: list[Term], unit: str,
                     power_margin: float, note: str = "") -> Comparison:
    """A contrast of a per-trial value (epochs, CKA), t interval over seed clusters."""
    values, clusters = value_contrasts(trials, column, terms, PAIR_KEYS)
    return Comparison(h, label, cluster_effect(values, clusters, unit), power_margin, note=note)


def random_and_pretrained(trials: pd.DataFrame) -> tuple[str | None, list[str]]:
    """The framework-init baseline (None if absent) and the pretrained inits."""
    baselines = inits_where(trials, weights="default")
    return (baselines[0] if baselines else None), inits_where(trials, pretrained=True)


def pretraining_helps_small_n(trials, scores, cfg) -> list[Comparison]:
    """H1: pretrained − random test AUC at the smallest n, and that gain minus the gain at the largest n."""
    base, pretrained = random_and_pretrained(trials)
    if base is None or not pretrained:
        return [untestable("H1", "pretrained − random test AUC", "needs random-init and pretrained trials")]
    ns = sorted(trials["n_per_class"].unique(), key=n_order)
    small, large = ns[0], ns[-1]
    keys = ("model", "seed", "repeat")
    out = []
    for init in pretrained:
        if same_weights(trials, init, base):
            out.append(untestable("H1", f"{init} − {base}", SAME_WEIGHTS, SAME_WEIGHTS))
            continue
        gain = [(is_init(trials, init, small), 1.0), (is_init(trials, base, small), -1.0)]
        out.append(auc_comparison("H1", f"{init} − {base}, test AUC at n={small}", trials, scores, gain, keys, cfg))
        label = f"gain of {init} at n={small} − gain at n={large}"
        if small == large:
            out.append(untestable("H1", label, "the study has only one n_per_class"))
            continue
        terms = [(is_init(trials, init, small), 1.0), (is_init(trials, base, small), -1.0),
                 (is_init(trials, init, large), -1.0), (is_init(trials, base, large), 1.0)]
        out.append(auc_comparison("H1", label, trials, scores, terms, keys, cfg))
    return out


def censored_note(trials: pd.DataFrame, inits: list[str]) -> str:
    if "reached_target" not in trials:
        return ""
    never = [f"{i}: {int((~trials.loc[trials['init'] == i, 'reached_target'].astype(bool)).sum())}" for i in inits]
    return "runs never reaching the target (censored as slowest): " + ", ".join(never)


def pretrained_converge_faster(trials, cfg) -> list[Comparison]:
    """H2: random − pretrained epochs to the common target (positive = pretrained faster)."""
    base, pretrained = random_and_pretrained(trials)
    label = f"epochs to {cfg.convergence_fraction:.0%} of the best strategy's val AUC gain over 0.5"
    if base is None or not pretrained:
        return [untestable("H2", f"random − pretrained {label}", "needs random-init and pretrained trials",
                           unit="epochs")]
    if "epochs_to_target" not in trials:
        return [untestable("H2", f"random − pretrained {label}", "needs val-AUC histories", unit="epochs")]
    return [value_comparison("H2", f"{base} − {init}, {label}", trials, "epochs_to_target",
                             [(is_init(trials, base), 1.0), (is_init(trials, init), -1.0)], "epochs",
                             cfg.convergence_margin, censored_note(trials, [base, init])) for init in pretrained]


def meanvar_source(trials: pd.DataFrame, drawn: str) -> str | None:
    """The pretrained init with the same resolved source as a statistics-drawing init (a natural-domain one first)."""
    pretrained = inits_where(trials, pretrained=True, weights="copied")
    source = weights_identity(trials, drawn)[-1]
    same = [i for i in pretrained if weights_identity(trials, i)[-1] == source]
    natural = inits_where(trials, pretrained=True, domain=info(trials, drawn).domain)
    ranked = sorted(same or natural, key=lambda i: i not in natural)
    return ranked[0] if ranked else None


def recovered_share(trials: pd.DataFrame, base: str, drawn: str, source: str) -> str:
    """How much of the source's speed-up (random − source epochs) the drawn init recovers, with Fieller's CI."""
    by_cluster = []
    for init in (drawn, source):
        values, clusters = value_contrasts(trials, "epochs_to_target",
                                           [(is_init(trials, base), 1.0), (is_init(trials, init), -1.0)], PAIR_KEYS)
        by_cluster.append(pd.Series(values, index=pd.MultiIndex.from_tuples(clusters)).groupby(level=list(
            range(len(clusters[0])))).mean() if clusters else pd.Series(dtype=float))
    both = pd.concat(by_cluster, axis=1).dropna()
    if len(both) < 2 or both[1].mean() <= 0:
        return f"{source} itself is not faster than {base} here: no speed-up to recover"
    share, low, high = fieller_ratio(both[0].to_numpy(), both[1].to_numpy())
    return (f"recovers {share:.0%} (95% CI {low:.0%} to {high:.0%}, Fieller) of {source}'s speed-up of "
            f"{both[1].mean():.2g} epochs")


def meanvar_recovers_speedup(trials, cfg) -> list[Comparison]:
    """H3: random − drawn-init epochs to the common target (positive = faster), with the share of the
    source's speed-up it recovers."""
    base, _ = random_and_pretrained(trials)
    drawn_inits = inits_where(trials, weights="drawn")
    label = f"epochs to {cfg.convergence_fraction:.0%} of the best strategy's val AUC gain over 0.5"
    if base is None or not drawn_inits or "epochs_to_target" not in trials:
        return [untestable("H3", f"random − mean-var {label}",
                           "needs random-init and mean-var trials with val-AUC histories", unit="epochs")]
    out = []
    for drawn in drawn_inits:
        source = meanvar_source(trials, drawn)
        note = recovered_share(trials, base, drawn, source) if source else "its source init is not in the study"
        out.append(value_comparison("H3", f"{base} − {drawn}, {label}", trials, "epochs_to_target",
                                    [(is_init(trials, base), 1.0), (is_init(trials, drawn), -1.0)], "epochs",
                                    cfg.convergence_margin, note))
    return out


def xray_sources_win(trials, scores, cfg) -> list[Comparison]:
    """H4: x-ray − natural-source test AUC (> 0), grayscale-natural − natural test AUC (non-inferior)."""
    natural = inits_where(trials, pretrained=True, domain="natural")
    keys = ("model", "n_per_class", "seed", "repeat")
    out = []
    for domain, claim in (("xray", "greater"), ("grayscale_natural", "non_inferior")):
        others = inits_where(trials, pretrained=True, domain=domain)
        if not others or not natural:
            out.append(untestable("H4", f"{domain} − natural source test AUC", f"needs {domain}- and natural-source "
                                                                               "pretrained trials"))
        for init in others:
            for ref in natural:
                label = f"{init} − {ref}, test AUC"
                if same_weights(trials, init, ref):
                    out.append(untestable("H4", label, SAME_WEIGHTS, SAME_WEIGHTS))
                    continue
                out.append(auc_comparison("H4", label, trials, scores,
                                          [(is_init(trials, init), 1.0), (is_init(trials, ref), -1.0)], keys, cfg,
                                          claim))
    return out


def is_cbr(model: str) -> bool:
    """True for the small Transfusion CBR CNNs (family "cbr" in the model registry)."""
    from xfer.models import model_spec

    return model_spec(model).family == "cbr"


def small_cnns_comparable(trials, scores, cfg) -> list[Comparison]:
    """H5: framework-init CBR − large model test AUC, equivalent within ±margin (paired on n and seed)."""
    base, _ = random_and_pretrained(trials)
    random = trials[trials["init"] == base] if base else trials.iloc[:0]
    models = sorted(random["model"].unique())
    cbr = [m for m in models if is_cbr(m)]
    large = [m for m in models if not is_cbr(m)]
    if not cbr or not large:
        return [untestable("H5", "CBR − large model test AUC (random init)",
                           "needs random-init trials of a CBR model and of an ImageNet-size model")]
    keys = ("init", "n_per_class", "seed", "repeat")
    return [auc_comparison("H5", f"{small} − {big}, test AUC (random init)", random, scores,
                           [(random["model"] == small, 1.0), (random["model"] == big, -1.0)], keys, cfg, "equivalent")
            for small in cbr for big in large]


def reuse_by_half(cka: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """Per trial: mean CKA(initial, fine-tuned) over the lower and the upper half of its blocks."""
    rows = []
    for run_id, run in cka.groupby("run_id"):
        values = run.sort_values("depth")["cka"].to_numpy()
        half = len(values) // 2
        if half:
            rows.append({"run_id": run_id, "cka_lower": values[:half].mean(), "cka_upper": values[-half:].mean()})
    halves = pd.DataFrame(rows, columns=["run_id", "cka_lower", "cka_upper"])
    return trials.merge(halves, on="run_id")


def floor_note(floor: pd.DataFrame | None) -> str:
    if floor is None or floor.empty:
        return "floor (CKA of two independent random inits) not measured"
    parts = []
    for model, f in floor.groupby("model"):
        values = f.sort_values("depth")["cka"].to_numpy()
        half = max(len(values) // 2, 1)
        parts.append(f"{model} lower {values[:half].mean():.2f}, upper {values[-half:].mean():.2f}")
    return "floor (CKA of two independent random inits): " + "; ".join(parts)


def lower_layers_change_less(trials, cka, cfg, floor=None) -> list[Comparison]:
    """H6: Δ = CKA(initial, fine-tuned) of a pretrained init − that of random init, paired on model, n and seed:
    Δ(lower half of blocks) > 0, and Δ(lower) − Δ(upper) > 0."""
    base, pretrained = random_and_pretrained(trials)
    if cka.empty or base is None or not pretrained:
        why = "no CKA was measured (no checkpoints or analysis images)" if cka.empty else "needs random-init trials"
        return [untestable("H6", "Δ CKA(initial, fine-tuned), pretrained − random", why, unit="CKA")]
    halves = reuse_by_half(cka[["run_id", "depth", "cka"]], trials)
    halves = halves.assign(cka_gap=halves["cka_lower"] - halves["cka_upper"])
    out, note = [], floor_note(floor)
    for init in pretrained:
        terms = [(is_init(halves, init), 1.0), (is_init(halves, base), -1.0)]
        out.append(value_comparison("H6", f"{init} − {base}, Δ CKA of the lower blocks", halves, "cka_lower", terms,
                                    "CKA", cfg.cka_margin, note))
        out.append(value_comparison("H6", f"{init} − {base}, Δ(lower) − Δ(upper) CKA", halves, "cka_gap", terms,
                                    "CKA", cfg.cka_margin, note))
    return out


def settle(comparisons: list[Comparison], cfg: AnalysisConfig) -> list[Verdict]:
    """Holm-adjust the family's p-values and give each comparison its verdict; minimum detectable effects are
    computed at the Bonferroni level α / (tested comparisons), the level Holm's first step uses."""
    tested = [c for c in comparisons if not c.fixed and c.effect.clusters >= cfg.min_seeds]
    p = {id(c): decision_p(c.effect, c.claim, c.margin)[0] for c in tested}
    adjusted = dict(zip(p, holm(list(p.values()))))
    level = cfg.alpha / max(sum(np.isfinite(v) for v in p.values()), 1)
    out = []
    for c in comparisons:
        claim = CLAIMS[c.hypothesis]
        if c.fixed:
            out.append(Verdict(c.hypothesis, claim, c.comparison, c.effect, c.fixed, c.why))
            continue
        mde = minimum_detectable_effect(c.effect, level, cfg.power)
        pa = adjusted.get(id(c), float("nan"))
        verdict, reason = decide(c.effect, c.claim, c.margin, pa, mde, c.power_margin, cfg.alpha, cfg.min_seeds,
                                 cfg.power)
        out.append(Verdict(c.hypothesis, claim, c.comparison, c.effect, verdict,
                           f"{reason}{'; ' + c.note if c.note else ''}", p.get(id(c), float("nan")), pa, mde))
    return out


def evaluate_hypotheses(trials: pd.DataFrame, cka: pd.DataFrame, cfg: AnalysisConfig,
                        predictions: dict[str, pd.DataFrame] | None = None, histories: pd.DataFrame | None = None,
                        cka_floor: pd.DataFrame | None = None) -> list[Verdict]:
    """All six hypotheses as one Holm-adjusted family. `predictions`: run_id → test predictions (test AUC
    comparisons need them); `histories`: per-epoch val AUC (convergence); `cka`: one row per run × block."""
    if histories is not None and "epochs_to_target" not in trials:
        trials = trials.merge(epochs_to_common_target(histories, trials, cfg.convergence_fraction), on="run_id",
                              how="left")
    scores = image_scores(trials, predictions)
    return settle([*pretraining_helps_small_n(trials, scores, cfg), *pretrained_converge_faster(trials, cfg),
                   *meanvar_recovers_speedup(trials, cfg), *xray_sources_win(trials, scores, cfg),
                   *small_cnns_comparable(trials, scores, cfg), *lower_layers_change_less(trials, cka, cfg, cka_floor)],
                  cfg)


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([v.row() for v in verdicts])


def study_size(verdicts: list[Verdict]) -> dict:
    """The largest test set (images, patients) and seed count any comparison rests on."""
    effects = [v.effect for v in verdicts]
    return {"images": max((e.images for e in effects), default=0),
            "patients": max((e.patients for e in effects), default=0),
            "seeds": max((e.clusters for e in effects), default=0)}
