"""The ordering of Li et al. (NIPS'17, Table 1) on a small problem: binary weights on digits.

    python benchmarks/bench_quant.py                        # mlp_bn on digits, Adam, 5 seeds
    python benchmarks/bench_quant.py --seeds 10 --epochs 80 # more seeds, longer
    python benchmarks/bench_quant.py --arch digits_cnn      # any zoo network or package.module:callable

Trains the same network, from the same initializations (one per seed), in full precision and with
binary weights by BinaryConnect (BC), big-batch stochastic rounding (SR with ``--big-batch`` times
the batch; by default for as many epochs times more, so that it takes as many steps as the
others), stochastic rounding (SR) and rounding (R), all with Adam and the same learning rate and
schedule, through ``landscape.jobs.train.train`` (the code of ``landscape-train --quant ...``). Prints a
Markdown table: the test error's mean and standard deviation over the seeds, each seed's error,
the fraction of binary weights that differ from their start (the paper's measure of how far SR
wanders) and the time; then whether the paper's ordering full <= BC < big-batch SR < SR < R holds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from landscape.jobs.train import TrainConfig, train  # noqa: E402

METHODS = {"fp": "full precision", "bc": "BC", "bigsr": "big-batch SR", "sr": "SR", "r": "R"}


def run(a, method: str, seed: int, out: str) -> dict:
    quant = {"fp": None, "bc": "bc", "bigsr": "sr", "sr": "sr", "r": "r"}[method]
    big = a.big_batch if method == "bigsr" else 1
    epochs = a.epochs * big if (method == "bigsr" and a.big_steps == "same-steps") else a.epochs
    c = TrainConfig.from_args(arch=a.arch, dataset=a.dataset, optimizer="adam", lr=a.lr, weight_decay=a.weight_decay,
                    batch_size=a.batch_size, epochs=epochs, seed=seed, out=out, progress=False,
                    save_every=epochs, quant=quant, bits=a.bits if quant else 1, big_batch=big)
    t0 = time.perf_counter()
    result = train(c)
    last = result.history[-1]
    return {"err": last["test_err"], "changed": last.get("quant_changed"), "train_loss": last["train_loss"],
            "seconds": time.perf_counter() - t0}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="mlp_bn")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--methods", default="fp,bc,bigsr,sr,r", help="of fp, bc, bigsr, sr, r")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--bits", type=int, default=1)
    p.add_argument("--big-batch", type=int, default=4)
    p.add_argument("--big-steps", choices=["same-steps", "same-epochs"], default="same-steps",
                   help="big-batch SR trains big-batch times the epochs (same number of steps, default) "
                   "or the same epochs (fewer steps)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest for small nets)")
    p.add_argument("--out", default=None, help="keep the runs in this folder (default: a temporary one)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    methods = [m for m in a.methods.split(",") if m]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    results: dict[str, list[dict]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        root = a.out or tmp
        for seed in range(a.seeds):
            for m in methods:
                r = run(a, m, seed, os.path.join(root, f"{m}_seed{seed}"))
                results[m].append(r)
                print(f"seed {seed} {METHODS[m]}: test error {r['err']:.2f}% ({r['seconds']:.1f} s)", file=sys.stderr)
    print()
    print(f"{a.arch} on {a.dataset}, {a.bits}-bit weights, Adam lr {a.lr}, batch {a.batch_size}, {a.epochs} epochs "
          f"(big-batch SR: batch x{a.big_batch}, {a.big_steps}), {a.seeds} seeds")
    print()
    print("| method | test error % (mean +- sd) | per seed | weights changed % | final train loss | time s |")
    print("|---|---|---|---|---|---|")
    means = {}
    for m in methods:
        errs = [r["err"] for r in results[m]]
        means[m] = statistics.mean(errs)
        sd = statistics.stdev(errs) if len(errs) > 1 else 0.0
        changed = [r["changed"] for r in results[m] if r["changed"] is not None]
        ch = f"{100 * statistics.mean(changed):.1f}" if changed else "-"
        loss = statistics.mean(r["train_loss"] for r in results[m])
        secs = sum(r["seconds"] for r in results[m])
        print(f"| {METHODS[m]} | {means[m]:.2f} +- {sd:.2f} | {' / '.join(f'{e:.2f}' for e in errs)} | {ch} | "
              f"{loss:.3f} | {secs:.0f} |")
    order = [m for m in ("fp", "bc", "bigsr", "sr", "r") if m in means]
    checks = [f"{METHODS[x]} {'<=' if x == 'fp' else '<'} {METHODS[y]}: "
              f"{'yes' if (means[x] <= means[y] if x == 'fp' else means[x] < means[y]) else 'NO'}"
              for x, y in zip(order, order[1:], strict=False)]
    print()
    print("ordering: " + "; ".join(checks))
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
