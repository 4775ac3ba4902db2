"""``landscape-compare``: K minima of one architecture compared by numbers and figures.

    landscape-compare runs/sgd_bs128/final.pt runs/sgd_bs4096/final.pt runs/adam/final.pt \\
        --arch resnet20 --dataset cifar10 --data-root DIR --samples 2000 --out compare/

Writes ``compare/compare.csv``, ``compare.md``, ``compare.h5`` (resumable) and the figures; see
:mod:`landscape.jobs.compare`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from landscape.cli._common import (
    Parser,
    add_data_options,
    join_negative_values,
    non_negative,
    positive,
    positive_float,
    run_cli,
)
from landscape.evaluation.losses import LOSSES
from landscape.jobs.compare import MEASURES, CompareConfig, compare
from landscape.runtime.parallel import launcher_rank

PROG = "landscape-compare"
GRIDS = ("--line", "--plane")


def _measures(text: str) -> tuple[str, ...]:
    return tuple(t for t in text.replace(" ", "").split(",") if t)


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    d = CompareConfig()
    p = Parser(prog=PROG, description="Compare K minima of one architecture: train/test loss and error, the "
               "generalization gap, sharpness measures (average- and worst-case, Keskar's epsilon, lambda_max, "
               "trace, fitted curvature) with standard errors, Kendall's tau of each against the gap, and the "
               "filter-normalized 1D curves and 2D contours on one scale.")
    m = p.add_argument_group("models")
    m.add_argument("checkpoints", nargs="+", metavar="CKPT", help="two or more checkpoints of one architecture")
    m.add_argument("--arch", required=True, help="zoo name (resnet20, digits_cnn, mlp, ...) or package.module:callable")
    m.add_argument("--num-classes", type=positive, default=None, help="default: the dataset's")
    m.add_argument("--unsafe-pickle", action="store_true", help="allow checkpoints holding pickled Python objects "
                   "(unpickling runs arbitrary code; only for files you trust)")

    add_data_options(p)

    s = p.add_argument_group("measures")
    s.add_argument("--measures", type=_measures, default=d.measures, metavar="M1,M2,...",
                   help=f"from {', '.join(MEASURES)} (default all)")
    s.add_argument("--radius", type=positive_float, default=d.radius,
                   help=f"average- and worst-case radius, relative to the normalization (default {d.radius:g})")
    s.add_argument("--eps", type=positive_float, default=d.eps, help=f"Keskar's box: |delta_i| <= eps (|theta_i| + 1) "
                   f"(default {d.eps:g})")
    s.add_argument("--mc-samples", type=positive, default=d.mc_samples,
                   help=f"Monte Carlo samples of the average case (default {d.mc_samples})")
    s.add_argument("--tol", type=float, default=d.tol,
                   help=f"the average case stops early, and counts as converged, at stderr <= tol * value (default "
                   f"{d.tol:g}; 0: all samples, never converged)")
    s.add_argument("--steps", type=positive, default=d.steps,
                   help=f"gradient-ascent steps of each restart of the worst cases and epsilon, at most (default "
                   f"{d.steps})")
    s.add_argument("--restarts", type=positive, default=d.restarts,
                   help=f"ascents of the worst cases and epsilon from different starting points (the scaled "
                   f"Hessian's top Lanczos vectors, the gradient, random ones); the best is kept (default "
                   f"{d.restarts})")
    s.add_argument("--p", choices=["2", "inf"], default=d.p, help="the worst case's ball (default 2)")
    s.add_argument("--m", type=positive, default=None, help="m-sharpness: the mean of the worst case of each "
                   "batch of m samples (default: the whole data at once)")
    s.add_argument("--curvature-radius", type=positive_float, default=d.curvature_radius)
    s.add_argument("--curvature-points", type=positive, default=d.curvature_points)
    s.add_argument("--seed", type=non_negative, default=d.seed)
    s.add_argument("--loss", choices=list(LOSSES), default=d.loss)

    f = p.add_argument_group("figures and run")
    f.add_argument("--line", default=d.line, metavar="MIN:MAX:NUM|none",
                   help=f"the 1D curves' grid (default {d.line})")
    f.add_argument("--plane", default=d.plane, metavar="MIN:MAX:NUM|none",
                   help=f"the 2D contours' grid, both axes (default {d.plane})")
    f.add_argument("--no-plot", dest="plot", action="store_false", help="no figures (and no surfaces)")
    f.add_argument("--batch-size", type=positive, default=None, help="evaluation batch size (default 256)")
    f.add_argument("--device", default=d.device, help=f"cpu, cuda, cuda:N, auto (default {d.device})")
    f.add_argument("--threads", type=positive, default=None, help="torch threads (default: the idle cores)")
    f.add_argument("--out", default=d.out, help=f"output folder (default {d.out})")
    f.add_argument("--overwrite", action="store_true", help="start again instead of resuming compare.h5")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-compare``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        from dataclasses import replace

        ns = build_parser().parse_args(join_negative_values(argv, GRIDS))
        fields = CompareConfig.__dataclass_fields__
        cfg = CompareConfig(**{k: v for k, v in vars(ns).items() if k in fields})
        cfg = replace(cfg, checkpoints=tuple(ns.checkpoints), command=" ".join([PROG, *argv]),
                      line=cfg.line if cfg.plot else "none", plane=cfg.plane if cfg.plot else "none")
        result = compare(cfg)
        if launcher_rank() == 0:
            for c in result.correlations:
                print(f"{PROG}: {c.measure}: Kendall's tau {c.tau:+.2f} (p = {c.p_value:.2g})")
            warning = next((c.warning for c in result.correlations if c.warning), "")
            if warning:
                print(f"{PROG}: warning: {warning}")
            for path in result.paths:
                print(f"{PROG}: wrote {path}")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
