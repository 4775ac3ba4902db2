"""``landscape-markov``: the Markov-chain illustration of quantized training (Li et al., NIPS'17, Sec. 5).

    landscape-markov --out markov.png      # SR's and BC's weight distributions per learning rate
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, non_negative, positive, run_cli
from landscape.jobs.markov import MarkovConfig, draw_markov
from landscape.quant.markov import RATES, Toy

PROG = "landscape-markov"


def _rates(text: str) -> list[float]:
    try:
        rates = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated rates, got {text!r}") from None
    if not rates or any(not (r > 0 and math.isfinite(r)) for r in rates):
        raise argparse.ArgumentTypeError(f"rates must be positive, got {text!r}")
    return rates


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    p = Parser(prog=PROG, description="Draw SR's exact stationary distribution and BC's simulated one of a "
               "quantized weight on a 1D non-convex objective, at each learning rate, and print their spreads.")
    p.add_argument("--out", default="markov.png", help="figure file; its extension picks the format")
    p.add_argument("--rates", type=_rates, default=list(RATES), metavar="R1,R2,...")
    p.add_argument("--noise", type=float, default=Toy.noise, help=f"gradient noise std (default {Toy.noise:g})")
    p.add_argument("--steps", type=positive, default=20_000, help="BC steps per chain (default 20000)")
    p.add_argument("--chains", type=positive, default=2000, help="BC chains (default 2000)")
    p.add_argument("--seed", type=non_negative, default=0)
    p.add_argument("--threads", type=positive, default=None,
                   help="torch threads (default: OMP_NUM_THREADS, else the idle cores)")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--dpi", type=positive, default=150)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-markov``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(argv)
        result = draw_markov(MarkovConfig(ns.out, tuple(ns.rates), ns.noise, ns.steps, ns.chains, ns.seed, ns.dpi,
                                          ns.overwrite, ns.threads))
        print(result.table())
        print(f"{PROG}: wrote {ns.out}")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
