"""`python -m xfer.run STUDY.yaml [--resume]`: stages → trials on Ray Tune → MLflow → report."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Optional

from mlflow.exceptions import MlflowException

from xfer import console, track
from xfer.outcomes import tracking_may_fail, study_trial_run_ids, trial_outcomes
from xfer.data.records import LISTINGS_ENV
from xfer.config import ConfigError, SeedWaves, StudyConfig
from xfer.data.root import absolutize
from xfer.load import is_stage_file, load_stage, load_study
from xfer.lock import StudyLockedError, study_lock
from xfer.paths import UnsafePathError
from xfer.preflight import study_preflight
from xfer.cluster import RayStartError

EXIT_FAILED, EXIT_CONFIG, EXIT_RAY, EXIT_SIGINT, EXIT_SIGTERM = 1, 2, 8, 130, 143
RAY_UNAVAILABLE = "ray unavailable"  # summary.json status: Ray could not start or its cluster not be reached


class StudyInterrupted(KeyboardInterrupt):
    """The driver got SIGINT or SIGTERM; `exit_code` is 128 + the signal number."""

    def __init__(self, exit_code: int = EXIT_SIGINT):
        super().__init__(f"interrupted (exit code {exit_code})")
        self.exit_code = exit_code


def run_stage_file(path: Path, recipes: Optional[Path] = None) -> Path:
    """Run one stage recipe alone (and the stages it starts from), with the recipe's own model."""
    from xfer.stages import ensure_stages, plan_stage, recipe_dirs
    from xfer.cluster import connect

    stage = load_stage(path)
    uri, experiment = track.tracking_for(stage.tracking, track.STAGE_EXPERIMENT)
    job = plan_stage(stage.stage, None, recipe_dirs(path, recipes))
    console.quiet_tune()
    connect(None)
    experiment_id = track.ensure_experiment(uri, experiment)
    cache_root = Path(job.config.data.cache_dir)
    checkpoint = ensure_stages([job], cache_root, uri, experiment_id, stage.resources.cpu, stage.resources.gpu)[job.key]
    print(f"[xfer] stage {job.name}: {checkpoint}")
    print((Path(checkpoint).parent / "manifest.json").read_text())
    return Path(checkpoint)


def checked_study(path: Path) -> StudyConfig:
    """The study with absolute paths, after every check that needs no trial (else ConfigError, all at once)."""
    study = load_study(path)
    study = dataclasses.replace(study, data=absolutize(study.data, path.parent),
                                output_dir=str(study.output_path.resolve()))
    os.environ[LISTINGS_ENV] = str(study.output_path)  # preflight's skipped-file listings go to the study's folder
    problems = study_preflight(study, path.parent)
    if problems:
        write_summary(study.output_path, {"status": "never started", "problems": problems})
        raise ConfigError(str(path), problems)
    return study


def write_summary(out: Path, summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))


def run_study(path: Path, resume: bool = False, report: bool = True, recipes: Optional[Path] = None, *,
              report_partial: bool = False) -> dict:
    """Run a whole study; returns a summary (status, trial counts, wall time, report path), also in summary.json.

    Holds the study's lock throughout; an interruption (SIGINT/SIGTERM) marks the study run and the trials in
    flight KILLED, writes the summary and raises StudyInterrupted."""
    console.one_line_warnings()
    study = checked_study(path)
    with study_lock(study.output_path, study.name), _sigterm_interrupts():
        return _run_locked(path, study, resume, report, recipes, report_partial)


def _run_locked(path: Path, study: StudyConfig, resume: bool, report: bool, recipes: Optional[Path],
                report_partial: bool) -> dict:
    from xfer.plan import evaluation_phase
    from xfer.stages import recipe_dirs, resolve_init_sources
    from xfer.cluster import connect
    from xfer.tune import run_phase
    from xfer.tuning import recipes_to_json, run_tuning
    from xfer.waves import WavesRun, run_waves

    began = time.perf_counter()
    uri, experiment = track.tracking_for(study.tracking, study.name)
    out = study.output_path
    (out / "study.json").write_text(json.dumps({"tracking_uri": uri, "experiment": experiment,
                                                "study_file": str(path.resolve())}, indent=2))
    experiment_id = track.ensure_experiment(uri, experiment)
    if study.description:
        track.client(uri).set_experiment_tag(experiment_id, track.NOTE_TAG, study.description)
    parent = track.study_run_id(uri, experiment_id, study.name, reuse=resume)
    track.log_params(uri, parent, {"study_file": str(path)})
    phase = evaluation_phase(study)
    summary = {"status": "failed", "trials": phase.trials, "experiment": experiment, "tracking_uri": uri,
               "study_run_id": parent}
    console.say(f"study {study.name}: {summary['trials']} trials; MLflow experiment {experiment!r} in {uri}")
    results, error, waves, tuned = None, None, None, {}
    try:
        console.quiet_tune()
        connect(study.ray.address)
        inits = resolve_init_sources(study.trials.init, study.trials.models, recipe_dirs(path, recipes),
                                     Path(study.data.cache_dir), uri,
                                     track.ensure_experiment(uri, track.STAGE_EXPERIMENT),
                                     study.resources.cpu, study.resources.gpu)
        with sigint_restored():  # Tune leaves its own SIGINT handler behind: Ctrl-C during the report must work
            if study.tuning is not None:
                tuning_began = time.perf_counter()
                tuned = run_tuning(study, inits, uri, experiment_id, parent, resume)
                summary["tuning_seconds"] = round(time.perf_counter() - tuning_began, 1)
                track.client(uri).log_dict(parent, {"recipes": json.loads(recipes_to_json(tuned))},
                                           "tuning_recipes.json")
                phase = evaluation_phase(study, tuned)
            if isinstance(study.trials.seeds, SeedWaves):
                waves = WavesRun()
                results = run_waves(study, tuned, inits, uri, experiment_id, experiment, parent, resume, began,
                                    waves, lambda run: _record_waves(uri, parent, out, run)).results
            else:
                results = run_phase(study, phase, inits, uri, experiment_id, parent, resume)
    except BaseException as e:  # noqa: BLE001 - every way out leaves the runs terminated and a summary
        error = e
    keys = {spec.key for unit in phase.units for spec in unit.specs}
    if waves is not None:  # the trials the waves planned (interrupted: up to the wave it was in)
        keys, summary["trials"], summary["waves"] = waves.keys, waves.trials, waves.to_json()["waves"]
        results = results if results is not None else waves.results
    summary.update(trial_outcomes(uri, experiment_id, parent, results, summary["trials"], keys))
    if results is not None:
        with tracking_may_fail():
            run_ids = study_trial_run_ids(uri, experiment_id, parent, results, keys)
            track.client(uri).log_dict(parent, {"run_ids": run_ids},
                                       track.STUDY_TRIALS_ARTIFACT)
    # unfinished trials: Tune's own SIGINT handler stopped the grid; an error (Ray that never started, a failed
    # tuning phase) is no interruption
    interrupted = isinstance(error, KeyboardInterrupt) or (
        error is None and summary["killed"] + summary["never_started"] > 0)
    summary["status"] = "interrupted" if interrupted else RAY_UNAVAILABLE if isinstance(error, RayStartError) else \
        "failed" if error or summary["failed"] else "finished"
    if error is not None and not isinstance(error, KeyboardInterrupt):
        summary["error"] = f"{type(error).__name__}: {error}"
    summary["trial_seconds"] = round(time.perf_counter() - began, 1)
    for r in results or ():
        if r.error is not None:
            print(f"[xfer] trial failed: {r.config} — {type(r.error).__name__}: {r.error}", file=sys.stderr)
    if report and error is None and (not interrupted or report_partial):
        from xfer.report import build_report

        stopped = attach_report(summary, lambda: build_report(uri, experiment, out, study.analysis,
                                                              parent_run_id=parent), out)
        if stopped is not None:  # the trials are done; only the report is missing
            error, interrupted, summary["status"] = stopped, True, "interrupted"
    summary["wall_seconds"] = round(time.perf_counter() - began, 1)
    with tracking_may_fail():
        track.log_metrics(uri, parent, {"wall_seconds": summary["wall_seconds"], "failed_trials": summary["failed"]}, 0)
        track.client(uri).set_terminated(parent, {"finished": "FINISHED", "interrupted": "KILLED"}.get(
            summary["status"], "FAILED"))
    write_summary(out, summary)
    if interrupted:
        print(json.dumps(summary, indent=2))
        print(f"[xfer] interrupted: {summary['finished']} of {summary['trials']} trials finished, "
              f"{summary['killed']} killed, {summary['never_started']} never started; finish it with: "
              f"python -m xfer.run {path} --resume", file=sys.stderr, flush=True)
        raise error if isinstance(error, StudyInterrupted) else StudyInterrupted()
    if error is not None:
        raise error
    close_study(uri, experiment, parent, out, summary)
    return summary


def attach_report(summary: dict, build, out: Path) -> Optional[KeyboardInterrupt]:
    """summary["report"] from `build()`; a failed report is recorded (`report_error`, said on stderr), never raised:
    the trials are done and in MLflow. Returns the KeyboardInterrupt that stopped it, if one did."""
    try:
        summary["report"] = str(build())
    except KeyboardInterrupt as e:
        summary["report"] = None
        return e
    except Exception as e:  # noqa: BLE001 - a failed report loses no trial: say so, keep the summary and the runs
        summary["report"], summary["report_error"] = None, f"{type(e).__name__}: {e}"
        print(f"[xfer] the report failed ({summary['report_error']}); every finished trial is in MLflow: build it "
              f"again with: xfer report {out}", file=sys.stderr, flush=True)
    return None


def _record_waves(uri: str, parent: str, out: Path, run) -> None:
    """The waves so far, in the study's folder and on its run (the report tells them; an interrupted study keeps
    them)."""
    from xfer.waves import WAVES_ARTIFACT

    (out / WAVES_ARTIFACT).write_text(json.dumps(run.to_json(), indent=2))
    with tracking_may_fail():
        track.client(uri).log_dict(parent, run.to_json(), WAVES_ARTIFACT)


def close_study(uri: str, experiment: str, parent: str, out: Path, summary: dict) -> None:
    """Print the leaderboard, the report path and the `xfer ui` command; put the leaderboard on the study run."""
    from xfer.analysis.collect import NothingInMLflowError, load_study_runs
    from xfer.analysis.leaderboard import leaderboard_lines, leaderboard_metrics

    try:
        trials = load_study_runs(uri, experiment, parent).trials
    except NothingInMLflowError as e:  # no finished trial
        console.say(str(e))
        return
    board = study_leaderboard(uri, trials, summary.get("report"))
    board.to_csv(out / "leaderboard.csv", index=False)
    track.log_metrics(uri, parent, leaderboard_metrics(board), 0)
    track.log_file(uri, parent, out / "leaderboard.csv", "leaderboard.csv")
    lines = console.closing_lines(leaderboard_lines(board), summary.get("report"), str(out),
                                  summary.get("report_error"))
    console.say(f"done: {summary['trials'] - summary['failed']}/{summary['trials']} trials in "
                f"{console.duration(summary['wall_seconds'])}")
    for line in lines:
        console.say(line)


def study_leaderboard(uri: str, trials, report: Optional[str]):
    """One leaderboard for the console, leaderboard.csv and the study run: the report's own table when it was
    built (its verdicts), else the same method on the trials' test predictions (paired images, seeds as clusters)."""
    import pandas as pd

    from xfer.analysis.collect import test_predictions
    from xfer.analysis.leaderboard import leaderboard

    built = Path(report).parent / "tables" / "leaderboard.csv" if report else None
    if built is not None and built.is_file():
        return pd.read_csv(built, dtype={"n_per_class": str})
    return leaderboard(trials, predictions=test_predictions(track.client(uri), list(trials["run_id"])))


class sigint_restored:
    """The SIGINT handler as it was before the block: Tune's, which only sets a flag, does not outlive the grid."""

    def __enter__(self):
        self.previous = signal.getsignal(signal.SIGINT)
        return self

    def __exit__(self, *exc) -> bool:
        signal.signal(signal.SIGINT, self.previous)
        return False


class _sigterm_interrupts:
    """SIGTERM ends the study like SIGINT does (runs KILLED, summary written), with exit code 143."""

    def __enter__(self):
        def interrupt(signum, frame):
            raise StudyInterrupted(EXIT_SIGTERM)

        self.previous = signal.signal(signal.SIGTERM, interrupt)
        return self

    def __exit__(self, *exc) -> bool:
        signal.signal(signal.SIGTERM, self.previous)
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xfer.run", description=__doc__)
    parser.add_argument("config", type=Path, help="a study YAML (experiments/) or a stage recipe (pretrain/)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted study")
    parser.add_argument("--no-report", action="store_true", help="skip the analysis and report")
    parser.add_argument("--report-partial", action="store_true",
                        help="build the report even when the study was interrupted (from the trials that finished)")
    parser.add_argument("--recipes", type=Path, help="folder of stage recipes (default: the study's folder, the "
                                                     "pretrain/ beside it, then ./pretrain; or XFER_RECIPES)")
    args = parser.parse_args(argv)
    try:
        if is_stage_file(args.config):
            run_stage_file(args.config, args.recipes)
        else:
            summary = run_study(args.config, args.resume, not args.no_report, args.recipes,
                                report_partial=args.report_partial)
            return EXIT_FAILED if summary["status"] != "finished" or summary.get("report_error") else 0
    except StudyInterrupted as e:
        return e.exit_code
    except KeyboardInterrupt:
        print(f"[xfer] interrupted before the study began; nothing ran. Start it again with: "
              f"python -m xfer.run {args.config}", file=sys.stderr)
        return EXIT_SIGINT
    except (ConfigError, UnsafePathError, StudyLockedError) as e:
        from xfer.cli import one_line  # `xfer check` and `xfer run` print a config error the same way

        print(f"xfer run: {one_line(e)}", file=sys.stderr)
        return EXIT_CONFIG
    except RayStartError as e:
        from xfer.cli import one_line

        print(f"xfer run: {one_line(e)}", file=sys.stderr)
        return EXIT_RAY
    except track.TrackingStoreError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except MlflowException as e:
        print(f"error: {track.store_error_message(track.resolve_tracking_uri(None), e)}", file=sys.stderr)
        return EXIT_FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
