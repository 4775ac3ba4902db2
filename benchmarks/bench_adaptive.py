"""The same figure from fewer points: adaptive grids against the full grid on the zoo's small networks.

    python benchmarks/bench_adaptive.py                          # digits_cnn, mlp, mlp_bn; 41x41; tol 0.01
    python benchmarks/bench_adaptive.py --archs digits_cnn --tols 0.003,0.01,0.03

Each network is trained on scikit-learn's digits (Adam, 15 epochs, seed 0, as the built-in demo),
then its 41x41 surface (-1:1 on both axes, filter-normalized random directions, the whole training
split) is computed on the full grid and with ``Grid(adaptive=TOL)``. Reported: the fraction of
points evaluated, the largest and the 99th-percentile relative error of the loss against the
full grid, the largest accuracy difference (points), and both wall times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import landscape  # noqa: E402
from landscape.engine.options import Output  # noqa: E402
from landscape.evaluation.options import EvalOptions  # noqa: E402
from landscape.jobs.demo import fit  # noqa: E402
from landscape.models import build_model  # noqa: E402
from landscape.space.grid import Grid  # noqa: E402


def trained(arch: str, data, seed: int = 0, epochs: int = 15) -> torch.nn.Module:
    torch.manual_seed(seed)
    return fit(build_model(arch, num_classes=10, in_channels=1), data, seed, epochs)


def bench(arch: str, num: int, tols: list[float]) -> list[dict]:
    data = landscape.load_dataset("digits", split="train")
    model = trained(arch, data)
    ev = EvalOptions(device="cpu", batch_size=512)
    quiet = Output(progress=False)
    t0 = time.perf_counter()
    full = landscape.surface(model, data, Grid((-1, 1, num), (-1, 1, num)), evaluation=ev, output=quiet)
    t_full = time.perf_counter() - t0
    rows = []
    for tol in tols:
        t0 = time.perf_counter()
        ad = landscape.surface(model, data, Grid((-1, 1, num), (-1, 1, num), adaptive=tol), evaluation=ev,
                               output=quiet)
        t_ad = time.perf_counter() - t0
        rel = np.abs(ad.values["train_loss"] - full.values["train_loss"]) / np.abs(full.values["train_loss"])
        acc = np.abs(ad.values["train_acc"] - full.values["train_acc"])
        row = {"arch": arch, "params": sum(p.numel() for p in model.parameters()), "num": num, "tol": tol,
               "evaluated": float(ad.arrays["evaluated"].mean()), "max": float(rel.max()),
               "p99": float(np.percentile(rel, 99)), "acc": float(acc.max()), "t_full": t_full, "t_ad": t_ad,
               "loss_range": (float(full.values["train_loss"].min()), float(full.values["train_loss"].max()))}
        rows.append(row)
        print(f"{arch} tol {tol}: {100 * row['evaluated']:.1f}% evaluated, max rel error {100 * row['max']:.2f}%, "
              f"p99 {100 * row['p99']:.2f}%, acc max diff {row['acc']:.2f} pts, {t_ad:.1f} s vs {t_full:.1f} s",
              flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| network | parameters | grid | TOL | evaluated | max rel. error | 99th pct | max acc. diff (pts) "
             "| loss range | adaptive s | full s |",
             "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        lo, hi = r["loss_range"]
        lines.append(f"| {r['arch']} | {r['params']:,} | {r['num']}x{r['num']} | {r['tol']:g} | "
                     f"{100 * r['evaluated']:.1f}% | {100 * r['max']:.2f}% | {100 * r['p99']:.2f}% | {r['acc']:.2f} | "
                     f"{lo:.3g}..{hi:.3g} | {r['t_ad']:.1f} | {r['t_full']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="digits_cnn,mlp,mlp_bn")
    p.add_argument("--num", type=int, default=41, help="points per axis")
    p.add_argument("--tols", default="0.01", help="tolerances, comma-separated")
    args = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    rows = []
    for arch in args.archs.split(","):
        rows += bench(arch, args.num, [float(t) for t in args.tols.split(",")])
    print(f"Adaptive grids, {torch.get_num_threads()} thread(s). Each network trained on digits (Adam, 15 epochs, "
          "seed 0); its surface over the whole training split (1,438 images) computed on the full grid and with "
          "`--adaptive TOL`; errors of the adaptive surface's loss against the full grid's, relative, at every "
          "point.\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
