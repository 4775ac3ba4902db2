"""Seconds per grid point: our evaluator against the original tool's loop and against the floor.

    python benchmarks/bench_surface.py                 # ResNet-20 and VGG-9, 2,048 images
    python benchmarks/bench_surface.py --quick         # 256 images, ResNet-20 only, no compile

Variants, timed interleaved (round-robin, one grid point each per round) in one process:

- ``ours``: :class:`landscape.evaluation.evaluator.Evaluator` with its defaults (batch size from its timing
  probe, channels-last for conv nets, data preloaded) after :class:`landscape.space.params.Mover` moves
  the parameters in place;
- ``original``: the loop the original tool runs per point (``plot_surface.py`` with
  ``--dir_type states``): the state dict deep-copied, moved and loaded with ``load_state_dict``, a
  ``Dataset`` that turns each uint8 image into a PIL image, a tensor and normalizes it as it is read
  (torchvision's ``CIFAR10`` + ``ToTensor`` + ``Normalize``), iterated by a ``DataLoader`` with 2
  workers and batch 128 whose worker pool starts anew at every point;
- ``floor``: one fp32 eager forward pass over the same preloaded, normalized data at batch 128;
- ``compile`` and ``bf16``: ours with ``compile=True`` (compile time reported apart) and
  ``precision="bf16"``, whose loss is compared with fp32's at the same points.

Prints a Markdown table of seconds per point and the ratios (a)/(c) = ours/floor,
(b)/(a) = original/ours, ours/compile, ours/bf16 and bf16's largest relative loss error.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402  (matplotlib's dependency; what torchvision's CIFAR10 uses)

from landscape.data.datasets import Dataset  # noqa: E402
from landscape.directions.sampling import random_directions  # noqa: E402
from landscape.errors import LandscapeError  # noqa: E402
from landscape.evaluation.evaluator import Evaluator, cpu_has_bf16, keep_malloc_arenas  # noqa: E402
from landscape.evaluation.options import EvalOptions  # noqa: E402
from landscape.models import build_model  # noqa: E402
from landscape.space.params import Mover, snapshot  # noqa: E402

MEAN, STD = (0.491, 0.482, 0.447), (0.247, 0.243, 0.262)


class PerItemDataset(torch.utils.data.Dataset):
    """The original tool's CIFAR-10 input path (torchvision's ``CIFAR10`` with ``ToTensor()`` and
    ``Normalize``), written out: HWC uint8 images, each made a PIL image, converted to a float
    tensor and normalized as it is read."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.data = images.permute(0, 2, 3, 1).contiguous().numpy()  # (N, 32, 32, 3) as torchvision
        self.targets = labels.tolist()
        self.mean = torch.tensor(MEAN).view(3, 1, 1)
        self.std = torch.tensor(STD).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i):
        img = Image.fromarray(self.data[i])
        x = torch.from_numpy(np.array(img, np.uint8, copy=True)).permute(2, 0, 1).contiguous()
        x = x.float().div(255)
        return x.sub_(self.mean).div_(self.std), self.targets[i]


def make_data(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, Dataset]:
    """Random uint8 images labelled by a fixed random linear teacher (so there is signal)."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    x = (images.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    labels = (x.flatten(1) @ torch.randn(3 * 32 * 32, 10, generator=g)).argmax(1)
    return images, labels, Dataset(x, labels, 10, "synthetic")


def fit_(model: torch.nn.Module, data: Dataset, steps: int) -> None:
    """A few SGD steps, so the network is not at its random initialization: bf16's error is
    measured on a network whose logits mean something."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(1)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(data), (128,), generator=g)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(data.x[idx]), data.y[idx]).backward()
        opt.step()
    model.eval()


def original_point(model, origin, dirs, coords, loader_data) -> float:
    """One point the way the original tool computes it (evaluation.py + projection of weights)."""
    state = copy.deepcopy(origin)  # net_plotter.set_states deep-copies the state dict per point
    for a, d in zip(coords, dirs, strict=True):
        for k in state:
            if state[k].is_floating_point():
                state[k] += a * d[k]
    model.load_state_dict(state)
    loader = torch.utils.data.DataLoader(loader_data, batch_size=128, shuffle=False, num_workers=2)
    model.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for xb, yb in loader:
            out = model(xb)
            total += F.cross_entropy(out, yb, reduction="sum").item()
            n += len(yb)
    return total / n


def floor_point(model, data: Dataset) -> None:
    with torch.inference_mode():
        for xb in data.x.split(128):
            model(xb)


def bench(arch: str, n: int, rounds: int, with_compile: bool, train_steps: int) -> dict:
    torch.manual_seed(0)
    images, labels, data = make_data(n)
    points = [(a, b) for a in (-0.5, 0.0, 0.5) for b in (-0.5, 0.5)]

    ref_model = build_model(arch)
    fit_(ref_model, data, train_steps)
    origin = snapshot(ref_model, "states")
    dirs = random_directions(origin, 2, "filter", "biasbn", seed=0)

    def ours_factory(**kw):
        model = build_model(arch)
        model.load_state_dict(origin)
        ev = Evaluator(model, data, EvalOptions(device="cpu", **kw))
        return Mover(model, origin, dirs, "states"), ev

    variants, refused = {}, {}
    variants["ours"] = ours_factory()
    try:  # refused where bf16 is slower than fp32 (no native bf16 on the CPU)
        variants["bf16"] = ours_factory(precision="bf16")
    except LandscapeError as exc:
        refused["bf16"] = str(exc)
    compile_seconds = float("nan")
    if with_compile:
        try:  # compiled and timed when built; refused where it is not faster
            mover, ev = ours_factory(compile=True, batch_size=variants["ours"][1].batch_size)
            compile_seconds = ev.compile_seconds
            variants["compile"] = (mover, ev)
        except LandscapeError as exc:
            refused["compile"] = str(exc)
    orig_model = build_model(arch)
    loader_data = PerItemDataset(images, labels)
    floor_model = build_model(arch)
    floor_model.load_state_dict(origin)
    floor_model.eval()

    times: dict[str, list[float]] = {k: [] for k in ["ours", "original", "floor", *variants]}
    losses: dict[str, list[float]] = {"ours": [], "bf16": [], "original": []}
    for r in range(rounds + 1):  # round 0 warms up every variant and is not counted
        p = points[r % len(points)]
        for name in times:
            t0 = time.perf_counter()
            if name == "original":
                loss = original_point(orig_model, origin, dirs, p, loader_data)
            elif name == "floor":
                floor_point(floor_model, data)
                loss = None
            else:
                mover, ev = variants[name]
                mover.move_(p)
                loss = ev()["loss"]
            dt = time.perf_counter() - t0
            if r:
                times[name].append(dt)
                if name in losses:
                    losses[name].append(loss)
    med = {k: statistics.median(v) for k, v in times.items()}
    bf16_err = (max(abs(b - o) / abs(o) for b, o in zip(losses["bf16"], losses["ours"], strict=True))
                if losses["bf16"] else float("nan"))
    orig_err = max(abs(b - o) / abs(o) for b, o in zip(losses["original"], losses["ours"], strict=True))
    return {"arch": arch, "n": n, "batch": variants["ours"][1].batch_size, "med": med,
            "compile_s": compile_seconds, "bf16_err": bf16_err, "orig_err": orig_err, "refused": refused}


def cpu_model() -> str:
    """The CPU's model name and whether it has native bf16, from /proc/cpuinfo."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name} ({'native bf16' if cpu_has_bf16() else 'no native bf16'})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--archs", default="resnet20,vgg9")
    p.add_argument("--size", type=int, default=2048, help="synthetic CIFAR-shaped images")
    p.add_argument("--rounds", type=int, default=4, help="timed points per variant")
    p.add_argument("--threads", default="1,2", help="torch thread counts to measure, each a table (default 1,2)")
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--train-steps", type=int, default=30, help="SGD steps before measuring")
    p.add_argument("--quick", action="store_true", help="256 images, resnet20, 2 rounds, no compile")
    a = p.parse_args(argv)
    if a.quick:
        a.archs, a.size, a.rounds, a.no_compile, a.train_steps = "resnet20", 256, 2, True, 5
    keep_malloc_arenas()
    print(f"# bench_surface: torch {torch.__version__}, CPU {cpu_model()}, {a.size} images, {a.rounds} timed "
          f"points per variant (medians), networks after {a.train_steps} SGD steps")
    for threads in [int(t) for t in a.threads.split(",")]:
        torch.set_num_threads(threads)
        print(f"\n{threads} thread(s):\n")
        print("| model | ours s/pt (batch) | original s/pt | floor s/pt | (a)/(c) ours/floor "
              "| (b)/(a) original/ours | compile speed-up (compile s) | bf16 speed-up | bf16 max rel. loss err |")
        print("|---|---|---|---|---|---|---|---|---|")
        for arch in a.archs.split(","):
            r = bench(arch, a.size, a.rounds, not a.no_compile, a.train_steps)
            m = r["med"]
            comp = (f"{m['ours'] / m['compile']:.2f}x ({r['compile_s']:.0f} s)" if "compile" in m
                    else "refused" if "compile" in r["refused"] else "-")
            bf16 = (f"{m['ours'] / m['bf16']:.2f}x | {100 * r['bf16_err']:.3f}%" if "bf16" in m
                    else "refused | -")
            print(f"| {arch} | {m['ours']:.3f} ({r['batch']}) | {m['original']:.3f} | {m['floor']:.3f} "
                  f"| {m['ours'] / m['floor']:.2f} | {m['original'] / m['ours']:.2f} | {comp} | {bf16} |", flush=True)
            for what, why in r["refused"].items():
                print(f"  {what} refused: {why}")
            if r["orig_err"] > 1e-4:
                print(f"WARNING: the original loop's loss differs from ours by {r['orig_err']:.2e}")
    return 0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
