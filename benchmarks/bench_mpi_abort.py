"""How fast an MPI job ends when one rank fails: the time from start to exit of a job whose rank
fails on its 4th point, against the same job run to its end without a failure.

    python benchmarks/bench_mpi_abort.py             # 3 ranks, 60 points of 0.05 s, 3 rounds
    python benchmarks/bench_mpi_abort.py --rounds 5

Runs tests/mpi_job.py's ``map`` job under ``mpirun`` (what tests/engine/test_mpi.py checks for
correctness; the wall-clock bound it used to assert, 15 s, is measured here instead). Prints a
Markdown table of the median seconds over the rounds, for a failure on rank 0 (the one that
hands out the points) and on another rank.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests"))

from test_mpi import command, job_env  # noqa: E402


def timed(args: list[str], ranks: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(command(ranks, "map", *args), capture_output=True, text=True, env=job_env(), timeout=600)
    return time.perf_counter() - t0, proc.returncode


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, default=3)
    p.add_argument("--points", type=int, default=60)
    p.add_argument("--delay", type=float, default=0.05, help="seconds per point")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    variants = {"no failure": [], "rank 0 fails on its 4th point": ["--fail-rank", "0", "--fail-after", "4"],
                "rank 1 fails on its 4th point": ["--fail-rank", "1", "--fail-after", "4"]}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    codes: dict[str, set[int]] = {name: set() for name in variants}
    with tempfile.TemporaryDirectory(prefix="bench_abort") as tmp:
        for r in range(a.rounds):  # interleaved, so the machine's load falls on every variant alike
            for k, (name, extra) in enumerate(variants.items()):
                log = os.path.join(tmp, f"{r}.{k}.log")
                dt, code = timed(["--n", str(a.points), "--delay", str(a.delay), "--log", log, *extra], a.ranks)
                seconds[name].append(dt)
                codes[name].add(code)
    print(f"# {a.ranks} ranks, {a.points} points of {a.delay} s, median of {a.rounds} rounds; "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()})\n")
    print("| job | seconds from start to exit | exit codes |")
    print("|---|---:|---|")
    for name in variants:
        print(f"| {name} | {statistics.median(seconds[name]):.2f} | {', '.join(map(str, sorted(codes[name])))} |")
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
