"""Speed of filter pruning: counting FLOPs from shapes, and a ResNet-56 sensitivity scan.

    python benchmarks/bench_prune.py                    # counts + ResNet-56, 9 ratios, 128 images
    python benchmarks/bench_prune.py --images 1000      # a bigger scan (time grows with the images)
    python benchmarks/bench_prune.py --skip-scan        # counts only

Counting: ``landscape.prune.count`` on ResNet-110 (32x32) and ResNet-34 (224x224, 1000 classes),
the first call and the best of several; and the whole ``landscape-prune --count --plan`` command
(in this process: parsing, the plan, both counts, the report), once each, which
tests/prune/test_prune_cli.py used to require under 3 s. The scan: every conv of ResNet-56 that can be pruned
alone (27) at 9 fractions, each pruned copy evaluated on synthetic CIFAR-shaped images, through
``landscape.prune.sensitivity`` (one data tensor, one evaluator per pruned model); compared
with the floor, one forward pass of the unpruned network over the same images per pair.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from landscape.cli import prune as prune_cli  # noqa: E402
from landscape.data.datasets import load_dataset  # noqa: E402
from landscape.evaluation.options import EvalOptions
from landscape.models import build_model  # noqa: E402
from landscape.prune import count, prune_filters, sensitivity  # noqa: E402


def _time_count(model, shape, repeats: int) -> tuple[float, float, tuple[int, int]]:
    t0 = time.perf_counter()
    result = count(model, shape)
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        count(model, shape)
        best = min(best, time.perf_counter() - t0)
    return first, best, result


def _randomize_bn(model: torch.nn.Module) -> torch.nn.Module:
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=128, help="synthetic CIFAR-shaped images per evaluation")
    p.add_argument("--ratios", type=int, default=9, help="fractions 0.1 .. 0.9 in this many steps")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=5, help="timed repeats of each count")
    p.add_argument("--skip-scan", action="store_true")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")

    print("\n| count | input | FLOPs | params | first call (ms) | best of " f"{a.repeats} (ms) |")
    print("|---|---|---:|---:|---:|---:|")
    for arch, shape, classes in (("resnet110", (3, 32, 32), 10), ("resnet34_imagenet", (3, 224, 224), 1000)):
        model = build_model(arch, num_classes=classes)
        first, best, (flops, params) = _time_count(model, shape, a.repeats)
        print(f"| {arch} | {'x'.join(map(str, shape))} | {flops:,} | {params:,} | {first * 1e3:.1f} | "
              f"{best * 1e3:.1f} |")

    print("\n| command | seconds |")
    print("|---|---:|")
    for arch, plan in (("resnet110", "resnet110-B"), ("resnet34_imagenet", "resnet34-C")):
        argv = ["--arch", arch, "--count", "--plan", plan]
        with contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            code = prune_cli.main(argv)
            seconds = time.perf_counter() - t0
        print(f"| `landscape-prune {' '.join(argv)}` | {seconds:.2f}{'' if code == 0 else f' (exit {code})'} |")

    torch.manual_seed(0)
    r56 = _randomize_bn(build_model("resnet56"))
    t0 = time.perf_counter()
    prune_filters(r56, "resnet56-B")
    print(f"\nprune_filters(resnet56, 'resnet56-B'): {time.perf_counter() - t0:.3f} s")
    if a.skip_scan:
        return 0

    data = load_dataset("synthetic", split="test", shape=(3, 32, 32), size=a.images)
    ratios = [round(0.1 + 0.8 * i / max(1, a.ratios - 1), 6) for i in range(a.ratios)]
    x = data.x.contiguous(memory_format=torch.channels_last)
    net = r56.to(memory_format=torch.channels_last)

    def forward_pass() -> float:  # the floor: one forward pass of the unpruned net over the images
        with torch.inference_mode():
            t0 = time.perf_counter()
            for xb in x.split(a.batch_size):
                net(xb)
            return time.perf_counter() - t0

    forward_pass()  # warm-up
    floors = [forward_pass() for _ in range(3)]
    t0 = time.perf_counter()
    res = sensitivity(r56, data, ratios, evaluation=EvalOptions(batch_size=a.batch_size, device="cpu"))
    total = time.perf_counter() - t0
    pairs = res.accuracy.size
    # the part of each pair that is not evaluation: the pruned copy and its evaluator's set-up
    from landscape.evaluation.evaluator import Evaluator
    from landscape.prune.graph import channel_graph
    from landscape.prune.removal import _prune

    graph = channel_graph(r56)
    t0 = time.perf_counter()
    for layer in res.layers:
        for r in ratios:
            Evaluator(_prune(r56, graph, {layer: r}, "independent"), data,
                      EvalOptions(loss_fn="crossentropy", batch_size=a.batch_size))
    setup = (time.perf_counter() - t0) / pairs
    per_pair = total / (pairs + 1)
    floor = min(floors + [forward_pass() for _ in range(3)])  # best of 3 before and 3 after the scan
    print(f"\nsensitivity scan of ResNet-56: {len(res.layers)} layers x {len(ratios)} ratios = {pairs} pairs "
          f"(+ the unpruned baseline) on {a.images} images, batch {a.batch_size}")
    print("| total (s) | per pair (s) | of which pruning + evaluator set-up (s) | floor: one forward pass of "
          "the unpruned net, best of 6 (s) |")
    print("|---:|---:|---:|---:|")
    print(f"| {total:.1f} | {per_pair:.3f} | {setup:.3f} ({100 * setup / per_pair:.0f}%) | {floor:.3f} |")
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
