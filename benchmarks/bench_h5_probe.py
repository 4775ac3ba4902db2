"""What reading a surface file in a child process costs (issue 24.2): ``read_surface`` with the
reader child (``landscape.io.h5.probe``) against reading in-process only, for small and large files.

    OMP_NUM_THREADS=1 python benchmarks/bench_h5_probe.py

The child is forked once per process (the first probe pays the fork of a process holding torch)
and reused; each later probe costs the reading of the file in the child plus two pipe messages.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np
import torch  # noqa: F401 - a process as a command has it: the fork copies its page tables

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import landscape.io.h5 as h5  # noqa: E402
from landscape.io.surface_file import new_surface, read_surface, write_surface  # noqa: E402


def best(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    folder = tempfile.mkdtemp()
    t = time.perf_counter()
    first = os.path.join(folder, "first.h5")
    write_surface(first, new_surface([np.linspace(-1, 1, 5)] * 2, ["train_loss"], {}))
    read_surface(first)
    print(f"first read of the process (forks the reader): {(time.perf_counter() - t) * 1e3:.1f} ms")
    for n in (5, 51, 401):
        s = new_surface([np.linspace(-1, 1, n)] * 2, ["train_loss", "train_acc"], {})
        for k in s.values:
            s.values[k][:] = np.random.default_rng(0).random((n, n))
            s.done[k][:] = True
        path = os.path.join(folder, f"s{n}.h5")
        write_surface(path, s)
        reps = 20 if n < 401 else 5
        with_child = best(lambda p=path: read_surface(p), reps)
        probe = best(lambda p=path: h5.probe(p), reps)
        real = h5.probe
        h5.probe = h5._examine  # in-process: the reading without the child
        try:
            in_process = best(lambda p=path: read_surface(p), reps)
        finally:
            h5.probe = real
        print(f"{n}x{n} ({os.path.getsize(path) / 1e3:.0f} kB): read_surface {with_child * 1e3:.1f} ms with the "
              f"child ({probe * 1e3:.1f} ms of it the probe), {in_process * 1e3:.1f} ms in-process")
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
