"""Threads per process: the default against 1 thread and against all cores, on a quiet machine and
under a competing load, as ratios measured in one run.

    python benchmarks/bench_threads.py              # digits_cnn, 11x11 surface, 1,000 images
    python benchmarks/bench_threads.py --rounds 3

Each variant is a fresh process computing the same surface with ``landscape.surface`` (threads: the
default rule of ``landscape.runtime.threads``, as a command decides it, ``1``, or every core), timed as a whole;
variants are interleaved over rounds and each keeps its median. The competing load is another
process multiplying matrices with torch on every core, started ``--warmup`` seconds before the
loaded measurements so the load average has seen it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

JOB = """
import sys, time, torch
import landscape as ls
from landscape.runtime.threads import choose_threads
threads = choose_threads(None if sys.argv[1] == "default" else int(sys.argv[1]))
torch.manual_seed(0)
model = ls.build_model("digits_cnn", num_classes=10, in_channels=1)
data = ls.load_dataset("digits", split="train").subset(int(sys.argv[3]))[0]
n = int(sys.argv[2])
t0 = time.perf_counter()
s = ls.surface(model, data, ls.Grid((-1, 1, n), (-1, 1, n)), evaluation=ls.EvalOptions(threads=threads, batch_size=256),
               output=ls.Output(progress=False))
print(time.perf_counter() - t0, s.attrs["threads_per_rank"])
"""

LOAD = """
import torch
torch.set_num_threads({cores})
a = torch.randn(1024, 1024)
while True:
    a = (a @ a).tanh_()
"""


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run(threads: str, grid: int, samples: int) -> tuple[float, int]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = ROOT
    out = subprocess.run([sys.executable, "-c", JOB, threads, str(grid), str(samples)], capture_output=True,
                         text=True, env=env, check=True).stdout.split()
    return float(out[0]), int(out[1])


def measure(variants: list[str], rounds: int, grid: int, samples: int) -> dict[str, tuple[float, int]]:
    times: dict[str, list[float]] = {v: [] for v in variants}
    chosen: dict[str, int] = {}
    for _ in range(rounds):
        for v in variants:
            seconds, n = run(v, grid, samples)
            times[v].append(seconds)
            chosen[v] = n
    return {v: (statistics.median(t), chosen[v]) for v, t in times.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--grid", type=int, default=11, help="points per axis (default 11)")
    p.add_argument("--samples", type=int, default=1000, help="digits images per point (default 1000)")
    p.add_argument("--rounds", type=int, default=2, help="timed runs per variant (median)")
    p.add_argument("--warmup", type=float, default=30.0, help="seconds of competing load before measuring")
    a = p.parse_args(argv)
    n = cores()
    variants = ["default", "1", str(n)]
    print(f"# bench_threads: {platform.processor() or platform.machine()}, {n} cores, load average before: "
          f"{os.getloadavg()[0]:.2f}; {a.grid}x{a.grid} surface of digits_cnn on {a.samples} images\n")
    print("| machine | default s (threads) | 1 thread s | all cores s | default / 1 thread | default / all cores |")
    print("|---|---|---|---|---|---|")
    rows = {}
    rows["quiet"] = measure(variants, a.rounds, a.grid, a.samples)
    load = subprocess.Popen([sys.executable, "-c", LOAD.format(cores=n)], stdout=subprocess.DEVNULL)
    try:
        time.sleep(a.warmup)
        rows[f"under load (a {n}-thread matmul loop)"] = measure(variants, a.rounds, a.grid, a.samples)
    finally:
        load.kill()
    for name, r in rows.items():
        (d, dn), (one, _), (every, _) = r["default"], r["1"], r[str(n)]
        print(f"| {name} | {d:.1f} ({dn}) | {one:.1f} | {every:.1f} | {d / one:.2f} | {d / every:.2f} |")
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
