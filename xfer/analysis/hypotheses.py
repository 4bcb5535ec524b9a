"""The six Transfusion (Raghu et al. 2019) hypotheses, each tested on paired trials across seeds."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from xfer.analysis.collect import n_order
from xfer.analysis.convergence import FRACTIONS, fraction_column
from xfer.analysis.stats import Claim, Effect, decide, paired_effect
from xfer.config import AnalysisConfig

NOT_PRETRAINED = ("random", "meanvar")
PAIR_KEYS = ("model", "n_per_class", "seed")


@dataclass(frozen=True)
class Verdict:
    """One tested comparison: what was claimed, the paired effect, and supported / not supported / inconclusive."""

    hypothesis: str
    claim: str
    comparison: str
    effect: Effect
    verdict: str
    reason: str

    def row(self) -> dict:
        return {"hypothesis": self.hypothesis, "claim": self.claim, "comparison": self.comparison,
                **asdict(self.effect), "verdict": self.verdict, "reason": self.reason}


CLAIMS = {
    "H1": "Pretraining helps at small n, and the gain shrinks as n grows",
    "H2": "Pretrained inits converge faster",
    "H3": "meanvar recovers part of its source's convergence speed-up without reusing features",
    "H4": "X-ray-domain sources beat ImageNet-style sources on X-rays; grayscale ≥ RGB pretraining",
    "H5": "Small CBR CNNs from random init perform comparably to ImageNet-size architectures",
    "H6": "Feature reuse: lower layers change less than upper layers during fine-tuning",
}


def untestable(h: str, comparison: str, why: str) -> Verdict:
    """A verdict for a comparison the study cannot make (missing strategies, models or measurements)."""
    return Verdict(h, CLAIMS[h], comparison, paired_effect(np.array([])), "inconclusive", why)


def judge(h: str, comparison: str, diffs: np.ndarray, cfg: AnalysisConfig, claim: Claim = "greater",
          margin: float = 0.0, note: str = "") -> Verdict:
    """Bootstrap the paired differences and apply the verdict rule."""
    effect = paired_effect(diffs, cfg.bootstrap_samples, cfg.bootstrap_seed)
    verdict, reason = decide(effect, claim, margin)
    return Verdict(h, CLAIMS[h], comparison, effect, verdict, f"{reason}{'; ' + note if note else ''}")


def paired(trials: pd.DataFrame, value: str, a: pd.Series, b: pd.Series, keys=PAIR_KEYS) -> pd.DataFrame:
    """Trials of group a and b matched on `keys`, with `diff` = a − b of `value` (none if it was never logged)."""
    if value not in trials:
        return pd.DataFrame(columns=[*keys, f"{value}_a", f"{value}_b", "diff"])
    left = trials.loc[a, [*keys, value]].dropna()
    right = trials.loc[b, [*keys, value]].dropna()
    m = left.merge(right, on=list(keys), suffixes=("_a", "_b"))
    return m.assign(diff=m[f"{value}_a"] - m[f"{value}_b"])


def inits_with(trials: pd.DataFrame, strategies: tuple[str, ...], exclude: bool = False) -> list[str]:
    """Init labels whose strategy is (or, with exclude, is not) in `strategies`."""
    hit = trials["strategy"].isin(strategies)
    return sorted(trials.loc[~hit if exclude else hit, "init"].unique())


def random_and_pretrained(trials: pd.DataFrame) -> tuple[str | None, list[str]]:
    """The random-init baseline label (None if absent) and the pretrained init labels (not random / meanvar)."""
    randoms = inits_with(trials, ("random",))
    return (randoms[0] if randoms else None), inits_with(trials, NOT_PRETRAINED, exclude=True)


def pretraining_helps_small_n(trials: pd.DataFrame, cfg: AnalysisConfig) -> list[Verdict]:
    """H1: pretrained − random test AUC at the smallest n, and that gain minus the gain at the largest n."""
    base, pretrained = random_and_pretrained(trials)
    if base is None or not pretrained:
        return [untestable("H1", "pretrained − random test AUC", "needs random-init and pretrained trials")]
    out = []
    for init in pretrained:
        p = paired(trials, "test_auc", trials["init"] == init, trials["init"] == base)
        ns = sorted(p["n_per_class"].unique(), key=n_order)
        if not ns:
            out.append(untestable("H1", f"{init} − {base}", "no trial pairs share model, n and seed"))
            continue
        small, large = ns[0], ns[-1]
        out.append(judge("H1", f"{init} − {base}, test AUC at n={small}",
                         p.loc[p["n_per_class"] == small, "diff"].to_numpy(), cfg))
        label = f"gain of {init} at n={small} − gain at n={large}"
        if small == large:
            out.append(untestable("H1", label, "the study has only one n_per_class"))
            continue
        gains = p.pivot_table(index=["model", "seed"], columns="n_per_class", values="diff")
        out.append(judge("H1", label, (gains[small] - gains[large]).dropna().to_numpy(), cfg))
    return out


def pretrained_converge_faster(trials: pd.DataFrame, cfg: AnalysisConfig) -> list[Verdict]:
    """H2: random − pretrained epochs to 90% / 95% of the run's final val AUC (positive = pretrained faster)."""
    base, pretrained = random_and_pretrained(trials)
    if base is None or not pretrained:
        return [untestable("H2", "random − pretrained epochs to 90%", "needs random-init and pretrained trials")]
    out = []
    for init in pretrained:
        for f in FRACTIONS:
            p = paired(trials, fraction_column(f), trials["init"] == base, trials["init"] == init)
            comparison = f"{base} − {init}, epochs to {f:.0%} of final val AUC"
            out.append(judge("H2", comparison, p["diff"].to_numpy(), cfg))
    return out


def meanvar_source(trials: pd.DataFrame, meanvar: str) -> str | None:
    """The pretrained init whose weights a meanvar init drew its statistics from: same `init.source`
    (an imagenet-strategy one first), else the study's imagenet init."""
    pretrained = inits_with(trials, NOT_PRETRAINED, exclude=True)
    imagenet = [i for i in pretrained if i in inits_with(trials, ("imagenet",))]
    if "param.init.source" in trials:
        source = trials.loc[trials["init"] == meanvar, "param.init.source"].iloc[0]
        same = [i for i in pretrained if (trials.loc[trials["init"] == i, "param.init.source"] == source).any()]
        if same:
            return sorted(same, key=lambda i: i not in imagenet)[0]
    return imagenet[0] if imagenet else None


def meanvar_recovers_speedup(trials: pd.DataFrame, cfg: AnalysisConfig) -> list[Verdict]:
    """H3: random − meanvar epochs (positive = faster), with the share of the source's speed-up recovered."""
    base, _ = random_and_pretrained(trials)
    meanvars = inits_with(trials, ("meanvar",))
    if base is None or not meanvars:
        return [untestable("H3", "random − meanvar epochs to 90%", "needs random-init and meanvar trials")]
    out = []
    for mv in meanvars:
        source = meanvar_source(trials, mv)
        for f in FRACTIONS:
            col = fraction_column(f)
            p = paired(trials, col, trials["init"] == base, trials["init"] == mv)
            note = ""
            if source is not None:
                s = paired(trials, col, trials["init"] == base, trials["init"] == source)
                both = p.merge(s, on=list(PAIR_KEYS), suffixes=("_mv", "_src"))
                if len(both) and both["diff_src"].mean() > 0:
                    share = both["diff_mv"].mean() / both["diff_src"].mean()
                    note = f"recovers {share:.0%} of {source}'s speed-up ({both['diff_src'].mean():.2g} epochs)"
                elif len(both):
                    note = f"{source} itself is not faster than {base} here"
            out.append(judge("H3", f"{base} − {mv}, epochs to {f:.0%} of final val AUC", p["diff"].to_numpy(), cfg,
                             note=note))
    return out


def xray_sources_win(trials: pd.DataFrame, cfg: AnalysisConfig,
                     margin: float) -> list[Verdict]:
    """H4: chexpert − imagenet test AUC (> 0), grayscale_imagenet − imagenet test AUC (non-inferior)."""
    imagenet = inits_with(trials, ("imagenet",))
    out = []
    for strategy, claim in (("chexpert", "greater"), ("grayscale_imagenet", "non_inferior")):
        others = inits_with(trials, (strategy,))
        if not others or not imagenet:
            out.append(untestable("H4", f"{strategy} − imagenet test AUC", f"needs {strategy} and imagenet trials"))
        for init in others:
            for ref in imagenet:
                p = paired(trials, "test_auc", trials["init"] == init, trials["init"] == ref)
                out.append(judge("H4", f"{init} − {ref}, test AUC", p["diff"].to_numpy(), cfg, claim, margin))
    return out


def is_cbr(model: str) -> bool:
    """True for the small Transfusion CBR CNNs (family "cbr" in the model registry)."""
    from xfer.models import model_spec

    return model_spec(model).family == "cbr"


def small_cnns_comparable(trials: pd.DataFrame, cfg: AnalysisConfig,
                          margin: float) -> list[Verdict]:
    """H5: random-init CBR − large model test AUC, equivalent within ±margin (paired on n and seed)."""
    random = trials[trials["strategy"] == "random"]
    models = sorted(random["model"].unique())
    cbr = [m for m in models if is_cbr(m)]
    large = [m for m in models if not is_cbr(m)]
    if not cbr or not large:
        return [untestable("H5", "CBR − large model test AUC (random init)",
                           "needs random-init trials of a CBR model and of an ImageNet-size model")]
    keys = ("init", "n_per_class", "seed")
    return [judge("H5", f"{small} − {big}, test AUC (random init)",
                  paired(random, "test_auc", random["model"] == small, random["model"] == big, keys)["diff"].to_numpy(),
                  cfg, "equivalent", margin)
            for small in cbr for big in large]


def lower_layers_change_less(cka: pd.DataFrame, cfg: AnalysisConfig) -> list[Verdict]:
    """H6: per trial, mean CKA(initial, fine-tuned) of the lower half of blocks − that of the upper half."""
    if cka.empty:
        return [untestable("H6", "lower − upper half CKA", "no CKA was measured (no checkpoints or analysis images)")]
    out = []
    for init, group in cka.groupby("init"):
        diffs = []
        for _, run in group.groupby("run_id"):
            values = run.sort_values("depth")["cka"].to_numpy()
            half = len(values) // 2
            if half:
                diffs.append(values[:half].mean() - values[-half:].mean())
        comparison = f"{init}: lower − upper half of blocks, CKA(initial, fine-tuned)"
        out.append(judge("H6", comparison, np.array(diffs), cfg))
    return out


def evaluate_hypotheses(trials: pd.DataFrame, cka: pd.DataFrame, cfg: AnalysisConfig) -> list[Verdict]:
    """All six hypotheses; `trials` carries test_auc and epochs_to_* columns, `cka` one row per run × block."""
    margin = cfg.equivalence_margin
    return [*pretraining_helps_small_n(trials, cfg), *pretrained_converge_faster(trials, cfg),
            *meanvar_recovers_speedup(trials, cfg), *xray_sources_win(trials, cfg, margin),
            *small_cnns_comparable(trials, cfg, margin), *lower_layers_change_less(cka, cfg)]


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([v.row() for v in verdicts])
