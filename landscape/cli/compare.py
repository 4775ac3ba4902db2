"""``landscape-compare``: K minima of one architecture compared by numbers and figures.

    landscape-compare runs/sgd_bs128/final.pt runs/sgd_bs4096/final.pt runs/adam/final.pt \\
        --arch resnet20 --dataset cifar10 --data-root DIR --samples 2000 --out compare/

Writes ``compare/compare.csv``, ``compare.md``, ``compare.h5`` (resumable) and the figures; see
:mod:`landscape.jobs.compare`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace

from landscape.cli._common import (
    Parser,
    add_data_options,
    add_model_options,
    add_run_options,
    input_file,
    join_negative_values,
    non_negative,
    output_folder,
    positive,
    positive_float,
    run_cli,
)
from landscape.cli._declared import declared, declared_names
from landscape.runtime.parallel import launcher_rank

PROG = "landscape-compare"
GRIDS = ("--line", "--plane")


def _measures(text: str) -> tuple[str, ...]:
    return tuple(t for t in text.replace(" ", "").split(",") if t)


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = float(text)
    if not 0 <= value < float("inf"):
        raise ValueError(text)
    return value


non_negative_float.__name__ = "non-negative number"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    d = declared("landscape.jobs.compare", "CompareConfig")
    p = Parser(prog=PROG, description="Compare K minima of one architecture: train/test loss and error, the "
               "generalization gap, sharpness measures (average- and worst-case, Keskar's epsilon, lambda_max, "
               "trace, fitted curvature) with standard errors, Kendall's tau of each against the gap, and the "
               "filter-normalized 1D curves and 2D contours on one scale.")
    m = p.add_argument_group("models")
    m.add_argument("checkpoints", nargs="+", metavar="CKPT", type=input_file,
                   help="two or more checkpoints of one architecture")
    add_model_options(p, arch_required=True, group=m)

    add_data_options(p)

    s = p.add_argument_group("measures")
    s.add_argument("--measures", type=_measures, default=d.measures, metavar="M1,M2,...",
                   help=f"from {', '.join(declared('landscape.jobs.compare', 'MEASURES'))} (default all)")
    s.add_argument("--radius", type=positive_float, default=d.radius,
                   help=f"average- and worst-case radius, relative to the normalization (default {d.radius:g})")
    s.add_argument("--eps", type=positive_float, default=d.eps, help=f"Keskar's box: |delta_i| <= eps (|theta_i| + 1) "
                   f"(default {d.eps:g})")
    s.add_argument("--mc-samples", type=positive, default=d.mc_samples,
                   help=f"Monte Carlo samples of the average case (default {d.mc_samples})")
    s.add_argument("--tol", type=non_negative_float, default=d.tol,
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
    s.add_argument("--curvature-points", type=positive, default=d.curvature_points,
                   help=f"points of the curvature's surface, at least 3 (default {d.curvature_points})")
    s.add_argument("--seed", type=non_negative, default=d.seed)
    s.add_argument("--loss", choices=declared_names("landscape.evaluation.losses", "LOSSES"), default=d.loss)

    f = p.add_argument_group("figures")
    f.add_argument("--line", default=d.line, metavar="MIN:MAX:NUM|none",
                   help=f"the 1D curves' grid (default {d.line})")
    f.add_argument("--plane", default=d.plane, metavar="MIN:MAX:NUM|none",
                   help=f"the 2D contours' grid, both axes (default {d.plane})")
    f.add_argument("--no-plot", dest="plot", action="store_false", help="no figures (and no surfaces)")
    f.add_argument("--out", default=d.out, type=output_folder, help=f"output folder (default {d.out})")
    add_run_options(p, device=d.device, batch_size="256")
    return p


def config_from_args(ns: argparse.Namespace, argv: Sequence[str]):
    """The :class:`landscape.jobs.compare.CompareConfig` of parsed options: the one place where
    flags become the job's options."""
    from landscape.jobs.compare import CompareConfig  # torch: imported once the arguments are checked

    fields = CompareConfig.__dataclass_fields__
    cfg = CompareConfig(**{k: v for k, v in vars(ns).items() if k in fields})
    return replace(cfg, checkpoints=tuple(ns.checkpoints), command=" ".join([PROG, *argv]),
                   line=cfg.line if cfg.plot else "none", plane=cfg.plane if cfg.plot else "none")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-compare``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(join_negative_values(argv, GRIDS))
        cfg = config_from_args(ns, argv)
        from landscape.jobs.compare import compare  # torch: imported once the arguments are checked

        result = compare(cfg, progress=ns.progress)
        if launcher_rank() == 0:
            for c in result.correlations:
                print(f"{PROG}: {c.measure}: Kendall's tau {c.tau:+.2f} (p = {c.p_value:.2g})")
            warning = next((c.warning for c in result.correlations if c.warning), "")
            if warning:
                print(f"{PROG}: warning: {warning}")
            if result.computed == 0:  # a rerun that found every job and surface done
                print(f"{PROG}: already complete: {result.paths[0]} (nothing computed; the tables and figures "
                      "drawn again from it)")
            for path in result.paths[1:] if result.computed == 0 else result.paths:
                print(f"{PROG}: wrote {path}")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
