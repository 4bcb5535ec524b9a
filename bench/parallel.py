"""Trials in parallel: N concurrent one-CPU trials vs the same trials one after another, through the
same Ray Tune path (`xfer.tune.run_phase`), measured side by side (S P P S) in one run.

    python bench/parallel.py [--trials 4] [--epochs 2] [--per-class 200]

N is the CPUs Ray sees (2 on the development machine). Target: ≥ 1.7× on 2 cores. Each run is a fresh
MLflow experiment, so no trial is skipped as already finished. The machine's own capacity is measured
first (N processes of one-thread matrix products vs one): on a shared machine, or vCPUs that are
hyper-threads of one core, it is below N, and no scheduler can beat it.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import ray

from common import ROOT, kermany, machine, one_model_study, ratio_line, run_trials, timed, with_name

from xfer.config import RayConfig
from xfer.data.prepare import prepare_data
from xfer.cluster import connect


MATMULS = ("import time, torch; torch.set_num_threads(1); a = torch.randn(512, 512); began = time.perf_counter()\n"
           "for _ in range(300): a @ a\n"
           "print(time.perf_counter() - began)")


def capacity(processes: int) -> float:
    """Speed-up of `processes` concurrent one-thread workloads over one, as this machine gives it right now."""
    def run(n: int) -> float:
        children = [subprocess.Popen([sys.executable, "-c", MATMULS], stdout=subprocess.PIPE, text=True)
                    for _ in range(n)]
        return statistics.mean(float(c.communicate()[0]) for c in children)

    alone = statistics.mean([run(1), run(1)])
    together = statistics.mean([run(processes), run(processes)])
    return processes * alone / together


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--per-class", type=int, default=200)
    parser.add_argument("--model", default="cbr_small")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="xfer-parallel-"))
    base = one_model_study("parallel", kermany(64, args.per_class, ROOT / ".xfer_cache"), args.model, args.epochs,
                           tmp / "0", seeds=tuple(range(args.trials)))
    prepare_data(base.data, ROOT)  # warm the image cache
    connect("local")  # a Ray of its own, even beside a `ray start` cluster
    slots = int(ray.cluster_resources()["CPU"])
    machine_before = capacity(slots)
    print(f"[bench] machine capacity: {slots} processes run {machine_before:.2f}× as fast as one", flush=True)

    wall: dict[str, list[float]] = {"S": [], "P": []}
    for i, kind in enumerate("SPPS"):
        study = dataclasses.replace(with_name(base, f"parallel{i}", tmp / str(i)),
                                    ray=RayConfig(max_concurrent=1 if kind == "S" else None))
        _, seconds = timed(lambda: run_trials(study))
        wall[kind].append(seconds)
        print(f"[bench] {'one after another' if kind == 'S' else f'{slots} at once'}: {seconds:.1f} s", flush=True)

    machine_after = capacity(slots)
    print(f"[bench] machine capacity after: {machine_after:.2f}×", flush=True)
    machine_speedup = (machine_before + machine_after) / 2
    s, p = statistics.mean(wall["S"]), statistics.mean(wall["P"])
    print(f"\n### parallel — {machine()}")
    print(f"`python bench/parallel.py --trials {args.trials} --epochs {args.epochs} --per-class {args.per_class} "
          f"--model {args.model}`: {args.trials} {args.model} trials (64 px, {args.epochs} epoch(s), Kermany "
          f"{2 * args.per_class} images), 1 CPU each, Ray sees {slots} CPUs\n")
    print("| measure | value | target |\n|---|---|---|")
    print(f"| one after another (max_concurrent 1), s | {', '.join(f'{x:.1f}' for x in wall['S'])} "
          f"(mean {s:.1f}) | |")
    print(f"| {slots} at once, s | {', '.join(f'{x:.1f}' for x in wall['P'])} (mean {p:.1f}) | |")
    print(ratio_line(f"speed-up with {slots} concurrent trials", s / p, f"≥ 1.7× on 2 cores"))
    print(f"| parallel efficiency (speed-up / {slots}) | {s / p / slots:.0%} | |")
    print(f"| the machine's own speed-up for {slots} one-thread processes, before / after | "
          f"{machine_before:.2f}× / {machine_after:.2f}× | |")
    print(f"| trials' speed-up / the machine's | {s / p / machine_speedup:.0%} | |")


if __name__ == "__main__":
    main()
