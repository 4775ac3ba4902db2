"""The same figure from fewer points: adaptive grids against the full grid, worst case first.

    python benchmarks/bench_adaptive.py                       # every landscape, 41x41, TOL 0.01 and 0.003
    python benchmarks/bench_adaptive.py --landscapes dip,spike --tols 0.01 --placements 3

Landscapes (``--landscapes``):

- ``digits_cnn``: the demo's conv net with BatchNorm, trained on scikit-learn's digits (Adam,
  15 epochs, seed 0), over the training split (1,438 images);
- ``mlp_bc``: a ReLU MLP (30-64-64-2) trained on scikit-learn's breast-cancer data (standardized;
  Adam, 15 epochs, seed 0), over all 569 samples; ``mlp_bc60``: the same trained 60 epochs, to a
  loss of 1e-4 whose basin is creased by the ReLUs at the grid's own scale (the hard case);
- ``dip``, ``spike``, ``ridge``: two-parameter modules whose surface is a bowl with a dip 90 %
  deep, a spike or a ridge of width (Gaussian sigma) 2 grid steps (``tests/bumps.py``), at
  ``--placements`` random places and angles each (the worst placement is reported).

The networks' surfaces (-1:1 on both axes, filter-normalized random directions of seed 0) are
computed on the full grid and with ``Grid(adaptive=TOL)``; a bump's full grid is its closed form.
Reported: the fraction of points evaluated, the largest relative error of the loss against the
full grid (the worst point, not a percentile; the 99th percentile beside it), that error in units
of TOL, what the file records of the checks (points validated at random and the largest error the
interpolation had at them), and the wall times.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))  # bumps.py: the synthetic landscapes
sys.path.insert(0, HERE)

import bumps  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import landscape  # noqa: E402
from landscape.engine.options import Output  # noqa: E402
from landscape.evaluation.options import EvalOptions  # noqa: E402
from landscape.jobs.demo import fit  # noqa: E402
from landscape.models import build_model  # noqa: E402
from landscape.space.grid import Grid  # noqa: E402

NETWORKS = ("digits_cnn", "mlp_bc", "mlp_bc60")
LANDSCAPES = (*NETWORKS, *bumps.KINDS)
QUIET = Output(progress=False)


def breast_cancer() -> landscape.Dataset:
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    x = (x - x.mean(0)) / x.std(0)
    return landscape.Dataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y), 2, "breast_cancer")


def network(name: str):
    """The trained network and its data."""
    torch.manual_seed(0)
    if name == "digits_cnn":
        data = landscape.load_dataset("digits", split="train")
        return fit(build_model("digits_cnn", num_classes=10, in_channels=1), data, 0, 15), data
    data = breast_cancer()
    mlp = torch.nn.Sequential(torch.nn.Linear(30, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 2))
    return fit(mlp, data, 0, 60 if name == "mlp_bc60" else 15), data


def row(name: str, tol: float, full: np.ndarray, ad, t_full: float, t_ad: float) -> dict:
    rel = np.abs(ad.values["train_loss"] - full) / np.abs(full)
    return {"landscape": name, "tol": tol, "evaluated": float(ad.arrays["evaluated"].mean()), "max": float(rel.max()),
            "p99": float(np.percentile(rel, 99)), "validated": int(ad.attrs["adaptive_validated"]),
            "validation_error": float(ad.attrs["adaptive_validation_error"]), "t_full": t_full, "t_ad": t_ad,
            "loss_range": (float(full.min()), float(full.max()))}


def bench_network(name: str, num: int, tols: list[float]) -> list[dict]:
    model, data = network(name)
    ev = EvalOptions(device="cpu", batch_size=2048)
    t0 = time.perf_counter()
    full = landscape.surface(model, data, Grid((-1, 1, num), (-1, 1, num)), evaluation=ev, output=QUIET)
    t_full = time.perf_counter() - t0
    rows = []
    for tol in tols:
        t0 = time.perf_counter()
        ad = landscape.surface(model, data, Grid((-1, 1, num), (-1, 1, num), adaptive=tol), evaluation=ev,
                               output=QUIET)
        rows.append(row(name, tol, full.values["train_loss"], ad, t_full, time.perf_counter() - t0))
        report(rows[-1])
    return rows


def bench_bump(kind: str, num: int, tols: list[float], placements: int) -> list[dict]:
    """The worst of ``placements`` random places (and angles) of the feature, per TOL."""
    rng = np.random.default_rng(0)
    places = [(tuple(rng.uniform(-0.7, 0.7, 2)), float(rng.uniform(0, np.pi))) for _ in range(placements)]
    x, y = np.meshgrid(np.linspace(-1, 1, num), np.linspace(-1, 1, num))
    ev = EvalOptions(loss_fn=bumps.loss, accuracy_fn=None, batch_size=2, device="cpu")
    dirs = landscape.Directions(tensors=bumps.directions())
    rows = []
    for tol in tols:
        worst = None
        for center, angle in places:
            full = bumps.height(kind, x, y, center, angle, exp=np.exp)
            t0 = time.perf_counter()
            ad = landscape.surface(bumps.Bumps(kind, center, angle), bumps.data(),
                                   Grid((-1, 1, num), (-1, 1, num), adaptive=tol), directions=dirs, evaluation=ev,
                                   output=QUIET)
            r = row(f"{kind} (worst of {placements})", tol, full, ad, float("nan"), time.perf_counter() - t0)
            if worst is None or r["max"] > worst["max"]:
                worst = {**r, "evaluated": max(r["evaluated"], worst["evaluated"]) if worst else r["evaluated"]}
            else:
                worst["evaluated"] = max(worst["evaluated"], r["evaluated"])
        rows.append(worst)
        report(worst)
    return rows


def report(r: dict) -> None:
    print(f"{r['landscape']} tol {r['tol']}: {100 * r['evaluated']:.1f}% evaluated, largest error "
          f"{100 * r['max']:.2f}% ({r['max'] / r['tol']:.2f} TOL), p99 {100 * r['p99']:.2f}%", flush=True)


def table(rows: list[dict]) -> str:
    lines = ["| landscape | TOL | evaluated | largest error | largest / TOL | 99th pct | validated at random | "
             "their largest interpolation error | loss range | adaptive s | full s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        lo, hi = r["loss_range"]
        full = "" if np.isnan(r["t_full"]) else f"{r['t_full']:.1f}"
        lines.append(f"| {r['landscape']} | {r['tol']:g} | {100 * r['evaluated']:.1f}% | {100 * r['max']:.2f}% | "
                     f"{r['max'] / r['tol']:.2f} | {100 * r['p99']:.2f}% | {r['validated']} | "
                     f"{100 * r['validation_error']:.1f}% | {lo:.3g}..{hi:.3g} | {r['t_ad']:.1f} | {full} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--landscapes", default=",".join(LANDSCAPES))
    p.add_argument("--num", type=int, default=41, help="points per axis")
    p.add_argument("--tols", default="0.01,0.003", help="tolerances, comma-separated")
    p.add_argument("--placements", type=int, default=5, help="random places of each synthetic feature")
    args = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    tols = [float(t) for t in args.tols.split(",")]
    rows = []
    for name in args.landscapes.split(","):
        if name in NETWORKS:
            rows += bench_network(name, args.num, tols)
        elif name in bumps.KINDS:
            rows += bench_bump(name, args.num, tols, args.placements)
        else:
            p.error(f"unknown landscape {name!r}; choose from {', '.join(LANDSCAPES)}")
    rows.sort(key=lambda r: (r["tol"] != tols[0], LANDSCAPES.index(r["landscape"].split()[0])))
    print(f"Adaptive grids, {args.num}x{args.num}, {torch.get_num_threads()} thread(s). Each adaptive surface against "
          "its full grid: the largest relative error of the loss over all points (the worst point), the fraction "
          "of points evaluated; for the synthetic features the worst of their random placements (largest error "
          "and largest fraction). 'Validated at random': the points the refinement evaluated to check its "
          "estimate, and the largest error the interpolation had there (each such miss was refined around).\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
