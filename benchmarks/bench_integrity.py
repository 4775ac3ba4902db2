"""What the integrity checks of reading cost (issue 32): a large checkpoint's CRC-32 check of every
zip member and the SHA-256 of its entries against ``torch.load`` itself, and how fast the reader
child reads a large HDF5 file of ours against the time it is allowed (``landscape.io.h5.read_limit``).

    OMP_NUM_THREADS=1 python benchmarks/bench_integrity.py [--mb 300] [--reps 5]

Each repetition times the steps on the same file one after another (warm page cache), so each
ratio is of one run; the table gives the median and the worst of the repetitions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from landscape.io import h5  # noqa: E402
from landscape.io.checkpoint import contents_sha256, read_checkpoint, save_checkpoint, verify_archive  # noqa: E402


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def checkpoint(folder: str, mb: int) -> str:
    """A checkpoint dict of ``mb`` MB of float32 tensors (a state dict of 4 MB layers, and the
    optimizer's momentum for half of them), written as landscape writes one."""
    g = torch.Generator().manual_seed(0)
    n = max(1, mb // 6)
    sd = {f"layer{i}.weight": torch.randn(1024, 1024, generator=g) for i in range(n)}
    momentum = {i: {"momentum_buffer": torch.randn(1024, 512, generator=g)} for i in range(n)}
    obj = {"state_dict": sd, "epoch": 10, "optimizer": {"state": momentum, "param_groups": [{"lr": 0.1}]},
           "args": {"lr": 0.1, "epochs": 10}}
    return save_checkpoint(os.path.join(folder, "big.pt"), obj)


def h5_file(folder: str, mb: int) -> str:
    path = os.path.join(folder, "big.h5")
    rng = np.random.default_rng(0)
    with h5.writing(path, size=mb << 20) as f:
        g = f.create_group("xdirection")
        for i in range(max(1, mb // 4)):
            h5.dataset(g, str(i), rng.standard_normal((1024, 1024), dtype=np.float32))
    return path


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--mb", type=int, default=300)
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    folder = tempfile.mkdtemp()
    try:
        path = checkpoint(folder, args.mb)
        size = os.path.getsize(path) / 1e6
        rows = {"CRC-32 of every member": [], "SHA-256 of every entry": [], "read_checkpoint (all)": []}
        loads = []
        for _ in range(args.reps):
            load, obj = timed(lambda: torch.load(path, map_location="cpu", weights_only=True))
            crc, _ = timed(lambda: verify_archive(path))
            sha, _ = timed(lambda o=obj: contents_sha256(o))
            del obj
            full, _ = timed(lambda: read_checkpoint(path))
            loads.append(load)
            rows["CRC-32 of every member"].append((crc, crc / load))
            rows["SHA-256 of every entry"].append((sha, sha / load))
            rows["read_checkpoint (all)"].append((full, full / load))
        print(f"A checkpoint of {size:.0f} MB (state dict and momentum, float32), {args.reps} repetitions; "
              f"`torch.load(weights_only=True)` took {statistics.median(loads):.2f} s (median), "
              f"{max(loads):.2f} s (worst).\n")
        print("| step | median s | x torch.load, median | x torch.load, worst |")
        print("|---|---|---|---|")
        for name, values in rows.items():
            secs, ratios = [v[0] for v in values], [v[1] for v in values]
            print(f"| {name} | {statistics.median(secs):.2f} | {statistics.median(ratios):.2f} | "
                  f"{max(ratios):.2f} |")
        os.remove(path)

        path = h5_file(folder, args.mb)
        size = os.path.getsize(path)
        h5.probe(path)  # the first probe also forks the reader
        times = [timed(lambda: h5.probe(path))[0] for _ in range(args.reps)]
        worst = max(times)
        print(f"\nThe reader child on an HDF5 file of ours of {size / 1e6:.0f} MB (a directions file's layout), "
              f"{args.reps} repetitions:\n")
        print("| median s | worst s | worst MB/s | time allowed (read_limit) s | allowed / worst |")
        print("|---|---|---|---|---|")
        print(f"| {statistics.median(times):.2f} | {worst:.2f} | {size / 1e6 / worst:.0f} | "
              f"{h5.read_limit(size):.0f} | {h5.read_limit(size) / worst:.0f} |")
    finally:
        for name in os.listdir(folder):
            os.remove(os.path.join(folder, name))
        os.rmdir(folder)
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
