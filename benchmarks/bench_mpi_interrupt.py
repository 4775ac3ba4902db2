"""How fast ``mpirun -n 2 landscape-surf`` ends after Ctrl-C (issue 32, part 5): seconds from the
SIGINT until every rank has ended, for Ctrl-C (SIGINT to mpirun, which passes it on to every rank)
while the ranks start and while they compute, and for SIGINT to one rank alone.

    OMP_NUM_THREADS=1 python benchmarks/bench_mpi_interrupt.py [--rounds 3]

Uses the launcher, wrapper and waits of tests/runtime/test_mpi_interrupt.py (which checks the one
line, the exit code and the resume); each round starts a new job.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "runtime"))
sys.path.insert(0, ROOT)

from helpers import save_digits_cnn  # noqa: E402
from test_mpi_interrupt import finished_points, interrupt, rank_pids, start, wait_until  # noqa: E402

CASES = [("Ctrl-C while the ranks start", "starting", "mpirun"),
         ("Ctrl-C while they compute", "computing", "mpirun"),
         ("SIGINT to rank 0 alone, computing", "computing", "rank0"),
         ("SIGINT to rank 1 alone, computing", "computing", "rank1")]


def one(folder: Path, model: str, moment: str, target: str) -> tuple[float, int, str]:
    out = str(folder / f"s{time.monotonic_ns()}.h5")
    proc, pid_dir = start(folder, model, out)
    pids = rank_pids(pid_dir, proc)
    if moment == "computing":
        wait_until(lambda: finished_points(out) > 0, proc, "a point was saved")
    t0 = time.monotonic()
    err = interrupt(proc, pids, target)  # returns once mpirun and every rank have ended
    return time.monotonic() - t0, proc.returncode, err


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    folder = Path(tempfile.mkdtemp())
    model = save_digits_cnn(folder / "m.pt")
    print(f"mpirun -n 2 landscape-surf (digits_cnn, 200 samples, 21x21 grid), {args.rounds} rounds; seconds from "
          "the SIGINT until mpirun and both ranks have ended\n")
    print("| case | median s | worst s | exit codes | stderr lines |")
    print("|---|---:|---:|---|---|")
    try:
        for name, moment, target in CASES:
            runs = [one(folder, model, moment, target) for _ in range(args.rounds)]
            secs = [r[0] for r in runs]
            lines = sorted({len(r[2].splitlines()) for r in runs})
            print(f"| {name} | {statistics.median(secs):.2f} | {max(secs):.2f} | "
                  f"{', '.join(str(c) for c in sorted({r[1] for r in runs}))} | {', '.join(map(str, lines))} |")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
