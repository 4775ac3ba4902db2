"""Epoch time of ``landscape-train``'s loop: ResNet-20 on synthetic CIFAR-shaped images.

    python benchmarks/bench_train.py                       # ResNet-20, 10,000 images, 2 epochs
    python benchmarks/bench_train.py --channels-last --no-aug --epochs 1
    python benchmarks/bench_train.py --quant bc,sr --size 4096 --epochs 4   # quantization hooks' cost

Times, separately, the training pass over the images (SGD + Nesterov, batch 128, random crop
+ flip on the fly) and the evaluation pass over the same number of test images, per epoch, with
the same code that :func:`landscape.jobs.train.train` runs (its :class:`landscape.training.Loop`); the
first epoch is reported apart (warm-up). Prints one Markdown table row per setting.

``--quant bc,sr`` adds a second table: the same epochs in full precision and with each
quantization hook (binary weights), the variants interleaved epoch by epoch so that a busy machine
slows them alike; the steady epoch time (median after the first) of each as a ratio to full
precision, and the time spent inside the hooks themselves, measured around their calls.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from landscape.evaluation.evaluator import keep_malloc_arenas  # noqa: E402
from landscape.jobs.train import TrainConfig, TrainJob  # noqa: E402
from landscape.training import Loop  # noqa: E402


def make_loop(a, out: str, quant: str | None = None) -> Loop:
    """The loop of a run over synthetic data of ``a.size`` images, writing nothing until it runs."""
    c = TrainConfig.from_args(arch=a.arch, dataset="synthetic", synthetic_size=a.size, epochs=a.epochs,
                    batch_size=a.batch_size, channels_last=a.channels_last, augment=not a.no_aug,
                    device="cpu", progress=False, out=out, quant=quant, bits=1)
    return TrainJob(c).loop


def timed_hooks(loop: Loop) -> list[float]:
    """Wrap the loop's hooks' per-step methods with timers; returns the running total (s)."""
    total = [0.0]
    for h in loop.hooks:
        for name in ("before_forward", "after_backward", "after_step"):
            inner = getattr(h, name)

            def timed(*args, _inner=inner, **kw):
                t0 = time.perf_counter()
                _inner(*args, **kw)
                total[0] += time.perf_counter() - t0

            setattr(h, name, timed)
    return total


def one_epoch(loop: Loop, epoch: int) -> float:
    loop.epoch = epoch
    t0 = time.perf_counter()
    loop.train_epoch()
    return time.perf_counter() - t0


def quant_table(a) -> None:
    variants = ["full"] + [q for q in a.quant.split(",") if q]
    times: dict[str, list[float]] = {v: [] for v in variants}
    in_hooks: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as tmp:
        loops, totals = {}, {}
        for v in variants:
            loops[v] = make_loop(a, os.path.join(tmp, v), None if v == "full" else v)
            totals[v] = timed_hooks(loops[v])
        for epoch in range(1, a.epochs + 1):
            for v in variants:
                before = totals[v][0]
                times[v].append(one_epoch(loops[v], epoch))
                in_hooks[v].append(totals[v][0] - before)
                print(f"epoch {epoch} {v}: train {times[v][-1]:.2f} s (hooks {in_hooks[v][-1]:.3f} s)",
                      file=sys.stderr)
    steady = {v: statistics.median(t[1:] or t) for v, t in times.items()}
    hooks = {v: statistics.median(t[1:] or t) for v, t in in_hooks.items()}
    print()
    print(f"| {a.arch}, {a.size} images, batch {a.batch_size}, {torch.get_num_threads()} threads | first epoch s "
          "| steady epoch s | vs full precision | inside the hooks s | hooks' share |")
    print("|---|---|---|---|---|---|")
    for v in variants:
        name = {"full": "full precision", "bc": "BC (binary)", "sr": "SR (binary)", "r": "R (binary)"}.get(v, v)
        print(f"| {name} | {times[v][0]:.2f} | {steady[v]:.2f} | {steady[v] / steady['full']:.3f}x | "
              f"{hooks[v]:.3f} | {100 * hooks[v] / steady[v]:.1f}% |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="resnet20")
    p.add_argument("--size", type=int, default=10_000, help="training (and test) images")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--no-aug", action="store_true")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="leave glibc's malloc trimming on (to measure its cost)")
    p.add_argument("--quant", default=None, metavar="bc,sr,r",
                   help="instead: time full precision against these quantization hooks (binary weights)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if not a.no_malloc_tuning:
        keep_malloc_arenas()
    if a.quant:
        quant_table(a)
        return 0
    train_times, eval_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        loop = make_loop(a, os.path.join(tmp, "run"))
        test = loop.test_data
        for epoch in range(1, a.epochs + 1):
            train_times.append(one_epoch(loop, epoch))
            t1 = time.perf_counter()
            loop.evaluate(test)
            eval_times.append(time.perf_counter() - t1)
            print(f"epoch {epoch}: train {train_times[-1]:.1f} s, eval {eval_times[-1]:.1f} s", file=sys.stderr)
    steady = train_times[1:] or train_times
    steady_eval = eval_times[1:] or eval_times
    tr = sum(steady) / len(steady)
    ev = sum(steady_eval) / len(steady_eval)
    print("| arch | images | batch | threads | augmentation | channels-last | first epoch s "
          "| steady epoch s | images/s | eval pass s | machine |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {a.arch} | {a.size} | {a.batch_size} | {torch.get_num_threads()} | "
          f"{'on' if not a.no_aug else 'off'} | {'yes' if a.channels_last else 'no'} | "
          f"{train_times[0]:.1f} | {tr:.1f} | {a.size / tr:.0f} | {ev:.1f} | "
          f"{platform.processor() or platform.machine()}, torch {torch.__version__} |")
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
