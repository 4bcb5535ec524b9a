"""`xfer predict TRIAL IMAGES... [--study STUDY] [--out predictions.csv]`: classify new images with a trained trial,
named by its MLflow run id, its checkpoint file, or its trial key (as the console prints it)."""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from xfer.checkpoint import CheckpointMeta
from xfer.data.images import IMAGE_SUFFIXES


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files as given; folders become their image files (sorted), for unlabeled inference."""
    files: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            files.extend(sorted(p for p in item.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            files.append(item)
    return files


def predict_files(model, meta: CheckpointMeta, files: list[Path]) -> tuple[list[tuple[Path, np.ndarray]], list[tuple[Path, str]]]:
    """(path, class probabilities) per readable file, and (path, error) per file that could not be read."""
    from xfer.data.images import read_image_resized
    from xfer.train import pick_device, predict_probs

    good, errors, images = [], [], []
    for path in files:
        try:
            images.append(read_image_resized(str(path), meta.image_size, meta.in_channels))
            good.append(path)
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the others
            errors.append((path, str(e)))
    if not images:
        return [], errors
    device = pick_device()
    probs = predict_probs(model.to(device), np.stack(images), meta.normalization, device,
                          multi_label=meta.multi_label)
    return list(zip(good, probs)), errors


def write_csv(out: Path, classes: list[str], rows: list[tuple[Path, np.ndarray]],
              errors: list[tuple[Path, str]]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "prediction", *[f"prob_{c}" for c in classes], "error"])
        for path, p in rows:
            writer.writerow([path, classes[int(np.argmax(p))], *[f"{v:.6f}" for v in p], ""])
        for path, message in errors:
            writer.writerow([path, "", *[""] * len(classes), message])


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="xfer predict", description=__doc__)
    add_trial_arguments(parser)
    parser.add_argument("images", nargs="+", help="image files (PNG/JPEG/DICOM) or folders of them")
    parser.add_argument("--out", type=Path, help="write predictions to this CSV")
    parser.add_argument("--gradcam", type=Path, help="write Grad-CAM overlays into this folder")
    args = parser.parse_args(argv)

    loaded = load_trial_or_none(args.trial, args.tracking_uri, args.study)
    if loaded is None:
        return 2
    model, meta = loaded
    classes = list(meta.classes)
    rows, errors = predict_files(model, meta, expand_inputs(args.images))
    for path, p in rows:
        print(f"{path}\t{classes[int(np.argmax(p))]}\t" + "\t".join(f"{c}={v:.3f}" for c, v in zip(classes, p)))
    for path, message in errors:
        print(f"error: {path}: {message}", file=sys.stderr)
    if args.out:
        write_csv(args.out, classes, rows, errors)
    if args.gradcam and rows:
        from xfer.explain import write_explanations

        for path, message in write_explanations(model, meta, [p for p, _ in rows], args.gradcam)[1]:
            print(f"error: {path}: Grad-CAM: {message}", file=sys.stderr)
    return 0 if rows else 1


def add_trial_arguments(parser: argparse.ArgumentParser) -> None:
    """The trial argument of predict and explain, and where to find it."""
    parser.add_argument("trial", help="a trial: its MLflow run id, its checkpoint file, or its key as the console "
                                      "and the report print it, quoted: 'imagenet|cbr_small|n=10|seed=0'")
    parser.add_argument("--study", help="with a trial key: the study (output folder, YAML, or experiment name); "
                                        "default: any study in the store with that key")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: the --study's, else "
                                               "MLFLOW_TRACKING_URI or ./mlflow.db)")


def is_trial_key(ref: str) -> bool:
    return "|" in ref and not Path(ref).exists()


def trial_run_id(key: str, study: Optional[str], tracking_uri: Optional[str]) -> tuple[str, str]:
    """(run id, tracking URI) of the newest finished run of the trial `key` in `study` (any study if None)."""
    from xfer import track

    experiment = None
    if study is not None:
        from xfer.cli import store_of
        from xfer.study_info import study_json

        target = Path(study)
        if target.is_dir():
            experiment = study_json(target).get("experiment")
        elif target.is_file():
            from xfer.load import load_study

            config = load_study(target)
            experiment = config.tracking.experiment or config.name
        else:
            experiment = study
        tracking_uri = tracking_uri or (store_of(study) if target.exists() else None)
    uri = track.resolve_tracking_uri(tracking_uri)
    client = track.client(uri)
    if experiment is not None:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            raise FileNotFoundError(f"--study {study}: no experiment {experiment!r} in {uri}")
        ids = [found.experiment_id]
    else:
        ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, f"tags.`{track.TRIAL_KEY_TAG}` = '{key}' and attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"])
    if not runs:
        raise FileNotFoundError(f"no finished trial {key!r} in {uri}" + (f" (study {study})" if study else "")
                                + "; the keys are in the console's trial lines and the report")
    studies = sorted({r.data.tags.get(track.STUDY_TAG, "?") for r in runs})
    if len(studies) > 1:
        raise FileNotFoundError(f"trial {key!r} is in several studies ({', '.join(studies)}): name one with --study")
    return runs[0].info.run_id, uri


def load_trial_or_none(ref: str, tracking_uri: Optional[str], study: Optional[str] = None):
    """(model, meta) of a trial's run id, checkpoint file or trial key; else one line on stderr saying why, and None."""
    from xfer.checkpoint import load_trial

    try:
        if is_trial_key(ref):
            ref, tracking_uri = trial_run_id(ref, study, tracking_uri)
            print(f"trial run {ref}", file=sys.stderr)
        return load_trial(ref, tracking_uri)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)  # torch's own advice runs on for lines
    except Exception as e:  # noqa: BLE001 - torch's loader raises anything (KeyError: 101) for a non-checkpoint file
        print(f"error: {ref}: not an xfer checkpoint nor a trial's run id ({type(e).__name__}: {e}); give the run id "
              f"of a finished trial or its checkpoint/best.pt", file=sys.stderr)
    return None


if __name__ == "__main__":
    sys.exit(main())
