"""``landscape-markov``: the Markov-chain illustration of quantized training (Li et al., NIPS'17, Sec. 5).

    landscape-markov --out markov.png      # SR's and BC's weight distributions per learning rate
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, add_run_options, non_negative, output_file, positive, run_cli
from landscape.cli._declared import declared

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
    toy = declared("landscape.quant.markov", "Toy")
    p = Parser(prog=PROG, description="Draw SR's exact stationary distribution and BC's simulated one of a "
               "quantized weight on a 1D non-convex objective, at each learning rate, and print their spreads.")
    p.add_argument("--out", default="markov.png", type=output_file, help="figure file; its extension picks the format")
    p.add_argument("--rates", type=_rates, default=list(declared("landscape.quant.markov", "RATES")),
                   metavar="R1,R2,...")
    p.add_argument("--noise", type=float, default=toy.noise, help=f"gradient noise std (default {toy.noise:g})")
    p.add_argument("--steps", type=positive, default=20_000, help="BC steps per chain (default 20000)")
    p.add_argument("--chains", type=positive, default=2000, help="BC chains (default 2000)")
    p.add_argument("--seed", type=non_negative, default=0)
    p.add_argument("--dpi", type=positive, default=150)
    add_run_options(p, device=None, progress=False, group=p)
    return p


def config_from_args(ns: argparse.Namespace):
    """The :class:`landscape.jobs.markov.MarkovConfig` of parsed options: the one place where flags
    become the job's options."""
    from landscape.jobs.markov import MarkovConfig  # torch: imported once the arguments are checked

    return MarkovConfig(ns.out, tuple(ns.rates), ns.noise, ns.steps, ns.chains, ns.seed, ns.dpi, ns.overwrite,
                        ns.threads)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-markov``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(argv)
        cfg = config_from_args(ns)
        from landscape.jobs.markov import draw_markov  # torch: imported once the arguments are checked

        result = draw_markov(cfg)
        print(result.table())
        print(f"{PROG}: wrote {ns.out}")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
