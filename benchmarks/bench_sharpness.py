"""What the sharpness measures cost: passes over the data, counted, and seconds against a plain evaluation.

    python benchmarks/bench_sharpness.py            # digits_cnn trained on digits, 1024 images, defaults
    python benchmarks/bench_sharpness.py --quick    # 256 images, fewer samples, one repeat

Every forward pass of a batch goes through a counting ``forward_fn`` (the one hook the measures
take, through their ``EvalOptions``, and hand to the Hessian's products too) and every backward
pass through a counting ``torch.autograd.grad`` (a gradient of the loss, or of the gradient in a
Hessian-vector product), so the counts are measured, not the results' own claims; the script
checks that the results report what was counted. Passes are over the whole data: a batch of 256
of 1024 images is a quarter of one (m-sharpness: a batch of m). Seconds are the best of ``--repeat`` runs,
beside one plain evaluation of the loss (:class:`landscape.evaluation.evaluator.Evaluator`) of the
same model and data, on one thread. The network is the demo's conv net with BatchNorm, trained on
scikit-learn's digits (Adam, 15 epochs, seed 0): the measures at a minimizer, as they are meant.

The reference implementation of Andriushchenko et al. (tml-epfl/sharpness-vs-generalization,
``eval_sharpness.py``) cannot be run here (no network access from this machine), so there is no
side-by-side timing with it; see docs/sharpness.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

import landscape as ls  # noqa: E402
from landscape import sharpness  # noqa: E402
from landscape.data.batches import forward  # noqa: E402
from landscape.data.datasets import load_dataset  # noqa: E402
from landscape.evaluation.evaluator import Evaluator  # noqa: E402
from landscape.evaluation.options import EvalOptions  # noqa: E402
from landscape.jobs.demo import fit  # noqa: E402
from landscape.models import build_model  # noqa: E402


class Counter:
    """Counts forward passes of full batches (the 2-sample shape checks excluded) and backward passes
    (calls of torch.autograd.grad, each one batch's)."""

    def __init__(self):
        self.forward = self.backward = 0
        self._grad = torch.autograd.grad

    def forward_fn(self, model, batch):
        if len(batch[0]) > 2:
            self.forward += 1
        return forward(model, batch)

    def __enter__(self):
        def counted(*args, **kwargs):
            self.backward += 1
            return self._grad(*args, **kwargs)

        torch.autograd.grad = counted
        return self

    def __exit__(self, *exc):
        torch.autograd.grad = self._grad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=1024, help="training images")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--mc", type=int, default=20, help="average-case samples")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.samples, args.mc, args.repeat = 256, 5, 1
    torch.set_num_threads(1)
    torch.manual_seed(0)
    train = load_dataset("digits", split="train")
    model = fit(build_model("digits_cnn", num_classes=10, in_channels=1), train, 0, 15)
    data, _ = train.subset(args.samples, 0)
    batches = -(-len(data) // args.batch_size)

    ev = Evaluator(model, data, EvalOptions(batch_size=args.batch_size))
    ev()
    plain = min(_timed(ev)[1] for _ in range(args.repeat))

    elementwise = ls.Directions(norm="elementwise")
    rows = []
    for name, call in (
        (f"average_case, filter, {args.mc} samples",
         lambda e: sharpness.average_case(model, data, radius=0.05, samples=args.mc, tol=0, evaluation=e)),
        ("worst_case, filter, p=2", lambda e: sharpness.worst_case(model, data, radius=0.05, evaluation=e)),
        ("worst_case, elementwise, p=2",
         lambda e: sharpness.worst_case(model, data, radius=0.05, directions=elementwise, evaluation=e)),
        ("worst_case, elementwise, p=inf",
         lambda e: sharpness.worst_case(model, data, radius=0.002, p="inf", directions=elementwise, evaluation=e)),
        ("worst_case, elementwise, p=inf, m=128",
         lambda e: sharpness.worst_case(model, data, radius=0.002, p="inf", m=128, directions=elementwise,
                                        evaluation=e)),
        ("epsilon, eps=1e-3", lambda e: sharpness.epsilon(model, data, eps=1e-3, evaluation=e)),
        ("lambda_max", lambda e: sharpness.lambda_max(model, data, evaluation=e)),
        ("hessian_trace", lambda e: sharpness.hessian_trace(model, data, evaluation=e)),
    ):
        best, counts, result = float("inf"), None, None
        for _ in range(args.repeat):
            with Counter() as c:
                e = EvalOptions(batch_size=args.batch_size, forward_fn=c.forward_fn)
                result, seconds = _timed(lambda call=call, e=e: call(e))
            best = min(best, seconds)
            per_call = 128 / len(data) if "m=128" in name else 1 / batches  # a pass over the data per call
            counts = (c.forward * per_call, c.backward * per_call)
        assert (result.forward, result.backward) == (round(counts[0] + 0.4999), round(counts[1] + 0.4999)), \
            (name, counts, result.forward, result.backward)  # every result reports the passes counted
        rows.append((name, counts, result, best))

    print(f"bench_sharpness: digits_cnn trained on digits, {len(data)} images in {batches} batches of "
          f"{args.batch_size}, 1 thread, torch {torch.__version__}")
    print(f"plain evaluation of the loss: {plain * 1e3:.1f} ms")
    print("| measure | forward / batch (counted) | backward / batch (counted) | reported (fwd, bwd) | Hessian-vector "
          "products | restarts x steps | converged | value | seconds | x plain evaluation |")
    print("|---|---:|---:|---|---:|---|---|---:|---:|---:|")
    for name, (f, b), r, seconds in rows:
        hvps = getattr(r, "hvps", "")
        runs = f"{r.restarts} x {r.steps}" if hasattr(r, "restarts") else ""
        print(f"| {name} | {f:.3g} | {b:.3g} | ({r.forward}, {r.backward}) | {hvps} | {runs} | {r.converged} | "
              f"{r.value:.4g} | {seconds:.3f} | {seconds / plain:.1f} |")
    return 0


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


if __name__ == "__main__":
    from _report import run_and_report  # writes this script's section of docs/benchmarks.md

    sys.exit(run_and_report(main))
