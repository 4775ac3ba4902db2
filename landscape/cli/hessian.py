"""``landscape-hessian``: the Hessian spectrum of one checkpoint into an HDF5 file and a density plot.

    landscape-hessian --model ckpt.pt --arch resnet20 --dataset cifar10 --data-root DIR \\
        --samples 2000 --top-k 5 --trace --density --out r20_hessian.h5   # + r20_hessian.png

The file holds the top-k eigenvalues, the smallest one, |min/max|, the trace and the spectral
density when asked (see :mod:`landscape.hessian.summary`), with provenance.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields

from landscape.cli._common import (
    Parser,
    add_data_options,
    add_model_options,
    add_run_options,
    input_file,
    non_negative,
    output_file,
    positive,
    positive_float,
    run_cli,
    say,
)
from landscape.cli._declared import declared, declared_names

PROG = "landscape-hessian"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    d = declared("landscape.jobs.hessian", "HessianConfig")
    o = d.options
    batch, original_batch = (declared("landscape.hessian.operator", n) for n in ("DEFAULT_BATCH_SIZE",
                                                                                "ORIGINAL_BATCH_SIZE"))
    p = Parser(prog=PROG, description="The Hessian spectrum of a network's mean loss at a checkpoint: the top-k "
               "and the smallest eigenvalues (Lanczos), the trace (Hutchinson) and the spectral density "
               "(stochastic Lanczos quadrature), into an HDF5 file with a PNG of the density.")
    m = p.add_argument_group("model")
    m.add_argument("--model", required=True, type=input_file, help="checkpoint: a state dict, or a dict holding one "
                   "(loaded with torch.load(weights_only=True))")
    add_model_options(p, arch_required=True, group=m)

    add_data_options(p)

    h = p.add_argument_group("Hessian")
    h.add_argument("--loss", choices=declared_names("landscape.evaluation.losses", "LOSSES"), default=d.loss)
    h.add_argument("--params", choices=declared("landscape.hessian.operator", "PARAM_CHOICES"),
                   default=o.params or "all",
                   help="all trainable parameters (default), or original: those with more than one "
                   "dimension (no biases or BatchNorm), as the original loss-landscape tool")
    h.add_argument("--convention", choices=declared("landscape.hessian.operator", "CONVENTIONS"), default=o.convention,
                   help="mean: the Hessian of the mean loss (default); batch_sum: the sum of the batch-mean "
                   "Hessians, the original tool's scale (x the number of batches; batches of 128 unless "
                   "--batch-size)")
    h.add_argument("--float64", action="store_true", help="products in double precision (slower)")
    h.add_argument("--top-k", type=positive, default=o.top_k, help=f"largest eigenvalues to find (default {o.top_k})")
    h.add_argument("--tol", type=positive_float, default=o.tol,
                   help=f"eigenvalue tolerance: residuals <= tol * |lambda_max| (default {o.tol:g})")
    h.add_argument("--max-iter", type=positive, default=None, help="Lanczos products at most (default 500)")
    h.add_argument("--trace", action="store_true", help="estimate the trace (Hutchinson)")
    h.add_argument("--trace-tol", type=positive_float, default=o.trace_tol,
                   help=f"stop the trace at stderr <= tol * |trace| (default {o.trace_tol:g})")
    h.add_argument("--trace-max-samples", type=positive, default=o.trace_max_samples,
                   help=f"Hessian-vector products of the trace at most (default {o.trace_max_samples})")
    h.add_argument("--density", action="store_true",
                   help=f"the spectral density (SLQ) and its PNG: --density-runs x --density-iters Hessian-vector "
                   f"products (default {o.density_runs} x {o.density_iters} = {o.density_runs * o.density_iters})")
    h.add_argument("--density-runs", type=positive, default=o.density_runs,
                   help=f"SLQ's random start vectors (default {o.density_runs})")
    h.add_argument("--density-iters", type=positive, default=o.density_iters,
                   help=f"Lanczos steps (Hessian-vector products) of each run (default {o.density_iters})")
    h.add_argument("--sigma", type=positive_float, default=None,
                   help="Gaussian broadening of the density (default 5e-3 of the spectrum's width)")
    h.add_argument("--seed", type=non_negative, default=o.seed)

    f = p.add_argument_group("output")
    f.add_argument("--out", default=d.out, type=output_file, help=f"HDF5 file (default {d.out})")
    f.add_argument("--png", default=None, type=output_file,
                   help="density plot (default: --out with .png; needs --density)")
    f.add_argument("--save-vectors", action="store_true", help="store the top-k eigenvectors (float32)")
    add_run_options(p, device=d.device, batch_size=f"{batch}; {original_batch} with --convention batch_sum: "
                    "the samples of one batch of a Hessian-vector product")
    return p


def config_from_args(ns: argparse.Namespace):
    """The :class:`landscape.jobs.hessian.HessianConfig` of parsed options: the one place where
    flags become the job's options."""
    import torch  # imported once the arguments are checked (--help never imports it)

    from landscape.hessian.summary import SummaryOptions
    from landscape.jobs.hessian import HessianConfig

    options = SummaryOptions(**{f.name: getattr(ns, f.name) for f in fields(SummaryOptions) if hasattr(ns, f.name)},
                             dtype=torch.float64 if ns.float64 else torch.float32)
    return HessianConfig(**{k: v for k, v in vars(ns).items() if k in HessianConfig.__dataclass_fields__},
                         options=options)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-hessian``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(argv)
        cfg = config_from_args(ns)
        options = cfg.options
        from landscape.jobs.hessian import summarize_checkpoint  # torch: imported once the arguments are checked

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
