"""``landscape-prune``: L1-norm filter pruning (Li et al., ICLR'17): counts, sensitivity, plans.

    landscape-prune --model r56.pt --arch resnet56 --count                  # FLOPs and parameters
    landscape-prune --arch resnet56 --count --plan resnet56-B               # ... and after a plan
    landscape-prune --model r56.pt --arch resnet56 --sensitivity --dataset cifar10 --data-root DIR \\
        --ratios 0.1:0.9:9 --out r56_sens.h5                                # + r56_sens.png, r56_sens_norms.png
    landscape-prune --model r56.pt --arch resnet56 --plan resnet56-B --out r56B.pt
    landscape-prune --model r56.pt --arch resnet56 --plan layer1.0.conv1=0.5,layer2.3.conv1=0.3 --out p.pt
    landscape-prune --table1                                                # the paper's Table 1, recounted
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence

from landscape import prune
from landscape.cli._common import Parser, add_data_options, positive, run_cli, shape
from landscape.data.datasets import DataSpec
from landscape.engine.options import Output
from landscape.errors import LandscapeError
from landscape.evaluation.losses import LOSSES
from landscape.evaluation.options import EvalOptions
from landscape.jobs import prune as jobs
from landscape.jobs.network import ModelSpec
from landscape.prune import PRESETS, STRATEGIES
from landscape.prune.table import markdown, matches, table1
from landscape.runtime.parallel import launcher_rank

PROG = "landscape-prune"


def parse_ratios(text: str) -> list[float]:
    """``"0.1:0.9:9"`` (MIN:MAX:NUM, evenly spaced) or ``"0.1,0.3,0.5"``."""
    import numpy as np

    try:
        if ":" in text:
            lo, hi, num = text.split(":")
            n = int(num)
            if n < 1:
                raise ValueError
            values = np.linspace(float(lo), float(hi), n).round(12).tolist()
        else:
            values = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise LandscapeError(f"--ratios {text!r} is not MIN:MAX:NUM or a comma-separated list of fractions") from None
    if not values:
        raise LandscapeError(f"--ratios {text!r} gives no fraction")
    return values


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    p = Parser(
        prog=PROG,
        description="Prune the filters of smallest L1 norm from a conv net (Li et al., Pruning Filters "
        "for Efficient ConvNets, ICLR'17): count FLOPs and parameters, scan each layer's sensitivity, or "
        "write a physically smaller checkpoint for a plan.",
    )
    a = p.add_argument_group("what to do (one of)")
    a.add_argument("--count", action="store_true",
                   help="print FLOPs and parameters (the paper's convention); with --plan, also after it")
    a.add_argument("--sensitivity", action="store_true",
                   help="prune each layer alone by each of --ratios, evaluate without retraining, write --out "
                   "(HDF5, resumable) and its figures beside it")
    a.add_argument("--table1", action="store_true", help="print the paper's Table 1 recounted exactly (Markdown)")
    a.add_argument("--list-presets", action="store_true", help="list the paper's plans")
    a.add_argument("--plan", help=f"a preset ({', '.join(PRESETS)}) or layer=fraction pairs, comma-separated; "
                   "without --count or --sensitivity: write the pruned model to --out")

    m = p.add_argument_group("model")
    m.add_argument("--model", help="checkpoint (state dict, or a dict holding one; a pruned checkpoint's "
                   "widths are applied)")
    m.add_argument("--arch", help="zoo name (resnet56, vgg16, resnet34_imagenet, ...) or package.module:callable")
    m.add_argument("--num-classes", type=positive, default=None,
                   help="default: the checkpoint's, the preset's (--count), the dataset's, else 10")
    m.add_argument("--in-channels", type=positive, default=None, help="default: the checkpoint's, else 3")
    m.add_argument("--unsafe-pickle", action="store_true",
                   help="allow checkpoints holding pickled Python objects (trusted files only)")
    m.add_argument("--threads", type=positive, default=None,
                   help="torch threads per process (default: OMP_NUM_THREADS, else the idle cores / ranks)")
    m.add_argument("--strategy", choices=STRATEGIES, default="independent",
                   help="independent: score filters over all their kernels; greedy: only over kernels whose "
                   "input maps survive the layers pruned before (Sec. 3.3)")

    c = p.add_argument_group("counting")
    c.add_argument("--input-shape", type=shape, default=None, metavar="C,H,W",
                   help="input of one sample (default: the preset's, the checkpoint's, the dataset's, else "
                   "224x224 for *_imagenet, 8x8 for digits nets, 28x28 for MNIST nets, 32x32 otherwise)")
    c.add_argument("--shortcuts", action="store_true", help="also count 1x1 projection shortcuts")
    c.add_argument("--per-layer", action="store_true", help="with --count: one line per layer")

    add_data_options(p, split="test")  # --sensitivity's data: the paper scans on the test set

    s = p.add_argument_group("sensitivity")
    s.add_argument("--ratios", default="0.1:0.9:9", help="fractions to prune: MIN:MAX:NUM or a list (default "
                   "0.1:0.9:9)")
    s.add_argument("--layers", default=None, help="comma-separated conv layers (default: every conv that can be "
                   "pruned alone)")
    s.add_argument("--loss", default="crossentropy", choices=list(LOSSES))
    s.add_argument("--batch-size", type=positive, default=None, help="default: a quick timing probe picks it")
    s.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, auto")
    s.add_argument("--chunk-size", type=positive, default=1, help="(layer, ratio) pairs per work unit under MPI")
    s.add_argument("--no-progress", dest="progress", action="store_false")

    o = p.add_argument_group("output")
    o.add_argument("--out", help="pruned checkpoint (.pt) or sensitivity file (.h5)")
    o.add_argument("--overwrite", action="store_true", help="replace --out if it exists (a sensitivity file of the "
                   "same inputs is resumed without it)")
    o.add_argument("--repair", action="store_true", help="resume a damaged sensitivity file, keeping the pairs that "
                   "verify")
    return p


def _short(x: int) -> str:
    return f"{x:.3g}".replace("e+0", "e").replace("e+", "e")


def _fmt(flops: int, params: int) -> str:
    return f"{flops:,} FLOPs ({_short(flops)}), {params:,} params ({_short(params)})"


def retrain_command(ns: argparse.Namespace, argv: Sequence[str], ckpt: Mapping) -> str:
    """The ``landscape-train`` command that retrains the pruned checkpoint, complete enough to run
    as printed: the dataset given here, else the one the original checkpoint records."""
    import os
    import shlex

    given = any(a == "--dataset" or a.startswith("--dataset=") for a in argv)
    dataset = ns.dataset if given or not ckpt.get("dataset") else ckpt["dataset"]
    out = os.path.splitext(ns.out)[0] + "_retrained"
    words = ["landscape-train", "--init-from", ns.out, "--arch", ns.arch, "--dataset", dataset]
    if ns.data_root:
        words += ["--data-root", ns.data_root]
    if ns.raw_data:
        words.append("--raw-data")
    words += ["--lr", "0.001", "--epochs", "40", "--out", out]
    return shlex.join(words)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-prune``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(argv)
        if ns.table1:
            rows = table1()
            print(markdown(rows), end="")
            hit, total = matches(rows)
            print(f"\n{hit} of the paper's {total} printed numbers reproduced at their printed precision "
                  "(bold: where ours differ)")
            return 0
        if ns.list_presets:
            for p in PRESETS.values():
                print(f"{p.name:12s} {p.arch:18s} {p.description}")
            return 0
        actions = [k for k in ("count", "sensitivity") if getattr(ns, k)]
        if len(actions) > 1:
            raise LandscapeError("give one of --count and --sensitivity")
        if not ns.arch:
            raise LandscapeError("--arch is needed (a zoo name or package.module:callable)")
        if ns.count and ns.out:
            raise LandscapeError("--count only prints; to write the pruned model give --plan and --out without "
                                 "--count")
        if not ns.sensitivity and launcher_rank() != 0:
            return 0  # under mpirun only the sensitivity scan is shared out; the rest is rank 0's

        model = ModelSpec(ns.arch, ns.model, ns.num_classes, ns.in_channels, ns.unsafe_pickle)
        if ns.count:
            r = jobs.count_checkpoint(jobs.CountConfig(model, ns.plan, ns.input_shape, ns.shortcuts, ns.per_layer))
            print(f"{PROG}: {r.arch} on {'x'.join(map(str, r.input_shape))}: {_fmt(r.flops, r.params)}")
            for lc in r.layers:
                print(f"  {lc.name:28s} {lc.kind:8s} {'x'.join(map(str, lc.output_shape)):>12s} "
                      f"{lc.flops:>14,} FLOPs {lc.params:>11,} params")
            if r.flops_after is not None:
                print(f"{PROG}: pruned by {r.plan_name or 'the plan'} ({r.narrowed} convs narrowed): "
                      f"{_fmt(r.flops_after, r.params_after)}; {prune.reduction(r.flops, r.flops_after):.2f}% fewer "
                      f"FLOPs, {prune.reduction(r.params, r.params_after):.2f}% fewer params")
            return 0
        if not (ns.sensitivity or ns.plan):
            raise LandscapeError("nothing to do: give --count, --sensitivity, or --plan with --out")
        if not ns.model:
            raise LandscapeError("--sensitivity and --plan need --model (the trained checkpoint); to train a pruned "
                                 "architecture from scratch: landscape-train --plan")
        if not ns.out:
            raise LandscapeError("--sensitivity and --plan need --out (the sensitivity file, or the pruned checkpoint)")
        if ns.sensitivity:
            if ns.plan:
                raise LandscapeError("--sensitivity prunes each layer alone; it takes no --plan")

            layers = tuple(t.strip() for t in ns.layers.split(",") if t.strip()) if ns.layers else None
            result, figures = jobs.scan_checkpoint(jobs.ScanConfig(
                model, tuple(parse_ratios(ns.ratios)), DataSpec.of(ns), layers, ns.strategy,
                EvalOptions(loss_fn=ns.loss, batch_size=ns.batch_size, device=ns.device, threads=ns.threads),
                Output(ns.out, overwrite=ns.overwrite, repair=ns.repair, chunk_size=ns.chunk_size,
                       progress=ns.progress)))
            if launcher_rank() == 0:
                import numpy as np

                lowest = "no finite accuracy"
                if np.isfinite(result.accuracy).any():
                    i, j = np.unravel_index(int(np.nanargmin(result.accuracy)), result.accuracy.shape)
                    lowest = (f"lowest: {result.accuracy[i, j]:.2f}% with {result.layers[i]} pruned by "
                              f"{result.ratios[j]:g}")
                print(f"{PROG}: wrote {ns.out} ({int(result.completed.sum())}/{result.completed.size} pairs; "
                      f"unpruned accuracy {result.baseline_accuracy:.2f}%; {lowest})")
                print(f"{PROG}: figures: {', '.join(figures)}")
            return 0
        if ns.plan:
            ckpt = jobs.prune_checkpoint(jobs.PruneConfig(model, ns.plan, ns.out, ns.strategy, ns.input_shape,
                                                          ns.overwrite, ns.threads))
            info = ckpt["prune"]
            print(f"{PROG}: wrote {ns.out}: {len(ckpt['widths'])} convs narrowed ({ns.strategy}); "
                  f"{_fmt(info['flops'], info['params'])}; "
                  f"{prune.reduction(info['flops_original'], info['flops']):.2f}% fewer FLOPs, "
                  f"{prune.reduction(info['params_original'], info['params']):.2f}% fewer params")
            print(f"{PROG}: retrain it: {retrain_command(ns, argv, ckpt)}")
        return 0

    return run_cli(PROG, body, {"ConfigMismatch": "use --overwrite to replace it, or another --out",
                                "DamagedFile": "rerun with --overwrite, or --repair to keep the pairs that verify"})


if __name__ == "__main__":
    sys.exit(main())
