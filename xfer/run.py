"""`python -m xfer.run STUDY.yaml [--resume]`: stages → trials on Ray Tune → MLflow → report."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

from xfer import track
from xfer.config import ConfigError, StudyConfig, absolutize
from xfer.load import is_stage_file, load_stage, load_study
from xfer.source import parse_source


def run_stage_file(path: Path) -> Path:
    """Run one stage recipe alone (and the stages it starts from), with the recipe's own model."""
    from xfer.stages import ensure_stages, plan_stage, recipe_dirs
    from xfer.tune import connect

    stage = load_stage(path)
    uri, experiment = track.tracking_for(stage.tracking, "pretrain")
    job = plan_stage(stage.stage, None, recipe_dirs((path.parent,)))
    connect(None)
    experiment_id = track.ensure_experiment(uri, experiment)
    cache_root = Path(job.config.data.cache_dir)
    checkpoint = ensure_stages([job], cache_root, uri, experiment_id, stage.resources.cpu, stage.resources.gpu)[job.key]
    print(f"[xfer] stage {job.name}: {checkpoint}")
    print((Path(checkpoint).parent / "manifest.json").read_text())
    return Path(checkpoint)


def missing_published_weights(study: StudyConfig) -> list[str]:
    """Pre-flight: every published weight file the trials need must be in its library's cache."""
    from xfer.inits.published import published_weights
    from xfer.inits.weights import source_for

    problems = []
    for i, init in enumerate(study.trials.init):
        if init.strategy == "random" or parse_source(init.source).kind in ("stage", "file"):
            continue
        for model in study.trials.models:
            try:
                weights = published_weights(source_for(model, init.source, "xray" if init.strategy == "chexpert" else "imagenet"))
            except (ValueError, KeyError) as e:
                problems.append(f"trials.init[{i}].source (model {model}): {e}")
                continue
            if not weights.cache_path.is_file():
                problems.append(f"trials.init[{i}].source (model {model}): weight file {weights.file} is missing; "
                                f"searched {weights.cache_path}; fetch it with `xfer weights fetch {weights.source}` "
                                f"when online, or copy it there")
    return problems


def run_study(path: Path, resume: bool = False, report: bool = True) -> dict:
    """Run a whole study; returns a summary with counts, wall time and the report path."""
    from xfer.stages import recipe_dirs, resolve_init_sources
    from xfer.tune import connect, run_grid

    began = time.perf_counter()
    study = load_study(path)
    study = dataclasses.replace(study, data=absolutize(study.data, path.parent),
                                output_dir=str(study.output_path.resolve()))
    missing = missing_published_weights(study)
    if missing:
        raise ConfigError(str(path), missing)
    uri, experiment = track.tracking_for(study.tracking, study.name)
    out = study.output_path
    out.mkdir(parents=True, exist_ok=True)
    (out / "study.json").write_text(json.dumps({"tracking_uri": uri, "experiment": experiment,
                                                "study_file": str(path.resolve())}, indent=2))
    experiment_id = track.ensure_experiment(uri, experiment)
    parent = track.study_run_id(uri, experiment_id, study.name, reuse=resume)
    track.log_params(uri, parent, {"study_file": str(path)})
    connect(study.ray.address)
    inits = resolve_init_sources(study.trials.init, study.trials.models, recipe_dirs((path.parent.parent / "pretrain",)),
                                 Path(study.data.cache_dir), uri, experiment_id, study.resources.cpu,
                                 study.resources.gpu)
    results = run_grid(study, inits, uri, experiment_id, parent, resume)
    failed = [r for r in results if r.error is not None]
    summary = {"trials": len(results), "failed": len(failed), "experiment": experiment, "tracking_uri": uri,
               "trial_seconds": round(time.perf_counter() - began, 1)}
    for r in failed:
        print(f"[xfer] trial failed: {r.config} — {type(r.error).__name__}: {r.error}", file=sys.stderr)
    if report:
        from xfer.report import build_report

        summary["report"] = str(build_report(uri, experiment, out, study.analysis, parent_run_id=parent))
    summary["wall_seconds"] = round(time.perf_counter() - began, 1)
    track.log_metrics(uri, parent, {"wall_seconds": summary["wall_seconds"], "failed_trials": len(failed)}, 0)
    track.client(uri).set_terminated(parent, "FINISHED" if not failed else "FAILED")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xfer.run", description=__doc__)
    parser.add_argument("config", type=Path, help="a study YAML (experiments/) or a stage recipe (pretrain/)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted study")
    parser.add_argument("--no-report", action="store_true", help="skip the analysis and report")
    args = parser.parse_args(argv)
    try:
        if is_stage_file(args.config):
            run_stage_file(args.config)
        else:
            summary = run_study(args.config, args.resume, not args.no_report)
            return 1 if summary["failed"] else 0
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
