"""Training throughput of one trial (images/s through xfer.train.fit) for resnet18 and cbr_small at 224 and
128 px on this machine's CPU, or its GPU when there is one (with the GPU's mean utilisation).

    python bench/throughput.py [--threads 1] [--seconds 10] [--batch 16]

A trial with `resources: {cpu: 1}` trains with one thread, hence the default. Each measurement is one
epoch of real Kermany X-rays sized to take about --seconds, after a two-batch warm-up epoch; the
validation pass that fit() runs after the epoch is timed apart and taken out.
"""
from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import threading
from typing import Iterator, Optional

import numpy as np
import torch

from common import ROOT, kermany, machine, timed

from xfer.config import TrainConfig
from xfer.data.prepare import PreparedData, prepare_data
from xfer.models import build_model
from xfer.train import FitData, fit, pick_device, predict_probs

CONFIGS = [("resnet18", 224), ("cbr_small", 224), ("resnet18", 128), ("cbr_small", 128)]


@contextlib.contextmanager
def gpu_utilisation(device: torch.device) -> Iterator[list[float]]:
    """Samples nvidia-smi's GPU utilisation (%) every 0.2 s while the block runs; empty list on a CPU."""
    samples: list[float] = []
    if device.type != "cuda" or shutil.which("nvidia-smi") is None:
        yield samples
        return
    index = str(device.index or torch.cuda.current_device())
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            out = subprocess.run(["nvidia-smi", "-i", index, "--query-gpu=utilization.gpu",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True)
            with contextlib.suppress(ValueError):
                samples.append(float(out.stdout.strip()))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        done.set()
        thread.join()


def images_per_second(model_name: str, size: int, data: PreparedData, device: torch.device, batch: int,
                      seconds: float) -> tuple[float, int, Optional[float]]:
    """(training images/s, images in the timed epoch, mean GPU utilisation %) for one model and size."""
    torch.manual_seed(0)
    model = build_model(model_name, len(data.classes), 1)
    pool, val_idx = np.asarray(data.split.train), np.asarray(data.split.val)[:batch]

    def epoch(n_images: int):
        cfg = TrainConfig(epochs=1, batch_size=batch, class_weights=False)
        fit_data = FitData(data.images_at, data.labels, pool[:n_images], val_idx, data.classes, size)
        return fit(model, model_name, fit_data, cfg, "unit", 0, device=device).history[0]["epoch_seconds"]

    warm = epoch(2 * batch)
    n_batches = int(np.clip(round(seconds / (warm / 2)), 2, len(pool) // batch))
    with gpu_utilisation(device) as util:
        epoch_seconds = epoch(n_batches * batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    _, val_seconds = timed(lambda: predict_probs(model, data.images_at(size)[val_idx], "unit", device))
    train_seconds = max(epoch_seconds - val_seconds, 1e-9)
    return n_batches * batch / train_seconds, n_batches * batch, statistics.mean(util) if util else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=None, help="default: 16 on a CPU, 64 on a GPU")
    args = parser.parse_args()
    device = pick_device()
    torch.set_num_threads(args.threads)
    batch = args.batch or (64 if device.type == "cuda" else 16)
    per_class = 1300 if device.type == "cuda" else 200

    rows = []
    for model_name, size in CONFIGS:
        data = prepare_data(kermany(size, per_class, ROOT / ".xfer_cache"), ROOT)
        rate, n, util = images_per_second(model_name, size, data, device, batch, args.seconds)
        rows.append((model_name, size, rate, n, util))
        print(f"[bench] {model_name} {size} px: {rate:.1f} images/s over {n} images", flush=True)

    where = f"GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else f"CPU, {args.threads} thread(s)"
    print(f"\n### throughput — {machine()}")
    print(f"`python bench/throughput.py --threads {args.threads} --seconds {args.seconds:g} --batch {batch}`: "
          f"training images/s of one trial ({where}), batch {batch}, Kermany X-rays, 1 channel\n")
    print("| model | px | training images/s | images timed | GPU utilisation |\n|---|---|---|---|---|")
    for model_name, size, rate, n, util in rows:
        print(f"| {model_name} | {size} | {rate:.1f} | {n} | {'—' if util is None else f'{util:.0f} %'} |")


if __name__ == "__main__":
    main()
