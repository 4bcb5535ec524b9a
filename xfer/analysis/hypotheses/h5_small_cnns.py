"""H5: small CBR CNNs from random init perform comparably to ImageNet-size architectures (test AUC, equivalence)."""
from __future__ import annotations

from xfer.analysis.hypotheses.base import (Comparison, Context, auc_comparison, hypothesis, random_and_pretrained,
                                           untestable)
from xfer.models import model_spec


def is_cbr(model: str) -> bool:
    """True for the small Transfusion CBR CNNs (family "cbr" in the model registry)."""
    return model_spec(model).family == "cbr"


@hypothesis("H5", "Small CBR CNNs from random init perform comparably to ImageNet-size architectures")
def small_cnns_comparable(ctx: Context) -> list[Comparison]:
    """Framework-init CBR − large model test AUC, equivalent within ±margin (paired on n and seed)."""
    trials = ctx.trials
    base, _ = random_and_pretrained(trials)
    random = trials[trials["init"] == base] if base else trials.iloc[:0]
    models = sorted(random["model"].unique())
    cbr = [m for m in models if is_cbr(m)]
    large = [m for m in models if not is_cbr(m)]
    if not cbr or not large:
        return [untestable("H5", "CBR − large model test AUC (random init)",
                           "needs random-init trials of a CBR model and of an ImageNet-size model")]
    keys = ("init", "n_per_class", "seed", "repeat")
    return [auc_comparison("H5", f"{small} − {big}, test AUC (random init)", ctx,
                           [(random["model"] == small, 1.0), (random["model"] == big, -1.0)], keys, "equivalent",
                           trials=random)
            for small in cbr for big in large]
