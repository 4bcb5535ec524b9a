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
from xfer.paths import not_a_folder
from xfer.record import prob_column
from xfer.data.read_image import IMAGE_SUFFIXES
from xfer.trial_ref import add_trial_arguments, load_named_trial


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
    from xfer.data.read_image import read_image_resized
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
        writer.writerow(["path", "prediction", *[prob_column(c) for c in classes], "error"])
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

    if args.gradcam is not None and (problem := not_a_folder(args.gradcam, "--gradcam")):
        print(problem, file=sys.stderr)
        return 2
    loaded = load_named_trial(args.trial, args.tracking_uri, args.study)
    if loaded is None:
        return 2
    model, meta = loaded
    classes = list(meta.classes)
    for folder in (Path(i) for i in args.images if Path(i).is_dir() and not expand_inputs([i])):
        print(f"error: {folder}: no image files in this folder (nor below it); xfer reads "
              f"{', '.join(IMAGE_SUFFIXES)}", file=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
