"""Epoch time of ``landscape-train``'s loop: ResNet-20 on synthetic CIFAR-shaped images.

    python benchmarks/bench_train.py                       # ResNet-20, 10,000 images, 2 epochs
    python benchmarks/bench_train.py --channels-last --no-aug --epochs 1

Times, separately, the training pass over the images (SGD + Nesterov, batch 128, random crop
+ flip on the fly) and the evaluation pass over the same number of test images, per epoch, with
the same code that :func:`landscape.train.train` runs; the first epoch is reported apart
(warm-up). Prints one Markdown table row per setting.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from landscape.data import load_dataset  # noqa: E402
from landscape.evaluate import keep_malloc_arenas  # noqa: E402
from landscape.models import build_model  # noqa: E402
from landscape.train import (  # noqa: E402
    TrainConfig,
    _evaluate,
    _Runner,
    _train_epoch,
    init_params,
)


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
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    if not a.no_malloc_tuning:
        keep_malloc_arenas()
    c = TrainConfig(arch=a.arch, dataset="synthetic", synthetic_size=a.size, epochs=a.epochs,
                    batch_size=a.batch_size, channels_last=a.channels_last,
                    augment=not a.no_aug, device="cpu", progress=False)
    train_set = load_dataset("synthetic", split="train", size=a.size)
    test_set = load_dataset("synthetic", split="test", size=a.size)
    torch.manual_seed(0)
    model = build_model(a.arch, num_classes=10, in_channels=3)
    init_params(model)
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=c.lr, momentum=0.9, nesterov=True,
                          weight_decay=c.weight_decay)
    runner = _Runner(c, model, torch.device("cpu"), 10)
    train_times, eval_times = [], []
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        _train_epoch(runner, opt, (train_set.x, train_set.y), epoch, None, None)
        t1 = time.perf_counter()
        _evaluate(runner, (test_set.x, test_set.y), c.eval_batch_size)
        t2 = time.perf_counter()
        train_times.append(t1 - t0)
        eval_times.append(t2 - t1)
        print(f"epoch {epoch}: train {t1 - t0:.1f} s, eval {t2 - t1:.1f} s", file=sys.stderr)
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
    sys.exit(main())
