"""``landscape-lowrank``: factorize a network's layers by truncated SVD into a smaller checkpoint.

    landscape-lowrank runs/small/model_15.pt --arch digits_cnn --rank-ratio 0.5 --out lowrank.pt
    landscape-lowrank ckpt.pt --arch resnet20 --energy 0.9 --out r20_lowrank.pt
    landscape-train --init-from lowrank.pt --arch digits_cnn --dataset digits --lr 0.001 --epochs 5 --out retrained

The checkpoint records its ranks, so landscape-surf, -train --init-from, -compare and -prune
--count load it without being told them (:mod:`landscape.lowrank`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from landscape.cli._common import (
    Parser,
    add_model_options,
    add_run_options,
    input_file,
    output_file,
    run_cli,
    shape,
)

PROG = "landscape-lowrank"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    p = Parser(prog=PROG, description="Factorize every Linear and Conv2d layer of a network by truncated SVD "
               "(a k x k conv to r filters, then a 1x1 conv; a linear layer through r features) where that saves "
               "weights, and write the smaller network to a checkpoint that records its ranks.")
    p.add_argument("model", metavar="CKPT", type=input_file,
                   help="the network's checkpoint (a pruned one: with its widths)")
    add_model_options(p, arch_required=True, in_channels=True)
    r = p.add_mutually_exclusive_group(required=True)
    r.add_argument("--rank-ratio", type=float, default=None, metavar="R",
                   help="each layer's rank: ceil(R * min(out, in*k*k)), R in (0, 1]")
    r.add_argument("--energy", type=float, default=None, metavar="E",
                   help="each layer's rank: the smallest keeping the share E in (0, 1] of its squared singular values")
    p.add_argument("--input-shape", type=shape, default=None, metavar="C,H,W",
                   help="one sample's shape for counting FLOPs (default: 8x8 for digits nets, 28x28 for MNIST "
                   "nets, 224x224 for *_imagenet, 32x32 otherwise)")
    p.add_argument("--out", required=True, type=output_file, help="the factorized checkpoint (.pt)")
    add_run_options(p, device=None, progress=False)
    return p


def config_from_args(ns: argparse.Namespace):
    """The :class:`landscape.jobs.lowrank.LowRankConfig` of parsed options."""
    # torch: imported once the arguments are checked (--help never imports it)
    from landscape.jobs.lowrank import LowRankConfig
    from landscape.jobs.network import ModelSpec

    model = ModelSpec(ns.arch, ns.model, ns.num_classes, ns.in_channels, ns.unsafe_pickle)
    return LowRankConfig(model, ns.out, rank_ratio=ns.rank_ratio, energy=ns.energy, input_shape=ns.input_shape,
                         overwrite=ns.overwrite, threads=ns.threads)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-lowrank``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        cfg = config_from_args(build_parser().parse_args(argv))
        from landscape.jobs.lowrank import factorize_checkpoint  # torch: once the arguments are checked
        from landscape.prune import reduction

        r = factorize_checkpoint(cfg)
        shown = ", ".join(f"{name} {rank}" for name, rank in r.ranks.items())
        print(f"{PROG}: wrote {r.out}: {len(r.ranks)} layers factorized (ranks: {shown})"
              + (f"; kept whole: {', '.join(r.kept)}" if r.kept else ""))
        print(f"{PROG}: {r.flops:,} FLOPs, {r.params:,} params; {reduction(r.flops_original, r.flops):.2f}% fewer "
              f"FLOPs, {reduction(r.params_original, r.params):.2f}% fewer params")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
