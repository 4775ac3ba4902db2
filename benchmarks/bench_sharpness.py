"""What the sharpness measures cost: passes over the data, counted, and seconds against a plain evaluation.

    python benchmarks/bench_sharpness.py            # digits_cnn, 1024 digits images, 20 samples / 20 steps
    python benchmarks/bench_sharpness.py --quick    # 256 images, 5 samples / 5 steps

Every forward pass of a batch goes through a counting ``forward_fn`` (the one hook
:func:`landscape.sharpness.average_case` and :func:`~landscape.sharpness.worst_case` take), so the
counts are measured, not the results' own claims; backward passes are counted by a hook on the
loss. The claim checked: ``average_case`` with S samples costs S loss evaluations (plus one at the
minimizer), ``worst_case`` with T steps at most T + 1 forward and T backward passes per batch.
Seconds are the best of ``--repeat`` runs, beside one plain evaluation of the loss
(:class:`landscape.evaluation.evaluator.Evaluator`) of the same model and data, on one thread.

The reference implementation of Andriushchenko et al. (tml-epfl/sharpness-vs-generalization,
``eval_sharpness.py``) cannot be fetched or run here (no network access from this machine), so
there is no side-by-side timing with it; see docs/sharpness.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from landscape import sharpness  # noqa: E402
from landscape.data.batches import forward  # noqa: E402
from landscape.data.datasets import load_dataset  # noqa: E402
from landscape.evaluation.evaluator import Evaluator  # noqa: E402
from landscape.evaluation.losses import cross_entropy  # noqa: E402
from landscape.evaluation.options import EvalOptions
from landscape.models import build_model  # noqa: E402


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        return platform.processor() or "?"


class Counter:
    """Counts forward passes of full batches (the 2-sample shape check excluded) and backward passes."""

    def __init__(self, batch_size: int):
        self.batch_size, self.forward, self.backward = batch_size, 0, 0

    def forward_fn(self, model, batch):
        if len(batch[0]) > 2:
            self.forward += 1
        return forward(model, batch)

    def loss_fn(self, output, batch):
        loss = cross_entropy(output, batch)
        if loss.requires_grad:
            loss.register_hook(self._backward)
        return loss

    def _backward(self, grad):
        self.backward += 1
        return grad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1024, help="training images")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--mc", type=int, default=20, help="average-case samples")
    ap.add_argument("--steps", type=int, default=20, help="worst-case steps")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.mc, args.steps, args.repeat = 256, 5, 5, 1
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data, _ = load_dataset("digits", split="train").subset(args.samples, 0)
    model = build_model("digits_cnn", num_classes=10, in_channels=1)
    batches = -(-len(data) // args.batch_size)

    ev = Evaluator(model, data, EvalOptions(batch_size=args.batch_size))
    ev()
    plain = min(_timed(ev)[1] for _ in range(args.repeat))

    rows = []
    for name, call, claim in (
        (f"average_case, {args.mc} samples",
         lambda c: sharpness.average_case(model, data, radius=0.05, norm="filter", samples=args.mc, tol=0,
                                          loss_fn=c.loss_fn, forward_fn=c.forward_fn, batch_size=args.batch_size),
         (args.mc + 1, 0)),
        (f"worst_case, {args.steps} steps",
         lambda c: sharpness.worst_case(model, data, radius=0.05, norm="filter", steps=args.steps,
                                        loss_fn=c.loss_fn, forward_fn=c.forward_fn, batch_size=args.batch_size),
         (args.steps + 1, args.steps)),
        (f"epsilon, {args.steps} steps",
         lambda c: sharpness.epsilon(model, data, eps=1e-3, steps=args.steps, loss_fn=c.loss_fn,
                                     forward_fn=c.forward_fn, batch_size=args.batch_size),
         (args.steps + 1, args.steps)),
    ):
        best, counts, result = float("inf"), None, None
        for _ in range(args.repeat):
            c = Counter(args.batch_size)
            result, seconds = _timed(lambda c=c, call=call: call(c))
            best = min(best, seconds)
            counts = (c.forward, c.backward)
        per_batch = (counts[0] / batches, counts[1] / batches)
        assert per_batch[0] <= claim[0] and per_batch[1] <= claim[1], (name, per_batch, claim)
        rows.append((name, per_batch, (result.forward, result.backward), best))

    print(f"# bench_sharpness: digits_cnn, {len(data)} digits images in {batches} batches of {args.batch_size}, "
          f"1 thread, torch {torch.__version__}, {cpu_model()}, {time.strftime('%Y-%m-%d')}")
    print(f"plain evaluation of the loss: {plain * 1e3:.1f} ms")
    print("| measure | forward / batch (counted) | backward / batch (counted) | reported (fwd, bwd) | seconds "
          "| x plain evaluation |")
    print("|---|---:|---:|---|---:|---:|")
    for name, (f, b), reported, seconds in rows:
        print(f"| {name} | {f:g} | {b:g} | {reported} | {seconds:.3f} | {seconds / plain:.1f} |")
    return 0


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
