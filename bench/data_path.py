"""Why xfer decodes once: a training epoch's data path from the decoded/resized cache (xfer.data.cache,
as xfer.train reads it) vs decoding and resizing the image files every epoch, side by side in one run.

    python bench/data_path.py [--epochs 3] [--per-class 200]

Both paths batch 16 images per step in the training process (num_workers=0, the TrainConfig default),
shuffle, and hand the model normalized float tensors; no model runs, so the numbers are the data path
alone. Target: the cache ≥ 5× faster per epoch.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from common import ROOT, DATA, kermany, machine, ratio_line, timed

from xfer.config import DataConfig, DatasetConfig, SplitConfig
from xfer.data.cache import load_image_array
from xfer.data.read_image import read_image_resized
from xfer.data.normalize import normalize
from xfer.data.records import Record, load_records

BATCH = 16


class DecodingDataset(Dataset):
    """Reads and resizes each image file whenever it is indexed: the path without a cache."""

    def __init__(self, records: list[Record], size: int):
        self.records, self.size = records, size

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        return torch.tensor(read_image_resized(self.records[i].path, self.size)), self.records[i].label


def consume(loader: DataLoader) -> int:
    seen = 0
    for x, _ in loader:
        normalize(x, "unit")
        seen += len(x)
    return seen


def cached_epoch(records: list[Record], size: int, cache_dir: Path) -> int:
    images, _ = load_image_array(records, size, 1, cache_dir)  # memory-mapped after the first call
    labels = torch.tensor([r.label for r in records])
    dataset = TensorDataset(torch.from_numpy(np.ascontiguousarray(images[np.arange(len(records))])), labels)
    return consume(DataLoader(dataset, batch_size=BATCH, shuffle=True))


def decoded_epoch(records: list[Record], size: int) -> int:
    return consume(DataLoader(DecodingDataset(records, size), batch_size=BATCH, shuffle=True))


def actualmed() -> DataConfig:
    dataset = DatasetConfig(name="actualmed", layout="metadata_csv", root=str(DATA / "covid-actualmed"),
                            filename_column="imagename", label_column="finding", patient_column="patientid",
                            label_map={"No finding": "normal", "COVID-19": "covid"})
    return DataConfig(datasets=(dataset,), classes=("normal", "covid"), split=SplitConfig())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cache_dir = Path(tempfile.mkdtemp(prefix="xfer-datapath-"))  # a cold cache, built below and timed

    sets = [("Kermany 224-px JPEG", load_records(kermany(64, args.per_class, cache_dir), ROOT), (64, 128, 224)),
            ("Actualmed 512-px PNG", load_records(actualmed(), ROOT), (64, 224))]
    rows = []
    for name, records, sizes in sets:
        for size in sizes:
            _, build = timed(lambda: load_image_array(records, size, 1, cache_dir))
            cached, decoded = [], []
            for _ in range(args.epochs):  # interleaved, so load changes hit both alike
                cached.append(timed(lambda: cached_epoch(records, size, cache_dir))[1])
                decoded.append(timed(lambda: decoded_epoch(records, size))[1])
            c, d = statistics.median(cached), statistics.median(decoded)
            rows.append((f"{name}, {len(records)} images, {size} px", c, d, build))
            print(f"[bench] {rows[-1][0]}: cache {c:.3f} s, decode {d:.3f} s per epoch", flush=True)

    print(f"\n### data path — {machine()}")
    print(f"`python bench/data_path.py --epochs {args.epochs} --per-class {args.per_class}`: median of "
          f"{args.epochs} epochs, batch {BATCH}, 1 thread, no model\n")
    print("| data | epoch from cache, s | epoch decoding files, s | cache speed-up (target ≥ 5×) | building the cache once, s |")
    print("|---|---|---|---|---|")
    for label, c, d, build in rows:
        print(f"| {label} | {c:.3f} | {d:.3f} | {d / c:.1f}× | {build:.2f} |")
    worst = min(d / c for _, c, d, _ in rows)
    print("\n| measure | value | target |\n|---|---|---|")
    print(ratio_line("smallest cache speed-up", worst, "≥ 5×"))


if __name__ == "__main__":
    main()
