"""The one `xfer` command: run, check, init, report, predict, explain, weights, data, ui; xfer's errors as one line."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Callable, Optional

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from xfer.inits.published import PublishedWeights

# every import of torch, ray, mlflow or the data package happens inside a command, so `xfer --help` starts in
# well under a second of CPU


def sources_named(name: str) -> list[str]:
    """A published source (torchvision:…, timm:…, xrv:…) as is; a model name → its default sources."""
    from xfer.inits.published import PUBLISHERS
    from xfer.models import is_known_model, known_models, model_spec
    from xfer.source import parse_source

    source = parse_source(name)
    if source.kind == "published" and not source.is_default_published:
        return [name]
    if not is_known_model(name):
        raise SystemExit(f"xfer weights: {name!r} is neither a published source "
                         f"({', '.join(k + ':NAME' for k in PUBLISHERS)}) "
                         f"nor a model ({known_models()})")
    spec = model_spec(name)
    sources = [s for s in (spec.imagenet_source, spec.xray_source) if s]
    if not sources:
        raise SystemExit(f"xfer weights: model {name!r} has no published weights; pretrain it with a stage")
    return sources


def describe(published: PublishedWeights) -> str:
    state = "cached " if published.cache_path.is_file() else "missing"
    origin = f"  [{published.origin}]" if published.origin else ""
    return f"{state}  {published.source}  {published.cache_path}  ({published.url}){origin}"


def weights_fetch(args: argparse.Namespace) -> int:
    from xfer.inits.weights import fetch_weights

    failed = 0
    for source in [s for name in args.names for s in sources_named(name)]:
        try:
            print(describe(fetch_weights(source)))
        except Exception as e:  # network errors come in many types; report each source and go on
            failed += 1
            print(f"failed   {source}: {type(e).__name__}: {e}", file=sys.stderr)
    return 1 if failed else 0


def weights_where(args: argparse.Namespace) -> int:
    from xfer.inits.published import published_weights

    for source in [s for name in args.names for s in sources_named(name)]:
        print(describe(published_weights(source)))
    return 0


def weights_check(args: argparse.Namespace) -> int:
    from xfer.data.root import data_root
    from xfer.inits.imagenet_check import check_imagenet_weights

    folder = args.folder or data_root() / "imagenette-128" / "val"
    for source in [sources_named(name)[0] for name in args.names]:  # a model name: its ImageNet source
        result = check_imagenet_weights(source, folder, args.per_class, args.image_size)
        print(f"{result.source}: top-1 {result.top1:.1%} of 1000 ImageNet classes, {result.top1_of_10:.1%} among "
              f"the 10 Imagenette classes ({result.images} photos of {folder} at {result.image_size} px, "
              f"{result.normalization} normalization)")
    return 0


# commands whose module keeps its own parser (`python -m xfer.run` works the same): name → (module, help)
DELEGATED = {"run": ("xfer.run", "run a study YAML (stages → trials → report), or one stage recipe"),
             "report": ("xfer.report", "rebuild a study's report from MLflow"),
             "predict": ("xfer.predict", "classify images with a trained trial (run id or checkpoint)"),
             "explain": ("xfer.explain", "Grad-CAM and saliency of a trained trial on images"),
             "plan": ("xfer.seed_plan", "seeds each comparison needs for a target mde, from a pilot's runs")}


# xfer's errors → exit codes, most specific first, as (module, class name): an error can only be of a class whose
# module the command imported, so classifying it imports nothing (no MLflow or torch import while out of memory)
ERROR_EXITS = [("xfer.config", "ConfigError", 2), ("xfer.registry", "UnknownNameError", 2),
               ("xfer.stages", "StageError", 3), ("xfer.inits.weights", "WeightsMissingError", 4),
               ("xfer.inits.weights", "CheckpointMismatchError", 5), ("xfer.models.packaged", "KeyMappingError", 5),
               ("xfer.checkpoint", "CheckpointVersionError", 5), ("builtins", "FileNotFoundError", 6),
               ("builtins", "FileExistsError", 6), ("xfer.analysis.collect", "NothingInMLflowError", 7),
               ("xfer.cluster", "RayStartError", 8), ("builtins", "KeyboardInterrupt", 130)]


def error_exits() -> list[tuple[type, int]]:
    """The (class, exit code) pairs of ERROR_EXITS whose module is loaded."""
    return [(getattr(sys.modules[module], name), code) for module, name, code in ERROR_EXITS
            if module in sys.modules]


def one_line(error: BaseException) -> str:
    """An error as one line: its type, and its message with line breaks folded."""
    text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def run_reporting_errors(command: str, action: Callable[[], int], debug: bool) -> int:
    """Run a command; an xfer error (or a missing input file) prints one line and exits with its code."""
    try:
        return action() or 0
    except SystemExit:  # argparse's and the commands' own exits say what they mean
        raise
    except BaseException as error:  # noqa: BLE001 - mapped below; unknown errors keep their traceback
        code = next((code for kind, code in error_exits() if isinstance(error, kind)), None)
        if code is None or debug:
            traceback.print_exc()
            return code or 1
        print(f"xfer {command}: {one_line(error)}  (--debug for the traceback)", file=sys.stderr)
        return code


def check_command(args: argparse.Namespace) -> int:
    from xfer.check import check_study
    from xfer.console import one_line_warnings

    one_line_warnings()  # '[xfer] warning: …' as xfer run prints them, not Python's format with its source line
    for line in check_study(args.study, args.recipes, measure=not args.no_measure):
        print(line)
    return 0


def init_command(args: argparse.Namespace) -> int:
    from xfer.scaffold import write_study

    path, scaffold = write_study(args.folder, args.out, args.name, args.positive_class, args.force)
    for note in scaffold.notes:
        print(f"  {note}")
    for warning in scaffold.warnings:
        print(f"[xfer] warning: {warning}")
    print(f"wrote {path}; check it with: xfer check {path}")
    return 0


def store_and_experiment(target: Optional[str]) -> tuple[str, Optional[str]]:
    """(tracking URI, experiment) of a study YAML (its `tracking.uri`, else the default), a study output folder (its
    study.json), or a URI as given (no experiment); nothing: MLFLOW_TRACKING_URI or ./mlflow.db."""
    from xfer import track

    if target is None or "://" in target:
        return track.resolve_tracking_uri(target), None
    path = Path(target)
    if path.is_dir():
        from xfer.study_info import study_json

        info = study_json(path)
        if not info:
            raise FileNotFoundError(f"{path} has no study.json; pass a study output folder written by xfer run, "
                                    f"a study YAML, or a tracking URI")
        return info["tracking_uri"], info.get("experiment")
    from xfer.load import load_study

    study = load_study(path)
    return track.resolve_tracking_uri(study.tracking.uri), study.tracking.experiment or study.name


def store_of(target: Optional[str]) -> str:
    """The tracking URI of a study YAML, a study output folder, or a URI as given (see store_and_experiment)."""
    return store_and_experiment(target)[0]


UI_ENV = {"PYTHONWARNINGS": "ignore",  # the server's imports warn of their own deprecations: not the user's business
          "MLFLOW_LOGGING_LEVEL": "WARNING",
          "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # a second process for GenAI jobs xfer never runs


def ui_command(args: argparse.Namespace) -> int:
    """Start `mlflow ui` (one worker: it serves in seconds on a busy machine) on 127.0.0.1 for the store of a study
    (YAML or output folder) or a tracking URI; a study's experiment opens on its trials, grouped by init."""
    uri, experiment = store_and_experiment(args.target)
    base = f"http://127.0.0.1:{args.port}"
    address = base
    if experiment is not None:
        from xfer import track
        from xfer.mlflow_view import compare_view_url, write_compare_view

        found = track.client(uri).get_experiment_by_name(experiment)
        if found is not None:
            address = compare_view_url(base, found.experiment_id, write_compare_view(uri, found.experiment_id))
    print(f"MLflow UI for {uri} (Ctrl-C stops it); open:\n  {address}", flush=True)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
               "--port", str(args.port), "--workers", "1", "--uvicorn-opts", "--no-access-log --log-level warning"]
    os.execve(sys.executable, command, {**os.environ, **UI_ENV})
    return 0


def build_parser(data_command: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xfer", description="transfer-learning experiments on chest X-rays; "
                                     "`xfer COMMAND --help` for each command's options")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, (_, text) in DELEGATED.items():
        commands.add_parser(name, help=text, add_help=False)
    check = commands.add_parser("check", help="validate a study, count its trials and stages, estimate wall time")
    check.add_argument("study", type=Path, help="a study YAML")
    check.add_argument("--recipes", type=Path, help="folder of stage recipes (as for xfer run)")
    check.add_argument("--no-measure", action="store_true", help="skip the quick throughput measurement")
    check.set_defaults(run=check_command)
    init = commands.add_parser("init", help="write a study YAML for your own image folder or metadata CSV")
    init.add_argument("folder", type=Path, help="class folders (CLASS/*.png, or train|val|test/CLASS/*.png, here "
                                                "or up to two levels down), or a folder with a metadata CSV")
    init.add_argument("--out", type=Path, help="the YAML to write (default: <folder name>_study.yaml here)")
    init.add_argument("--name", help="the study's name (default: the folder's)")
    init.add_argument("--positive-class", metavar="CLASS", help="the class sensitivity and specificity are about "
                      "(default: the class named like a finding, e.g. COVID19 or PNEUMONIA)")
    init.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    init.set_defaults(run=init_command)
    ui = commands.add_parser("ui", help="start the MLflow UI on 127.0.0.1 for a study's tracking store, opening on "
                                        "its trials grouped by init with val_auc overlaid")
    ui.add_argument("target", nargs="?", default=None,
                    help="a study YAML, a study output folder, or a tracking URI (default: ./mlflow.db)")
    ui.add_argument("--port", type=int, default=5000)
    ui.set_defaults(run=ui_command)
    weights = commands.add_parser("weights", help="published pretrained weights")
    actions = weights.add_subparsers(dest="action", required=True)
    names_help = "published source (torchvision:resnet18.IMAGENET1K_V1, timm:resnet10t.c3_in1k, " \
                 "xrv:densenet121-res224-chex) or a model name (its default sources)"
    fetch = actions.add_parser("fetch", help="download into the libraries' own caches (needs internet)")
    fetch.add_argument("names", nargs="+", metavar="NAME", help=names_help)
    fetch.set_defaults(run=weights_fetch)
    where = actions.add_parser("where", help="show each weight file's cache path and whether it is there")
    where.add_argument("names", nargs="+", metavar="NAME", help=names_help)
    where.set_defaults(run=weights_where)
    scoring = actions.add_parser("check", help="score ImageNet weights 1000-way on Imagenette's validation photos")
    scoring.add_argument("names", nargs="+", metavar="NAME", help="published timm:…/torchvision:… source or model")
    scoring.add_argument("--folder", type=Path, help="Imagenette's val folder of WNID subfolders "
                                                     "(default: imagenette-128/val in the data root)")
    scoring.add_argument("--per-class", type=int, default=20, help="photos per class (first by file name)")
    scoring.add_argument("--image-size", type=int, default=224)
    scoring.set_defaults(run=weights_check)
    if data_command:
        from xfer.datacli import add_data_parser  # imports the data package: only for `xfer data`

        add_data_parser(commands)
    else:
        commands.add_parser("data", help="the public datasets the studies use", add_help=False)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("XFER_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    if argv and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]][0])
        return run_reporting_errors(argv[0], lambda: module.main(argv[1:]), debug)
    args = build_parser(data_command=bool(argv) and argv[0] == "data").parse_args(argv)
    return run_reporting_errors(args.command, lambda: args.run(args), debug)


if __name__ == "__main__":
    sys.exit(main())
