"""The Transfusion (Raghu et al. 2019) hypotheses: a registry of one module each, settled as one Holm family.

A new hypothesis is one new module here with a `@hypothesis(name, claim)` function of a `Context`; every module
of this package is imported below, so the family and the report pick it up with no other edit.
"""
from __future__ import annotations

import importlib
import pkgutil

from xfer.analysis.hypotheses.base import HYPOTHESES, SAME_WEIGHTS, Comparison, Context, hypothesis
from xfer.analysis.hypotheses.family import (ADJUSTMENT, Verdict, claims, context, evaluate_hypotheses, settle,
                                             study_size, verdict_table)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

CLAIMS = claims()

__all__ = ["ADJUSTMENT", "CLAIMS", "HYPOTHESES", "SAME_WEIGHTS", "Comparison", "Context", "Verdict", "claims",
           "context", "evaluate_hypotheses", "hypothesis", "settle", "study_size", "verdict_table"]
