"""``landscape-align``: permute one network's units to match another's (Git Re-Basin), the function
unchanged, so that the straight line between them shows the barrier that symmetry does not explain.

    landscape-align a.pt b.pt --arch mlp --dataset digits --out b_aligned.pt
    landscape-surf --model a.pt --model2 b_aligned.pt --arch mlp --x=0:1:21   # the line after alignment
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, add_data_options, non_negative, positive, run_cli
from landscape.connect.align import METHODS
from landscape.jobs.align import AlignConfig, align_checkpoints
from landscape.runtime.parallel import world

PROG = "landscape-align"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    d = AlignConfig()
    p = Parser(prog=PROG, description="Permute the hidden units of checkpoint B to match checkpoint A (Ainsworth et "
               "al.'s weight or activation matching over the network's coupled channels), the function unchanged, "
               "and write B's aligned network as an ordinary checkpoint that records the permutation.")
    p.add_argument("ends", nargs=2, metavar="CKPT", help="A (the reference) and B (the network permuted)")
    p.add_argument("--arch", required=True, help="zoo name or package.module:callable of both")
    p.add_argument("--num-classes", type=positive, default=None, help="default: from the dataset")
    p.add_argument("--unsafe-pickle", action="store_true",
                   help="allow checkpoints holding pickled Python objects (only files you trust)")
    p.add_argument("--method", choices=METHODS, default=d.method,
                   help="weights: match the weights (no data needed; default); activations: match the units' "
                   "correlations on the data")
    p.add_argument("--max-rounds", type=positive, default=d.max_rounds,
                   help=f"weight matching's rounds over the groups at most (default {d.max_rounds}; it stops when "
                   "a round changes nothing)")
    p.add_argument("--seed", type=non_negative, default=d.seed, help="the order of weight matching's groups")
    add_data_options(p, "train")
    p.add_argument("--batch-size", type=positive, default=d.batch_size,
                   help=f"batches of the activations and of the check (default {d.batch_size})")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, auto")
    p.add_argument("--threads", type=positive, default=None,
                   help="torch threads per process (default: the idle cores, or OMP_NUM_THREADS)")
    p.add_argument("--out", default=d.out, help=f"the aligned checkpoint (default {d.out})")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-align``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(argv)
        data = {k: getattr(ns, k) for k in ("dataset", "data_root", "split", "samples", "sample_seed",
                                            "synthetic_shape", "synthetic_size", "synthetic_seed", "seq_len",
                                            "raw_data", "num_classes")}
        cfg = AlignConfig(a=ns.ends[0], b=ns.ends[1], arch=ns.arch, out=ns.out, method=ns.method,
                          max_rounds=ns.max_rounds, seed=ns.seed, batch_size=ns.batch_size, device=ns.device,
                          threads=ns.threads, overwrite=ns.overwrite, unsafe_pickle=ns.unsafe_pickle,
                          command=" ".join([PROG, *argv]), **data)
        comm = world()
        result, path = align_checkpoints(cfg, comm)
        if comm.rank == 0:
            how = (f"{result.rounds} round(s), " + ("converged" if result.converged else "stopped at --max-rounds")
                   if result.method == "weights" else "one assignment per group")
            kind = "weight" if result.method == "weights" else "activation"
            print(f"{PROG}: wrote {path} ({kind} matching, {len(result.permutation)} groups permuted, "
                  f"{how}; distance to A {result.distance[0]:.4g} -> {result.distance[1]:.4g}; "
                  f"{result.seconds:.2f} s)")
            for name, reason in result.fixed.items():
                print(f"{PROG}: left in place: {name} ({reason})")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
