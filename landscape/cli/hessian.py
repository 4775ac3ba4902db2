"""``landscape-hessian``: the Hessian spectrum of one checkpoint into an HDF5 file and a density plot.

    landscape-hessian --model ckpt.pt --arch resnet20 --dataset cifar10 --data-root DIR \\
        --samples 2000 --top-k 5 --trace --density --out r20_hessian.h5   # + r20_hessian.png

The file holds the top-k eigenvalues, the smallest one, |min/max|, the trace and the spectral
density when asked (see :mod:`landscape.hessian.summary`), with provenance.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, add_data_options, non_negative, positive, positive_float, run_cli, say
from landscape.evaluation.losses import LOSSES
from landscape.hessian.operator import CONVENTIONS, DEFAULT_BATCH_SIZE, ORIGINAL_BATCH_SIZE, PARAM_CHOICES
from landscape.hessian.summary import SummaryOptions
from landscape.jobs.hessian import HessianConfig, summarize_checkpoint

PROG = "landscape-hessian"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    d = HessianConfig()
    o = d.options
    p = Parser(prog=PROG, description="The Hessian spectrum of a network's mean loss at a checkpoint: the top-k "
               "and the smallest eigenvalues (Lanczos), the trace (Hutchinson) and the spectral density "
               "(stochastic Lanczos quadrature), into an HDF5 file with a PNG of the density.")
    m = p.add_argument_group("model")
    m.add_argument("--model", required=True, help="checkpoint: a state dict, or a dict holding one "
                   "(loaded with torch.load(weights_only=True))")
    m.add_argument("--arch", required=True, help="zoo name (resnet20, vgg9, digits_cnn, ...) or "
                   "package.module:callable")
    m.add_argument("--num-classes", type=positive, default=None, help="default: the dataset's")
    m.add_argument("--unsafe-pickle", action="store_true", help="allow checkpoints holding pickled Python "
                   "objects (a whole nn.Module): unpickling runs arbitrary code, only for files you trust")

    add_data_options(p)

    h = p.add_argument_group("Hessian")
    h.add_argument("--loss", choices=list(LOSSES), default=d.loss)
    h.add_argument("--params", choices=PARAM_CHOICES, default=o.params or "all",
                   help="all trainable parameters (default), or original: those with more than one "
                   "dimension (no biases or BatchNorm), as the original loss-landscape tool")
    h.add_argument("--convention", choices=CONVENTIONS, default=o.convention,
                   help="mean: the Hessian of the mean loss (default); batch_sum: the sum of the batch-mean "
                   "Hessians, the original tool's scale (x the number of batches; batches of 128 unless "
                   "--batch-size)")
    h.add_argument("--float64", action="store_true", help="products in double precision (slower)")
    h.add_argument("--batch-size", type=positive, default=None,
                   help=f"samples per product batch (default {DEFAULT_BATCH_SIZE}; {ORIGINAL_BATCH_SIZE} with "
                   "--convention batch_sum)")
    h.add_argument("--top-k", type=positive, default=o.top_k, help=f"largest eigenvalues to find (default {o.top_k})")
    h.add_argument("--tol", type=positive_float, default=o.tol,
                   help=f"eigenvalue tolerance: residuals <= tol * |lambda_max| (default {o.tol:g})")
    h.add_argument("--max-iter", type=positive, default=None, help="Lanczos products at most (default 500)")
    h.add_argument("--trace", action="store_true", help="estimate the trace (Hutchinson)")
    h.add_argument("--trace-tol", type=positive_float, default=o.trace_tol,
                   help=f"stop the trace at stderr <= tol * |trace| (default {o.trace_tol:g})")
    h.add_argument("--trace-max-samples", type=positive, default=o.trace_max_samples)
    h.add_argument("--density", action="store_true", help="the spectral density (SLQ) and its PNG")
    h.add_argument("--density-runs", type=positive, default=o.density_runs)
    h.add_argument("--density-iters", type=positive, default=o.density_iters)
    h.add_argument("--sigma", type=positive_float, default=None,
                   help="Gaussian broadening of the density (default 5e-3 of the spectrum's width)")
    h.add_argument("--seed", type=non_negative, default=o.seed)
    h.add_argument("--device", default=d.device, help=f"cpu, cuda, cuda:N, auto (default {d.device})")
    h.add_argument("--threads", type=positive, default=None, help="torch threads (default: the idle cores)")

    o = p.add_argument_group("output")
    o.add_argument("--out", default=d.out, help=f"HDF5 file (default {d.out})")
    o.add_argument("--png", default=None, help="density plot (default: --out with .png; needs --density)")
    o.add_argument("--save-vectors", action="store_true", help="store the top-k eigenvectors (float32)")
    o.add_argument("--overwrite", action="store_true", help="replace --out (and the PNG) if they exist; without it "
                   "a summary of the same inputs is kept, and only a missing PNG drawn")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-hessian``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        from dataclasses import fields

        import torch

        ns = build_parser().parse_args(argv)  # flags -> option objects, here only
        options = SummaryOptions(**{f.name: getattr(ns, f.name) for f in fields(SummaryOptions) if hasattr(ns, f.name)},
                                 dtype=torch.float64 if ns.float64 else torch.float32)
        cfg = HessianConfig(**{k: v for k, v in vars(ns).items() if k in HessianConfig.__dataclass_fields__},
                            options=options)
        summary, written = summarize_checkpoint(cfg, command=" ".join([PROG, *argv]),
                                                log=lambda line: say(f"{PROG}: {line}"))
        print(f"{PROG}: max {summary.max_eig:.6g}, min {summary.min_eig:.6g}, |min/max| {summary.eig_ratio:.4g}"
              + (f", trace {summary.trace.estimate:.6g} +- {summary.trace.stderr:.2g}" if summary.trace else ""))
        print(f"{PROG}: top {options.top_k}: " + ", ".join(f"{v:.6g}" for v in summary.top_eigenvalues))
        if cfg.out not in written:
            print(f"{PROG}: kept {cfg.out} (computed before from the same inputs)")
        for path in written:
            print(f"{PROG}: wrote {path}")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
