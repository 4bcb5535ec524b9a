"""xfer: does pretraining help on a small chest X-ray dataset? `xfer.run_study(path)` runs a study and returns its trials."""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Union


def run_study(path: Union[str, Path], resume: bool = False, report: bool = True,
              recipes: Optional[Union[str, Path]] = None):
    """Run the study YAML at `path` (stages, trials, report) and return its trials as a pandas DataFrame:
    one row per finished trial with its tags (init, model, n_per_class, seed, ...), final metrics and `param.*`."""
    from xfer.analysis.collect import load_study_runs
    from xfer.run import run_study as run

    summary = run(Path(path), resume, report, Path(recipes) if recipes else None)
    return load_study_runs(summary["tracking_uri"], summary["experiment"], summary["study_run_id"]).trials


__all__ = ["run_study"]
