"""The registered hypotheses as one family of paired comparisons, Holm-adjusted, each with its verdict."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from xfer.analysis.convergence import collapsed, epochs_to_own_plateau
from xfer.analysis.hypotheses.base import HYPOTHESES, Comparison, Context
from xfer.analysis.paired import image_scores
from xfer.analysis.probes import CKA_COLUMNS
from xfer.analysis.stats import Effect, decide, decision_p, holm, minimum_detectable_effect
from xfer.config import AnalysisConfig

ADJUSTMENT = "Holm"


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


def claims() -> dict[str, str]:
    """Hypothesis name → its claim in words, in name order."""
    return {name: HYPOTHESES[name].claim for name in sorted(HYPOTHESES)}


def settle(comparisons: list[Comparison], cfg: AnalysisConfig) -> list[Verdict]:
    """Holm-adjust the family's p-values and give each comparison its verdict; minimum detectable effects are
    computed at the Bonferroni level α / (tested comparisons), the level Holm's first step uses."""
    tested = [c for c in comparisons if not c.fixed and c.effect.clusters >= cfg.min_seeds]
    p = {id(c): decision_p(c.effect, c.claim, c.margin)[0] for c in tested}
    adjusted = dict(zip(p, holm(list(p.values()))))
    level = cfg.alpha / max(sum(np.isfinite(v) for v in p.values()), 1)
    out = []
    for c in comparisons:
        claim = HYPOTHESES[c.hypothesis].claim
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


def context(trials: pd.DataFrame, cfg: AnalysisConfig, cka: pd.DataFrame | None = None,
            predictions: dict[str, pd.DataFrame] | None = None, histories: pd.DataFrame | None = None,
            cka_floor: pd.DataFrame | None = None) -> Context:
    """The Context every hypothesis reads: trials marked `collapsed`, with convergence speed where histories exist."""
    trials = trials.assign(collapsed=collapsed(trials))
    if histories is not None and "epochs_to_target" not in trials:
        trials = trials.merge(epochs_to_own_plateau(histories, trials, cfg.convergence_fraction), on="run_id",
                              how="left")
    cka = pd.DataFrame(columns=CKA_COLUMNS) if cka is None else cka
    return Context(trials, image_scores(trials, predictions), cka, cka_floor, cfg)


def evaluate_hypotheses(trials: pd.DataFrame, cka: pd.DataFrame | None, cfg: AnalysisConfig,
                        predictions: dict[str, pd.DataFrame] | None = None, histories: pd.DataFrame | None = None,
                        cka_floor: pd.DataFrame | None = None) -> list[Verdict]:
    """Every registered hypothesis as one Holm-adjusted family. `predictions`: run_id → test predictions (test AUC
    comparisons need them); `histories`: per-epoch val AUC (convergence); `cka`: one row per run × block."""
    ctx = context(trials, cfg, cka, predictions, histories, cka_floor)
    return settle([c for name in sorted(HYPOTHESES) for c in HYPOTHESES[name].plan(ctx)], cfg)


def verdict_table(verdicts: list[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([v.row() for v in verdicts])


def study_size(verdicts: list[Verdict]) -> dict:
    """The largest test set (images, patients) and seed count any comparison rests on."""
    effects = [v.effect for v in verdicts]
    return {"images": max((e.images for e in effects), default=0),
            "patients": max((e.patients for e in effects), default=0),
            "seeds": max((e.clusters for e in effects), default=0)}
