"""What Ray Tune + MLflow cost per trial: K trials (seeds) run one after another through `xfer.tune.run_phase`
vs the same K trainings as plain PyTorch loops (`xfer.train.fit` called directly), side by side (A B B A).

    python bench/overhead.py [--trials 3] [--epochs 3] [--per-class 200] [--size 64] [--model cbr_small]

Target: Tune + MLflow ≤ 1.05× the plain loop. Ray's start-up (once per study) is reported apart; the
Tune side includes everything else: starting the trial's worker process (imports), Tune's bookkeeping,
MLflow logging of every epoch, Tune checkpoints, the checkpoint and prediction artifacts. Both sides
train with one thread, as a trial with `resources: {cpu: 1}` does. Wall time moves with whatever else
runs on the machine, so CPU time is reported too: the plain loops' own process vs every process of the
Tune side (driver, Ray's daemons, the trial worker).
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import ROOT, cpu_timed, kermany, machine, one_model_study, ratio_line, run_trials, timed, with_name

from xfer.config import StudyConfig
from xfer.data.prepare import prepare_data
from xfer.data.splits import nested_subsets
from xfer.metrics import classification_metrics
from xfer.pipeline import initial_model
from xfer.train import FitData, fit, pick_device, predict_probs
from xfer.cluster import connect


def plain_trials(study: StudyConfig) -> None:
    """Each seed's trial without Tune or MLflow: data, model, init, fit, test metrics."""
    torch.set_num_threads(int(study.resources.cpu))
    model_name, n, positive = study.trials.models[0], study.trials.n_per_class[0], study.data.positive_index
    for seed in study.trials.seeds:
        data = prepare_data(study.data, ROOT)
        train_idx = np.asarray(nested_subsets(np.asarray(data.split.train), data.labels, (n,), seed)[n])
        model, info = initial_model(model_name, len(data.classes), study.data.channels, study.trials.init[0], seed)
        fit(model, model_name, FitData(data.images_at, data.labels, train_idx, np.asarray(data.split.val),
                                       data.classes, study.data.image_size, positive), study.train,
            info.normalization, seed)
        test_idx = np.asarray(data.split.test)
        probs = predict_probs(model, data.images_at(study.data.image_size)[test_idx], info.normalization,
                              pick_device())
        classification_metrics(data.labels[test_idx], probs, data.classes, positive, "test_")


def tune_trials(study: StudyConfig) -> int:
    """The same trials as xfer runs them (one Tune run); returns how many worker processes ran them."""
    return len({r.metrics["pid"] for r in run_trials(study)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--model", default="cbr_small")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="xfer-overhead-"))
    base = one_model_study("overhead", kermany(args.size, args.per_class, ROOT / ".xfer_cache"), args.model,
                           args.epochs, tmp / "0", seeds=tuple(range(args.trials)), max_concurrent=1)
    prepare_data(base.data, ROOT)  # warm the image cache: both sides read it
    _, ray_start = timed(lambda: connect("local"))  # a Ray of its own, even beside a `ray start` cluster

    wall: dict[str, list[float]] = {"A": [], "B": []}
    cpu: dict[str, list[float]] = {"A": [], "B": []}
    workers = []
    for i, kind in enumerate("ABBA"):
        study = with_name(base, f"overhead{i}", tmp / str(i))
        if kind == "A":
            own = time.process_time()
            _, seconds = timed(lambda: plain_trials(study))
            cpu_seconds = time.process_time() - own
        else:
            n_workers, seconds, cpu_seconds = cpu_timed(lambda: tune_trials(study))
            workers.append(n_workers)
        wall[kind].append(seconds)
        cpu[kind].append(cpu_seconds)
        print(f"[bench] {'plain loops' if kind == 'A' else 'Tune+MLflow'}: {seconds:.1f} s wall, "
              f"{cpu_seconds:.1f} s CPU", flush=True)

    a, b = statistics.mean(wall["A"]), statistics.mean(wall["B"])
    ca, cb = statistics.mean(cpu["A"]), statistics.mean(cpu["B"])
    k = args.trials
    print(f"\n### overhead — {machine()}")
    print(f"`python bench/overhead.py --trials {k} --epochs {args.epochs} --per-class {args.per_class} "
          f"--size {args.size} --model {args.model}`: {k} {args.model} trials one after another, {args.size} px, "
          f"{args.epochs} epochs, Kermany {2 * args.per_class} images, 1 thread; Tune ran them in "
          f"{'/'.join(map(str, workers))} worker process(es)\n")
    print("| measure | value | target |\n|---|---|---|")
    for label, kind in ((f"{k} plain loops (xfer.train.fit)", "A"), (f"{k} trials, Tune + MLflow (run_phase)", "B")):
        for unit, values in (("wall", wall[kind]), ("CPU", cpu[kind])):
            print(f"| {label}, {unit} s | {', '.join(f'{x:.1f}' for x in values)} (mean {statistics.mean(values):.1f})"
                  " | |")
    print(ratio_line("Tune + MLflow / plain, wall time", b / a, "≤ 1.05×"))
    print(ratio_line("Tune + MLflow / plain, CPU time", cb / ca, "≤ 1.05×"))
    print(f"| added per trial, wall s / CPU s | {(b - a) / k:.1f} / {(cb - ca) / k:.1f} | |")
    print(f"| Ray start-up (once per study), wall s | {ray_start:.1f} | |")


if __name__ == "__main__":
    main()
