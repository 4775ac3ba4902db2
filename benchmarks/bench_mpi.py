"""Surface throughput with MPI: ``mpirun -n 2`` (1 thread each) against one process.

    python benchmarks/bench_mpi.py            # ResNet-20, 2,048 synthetic CIFAR-shaped images, 5x5
    python benchmarks/bench_mpi.py --quick    # 256 images, 3x3 grid, one round

Variants, each a fresh ``landscape.jobs.surf.surf`` run of the same surface in its own process(es), timed
interleaved (round-robin, ``--rounds`` rounds):

- ``2 ranks x 1 thread``: ``mpirun -n 2``, ``threads=1`` per rank;
- ``1 process x 2 threads`` and ``1 process x 1 thread``.

The time measured is that of the point loop on rank 0 (``map_points``: from handing out the first
point to receiving the last, file flushes included), not start-up, data or model loading. Prints a
Markdown table of points per second (median over rounds), the ratios measured in this one run,
and the parallel efficiency (2 ranks) / (2 x 1 thread); and checks that every variant wrote the
same surface.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

VARIANTS = {  # name: (ranks, threads per rank)
    "2 ranks x 1 thread": (2, 1),
    "1 process x 2 threads": (1, 2),
    "1 process x 1 thread": (1, 1),
}


def find_mpirun() -> str:
    """The launcher next to this Python (the mpich wheel's), else the first one on PATH."""
    here = os.path.dirname(sys.executable)
    for name in ("mpirun", "mpiexec"):
        if os.path.isfile(os.path.join(here, name)):
            return os.path.join(here, name)
    found = shutil.which("mpirun") or shutil.which("mpiexec")
    if not found:
        sys.exit("bench_mpi: no mpirun/mpiexec found (pip install mpi4py mpich)")
    return found


def run_surface(a: argparse.Namespace) -> int:
    """One variant (``--run``): compute the surface, print rank 0's point-loop timing as JSON."""
    import landscape.engine.points as points
    from landscape import EvalOptions, Grid, Output
    from landscape.data.datasets import DataSpec
    from landscape.jobs.surf import SurfConfig, surf
    from landscape.runtime.parallel import world

    comm = world()
    timing = {}
    loop = points.map_points

    def timed_loop(job, indices, *args, **kwargs):
        t0 = time.perf_counter()
        loop(job, indices, *args, **kwargs)
        timing.update(points=len(indices), seconds=time.perf_counter() - t0)

    points.map_points = timed_loop
    cfg = SurfConfig(
        model=a.model, arch=a.arch, data=DataSpec(dataset="synthetic", synthetic_size=a.size), grid=Grid(a.x, a.y),
        evaluation=EvalOptions(loss_fn="crossentropy", threads=a.threads, batch_size=a.batch_size, device="cpu"),
        output=Output(a.out, overwrite=True, progress=False),
    )
    surf(cfg, comm)
    if comm.rank == 0:
        print(json.dumps(timing))
    return 0


def save_model(arch: str, path: str) -> None:
    import torch

    from landscape.models import build_model

    torch.manual_seed(0)
    torch.save(build_model(arch, num_classes=10, in_channels=3).state_dict(), path)


def run_variant(name: str, a: argparse.Namespace, model: str, out: str) -> dict:
    ranks, threads = VARIANTS[name]
    cmd = [sys.executable, os.path.abspath(__file__), "--run", "--model", model, "--out", out,
           "--arch", a.arch, "--size", str(a.size), f"--x={a.x}", f"--y={a.y}",
           "--threads", str(threads), "--batch-size", str(a.batch_size)]
    if ranks > 1:
        cmd = [find_mpirun(), "-n", str(ranks), *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_", "PMIX_"))}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    if proc.returncode != 0:
        sys.exit(f"bench_mpi: {name} failed:\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["rate"] = result["points"] / result["seconds"]
    print(f"{name}: {result['points']} points in {result['seconds']:.2f} s "
          f"({result['rate']:.3f} points/s)", file=sys.stderr)
    return result


def max_difference(paths: list[str]) -> float:
    import numpy as np

    from landscape.io.surface_file import read_surface

    first = read_surface(paths[0]).loss
    return max(float(np.max(np.abs(read_surface(p).loss - first))) for p in paths[1:])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--size", type=int, default=2048, help="synthetic images (all evaluated)")
    p.add_argument("--grid", type=int, default=5, help="points per axis of the 2D grid")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--quick", action="store_true", help="256 images, 3x3 grid, one round")
    p.add_argument("--run", action="store_true", help=argparse.SUPPRESS)  # one variant
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    p.add_argument("--x", default=None, help=argparse.SUPPRESS)
    p.add_argument("--y", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.run:
        return run_surface(a)
    if a.quick:
        a.size, a.grid, a.rounds = 256, 3, 1
    a.x = a.y = f"-1:1:{a.grid}"

    import torch

    with tempfile.TemporaryDirectory(prefix="bench_mpi") as tmp:
        model = os.path.join(tmp, f"{a.arch}.pt")
        save_model(a.arch, model)
        rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
        outs = {name: os.path.join(tmp, f"{i}.h5") for i, name in enumerate(VARIANTS)}
        for r in range(a.rounds):
            print(f"round {r + 1}/{a.rounds}", file=sys.stderr)
            for name in VARIANTS:
                rates[name].append(run_variant(name, a, model, outs[name])["rate"])
        diff = max_difference(list(outs.values()))

    rate = {name: statistics.median(v) for name, v in rates.items()}
    mpi, two, one = (rate[name] for name in VARIANTS)
    print(f"\n{a.arch}, {a.size} synthetic images, {a.grid}x{a.grid} grid, batch {a.batch_size}, "
          f"{a.rounds} round(s) interleaved; {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}), torch {torch.__version__}\n")
    print("| variant | points/s | vs 1 process x 1 thread |")
    print("|---|---|---|")
    for name in VARIANTS:
        print(f"| {name} | {rate[name]:.3f} | {rate[name] / one:.2f}x |")
    print(f"\n2 ranks / (1 process x 2 threads): {mpi / two:.2f}x; "
          f"parallel efficiency (2 ranks) / (2 x 1 thread): {mpi / (2 * one):.0%}; "
          f"largest loss difference between variants: {diff:.1e}")
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main, when=lambda argv: "--run" not in argv))  # not for one variant's run
