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

import os
import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, non_negative, positive, run_cli
from landscape.errors import LandscapeError
from landscape.parallel import launcher_rank

PROG = "landscape-prune"


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(t) for t in text.lower().replace("x", ",").split(",") if t)
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise ValueError(text)
    return dims


_shape.__name__ = "shape C,H,W"


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
    from landscape.prune import PRESETS, STRATEGIES

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
    m.add_argument("--strategy", choices=STRATEGIES, default="independent",
                   help="independent: score filters over all their kernels; greedy: only over kernels whose "
                   "input maps survive the layers pruned before (Sec. 3.3)")

    c = p.add_argument_group("counting")
    c.add_argument("--input-shape", type=_shape, default=None, metavar="C,H,W",
                   help="input of one sample (default: the preset's, the checkpoint's, the dataset's, else "
                   "224x224 for *_imagenet, 8x8 for digits nets, 28x28 for MNIST nets, 32x32 otherwise)")
    c.add_argument("--shortcuts", action="store_true", help="also count 1x1 projection shortcuts")
    c.add_argument("--per-layer", action="store_true", help="with --count: one line per layer")

    g = p.add_argument_group("data (--sensitivity)")
    g.add_argument("--dataset", default="digits",
                   help="digits, synthetic, cifar10, cifar100, mnist or package.module:callable (default digits)")
    g.add_argument("--data-root", help="folder with cifar-10-batches-py, cifar-100-python or the MNIST IDX files")
    g.add_argument("--split", choices=["train", "test"], default="test")
    g.add_argument("--samples", type=positive, default=None, metavar="N",
                   help="evaluate a fixed random subset of N samples")
    g.add_argument("--sample-seed", type=non_negative, default=0)
    g.add_argument("--synthetic-shape", type=_shape, default=(3, 32, 32), metavar="C,H,W")
    g.add_argument("--synthetic-size", type=positive, default=2048)
    g.add_argument("--synthetic-seed", type=non_negative, default=0)
    g.add_argument("--raw-data", action="store_true", help="no per-channel normalization")

    s = p.add_argument_group("sensitivity")
    s.add_argument("--ratios", default="0.1:0.9:9", help="fractions to prune: MIN:MAX:NUM or a list (default "
                   "0.1:0.9:9)")
    s.add_argument("--layers", default=None, help="comma-separated conv layers (default: every conv that can be "
                   "pruned alone)")
    s.add_argument("--loss", default="crossentropy", choices=["crossentropy", "mse"])
    s.add_argument("--batch-size", type=positive, default=None, help="default: a quick timing probe picks it")
    s.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, auto")
    s.add_argument("--threads", type=positive, default=None, help="torch threads per process (default: cores / "
                   "ranks on this node)")
    s.add_argument("--chunk-size", type=positive, default=1, help="(layer, ratio) pairs per work unit under MPI")
    s.add_argument("--no-progress", dest="progress", action="store_false")

    o = p.add_argument_group("output")
    o.add_argument("--out", help="pruned checkpoint (.pt) or sensitivity file (.h5)")
    o.add_argument("--overwrite", action="store_true", help="replace --out if it exists (a sensitivity file of the "
                   "same inputs is resumed without it)")
    return p


# ------------------------------------------------------------------------------ helpers


def _default_shape(arch: str, in_channels: int) -> tuple[int, ...]:
    if arch.endswith("_imagenet"):
        return (in_channels, 224, 224)
    if arch in ("digits_cnn", "mlp"):
        return (in_channels, 8, 8)
    if arch in ("lenet", "mlp_mnist"):
        return (in_channels, 28, 28)
    return (in_channels, 32, 32)


def _io_of(model) -> tuple[int, int]:
    """``(num_classes, in_channels)`` of a built model: its last linear's outputs, first conv's inputs."""
    from torch import nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    convs = [m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    return (linears[-1].out_features if linears else 10), (convs[0].in_channels if convs else 3)


def _meta(path: str, unsafe: bool) -> dict:
    from landscape.checkpoint import read_checkpoint

    obj = read_checkpoint(path, unsafe)
    return obj if isinstance(obj, dict) else {}


def _load(ns, num_classes: int | None = None, in_channels: int | None = None):
    """(model, checkpoint metadata) for --model, through the one checkpoint loader."""
    from landscape.checkpoint import load_model

    meta = _meta(ns.model, ns.unsafe_pickle)
    model = load_model(ns.arch, ns.model, num_classes=ns.num_classes or num_classes,
                       in_channels=ns.in_channels or in_channels, unsafe_pickle=ns.unsafe_pickle)
    return model.eval(), meta


def _fresh(ns, num_classes: int, in_channels: int):
    """The architecture without weights (counting only): built on the meta device."""
    import torch

    from landscape.models import build_model

    with torch.device("meta"):
        return build_model(ns.arch, num_classes=num_classes, in_channels=in_channels)


def _check_out(path: str | None, overwrite: bool, what: str) -> str:
    if not path:
        raise LandscapeError(f"{what} needs --out")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise LandscapeError(f"output folder {folder!r} does not exist")
    if os.path.isdir(path):
        raise LandscapeError(f"--out {path!r} is a folder")
    return path


def _short(x: int) -> str:
    return f"{x:.3g}".replace("e+0", "e").replace("e+", "e")


def _fmt(flops: int, params: int) -> str:
    return f"{flops:,} FLOPs ({_short(flops)}), {params:,} params ({_short(params)})"


# ------------------------------------------------------------------------------ actions


def _input_shape(ns, meta: dict, preset_name: str, in_channels: int) -> tuple[int, ...]:
    """--input-shape, else the preset's, else what a pruned checkpoint recorded, else by architecture."""
    from landscape.prune import preset_info

    if ns.input_shape:
        return tuple(ns.input_shape)
    if preset_name:
        return tuple(preset_info(preset_name).input_shape)
    recorded = meta.get("prune", {}).get("input_shape") if isinstance(meta.get("prune"), dict) else None
    if recorded:
        return tuple(int(d) for d in recorded)
    return _default_shape(ns.arch, in_channels)


def _preset_name(ns) -> str:
    from landscape.prune import PRESETS

    return ns.plan.strip() if ns.plan and ns.plan.strip() in PRESETS else ""


def _count(ns) -> int:
    from landscape.prune import count, layer_counts, plan_widths, preset_info, reduction, resize_, resolve_plan
    from landscape.prune.counts import meta_copy

    pre = _preset_name(ns)
    if ns.model:
        model, meta = _load(ns)
    else:
        nc = ns.num_classes or (preset_info(pre).num_classes if pre else 10)
        ic = ns.in_channels or (preset_info(pre).input_shape[0] if pre else 3)
        model, meta = _fresh(ns, nc, ic), {}
    shape = _input_shape(ns, meta, pre, _io_of(model)[1])
    flops, params = count(model, shape, ns.shortcuts)
    print(f"{PROG}: {ns.arch} on {'x'.join(map(str, shape))}: {_fmt(flops, params)}")
    if ns.per_layer:
        for lc in layer_counts(model, shape, ns.shortcuts):
            print(f"  {lc.name:28s} {lc.kind:8s} {'x'.join(map(str, lc.output_shape)):>12s} "
                  f"{lc.flops:>14,} FLOPs {lc.params:>11,} params")
    if ns.plan:
        plan, name = resolve_plan(ns.plan, model)
        widths = plan_widths(model, plan)
        f1, p1 = count(resize_(meta_copy(model), widths), shape, ns.shortcuts)
        print(f"{PROG}: pruned by {name or 'the plan'} ({len(widths)} convs narrowed): {_fmt(f1, p1)}; "
              f"{reduction(flops, f1):.2f}% fewer FLOPs, {reduction(params, p1):.2f}% fewer params")
    return 0


def _prune(ns) -> int:
    from landscape.prune import prune_filters, reduction, resolve_plan, save_pruned

    out = _check_out(ns.out, ns.overwrite, "--plan (writing a pruned model)")
    if os.path.exists(out) and not ns.overwrite:
        raise LandscapeError(f"{out!r} exists; use --overwrite to replace it")
    if not ns.model:
        raise LandscapeError("--plan needs --model (the trained checkpoint to prune); to train a pruned "
                             "architecture from scratch: landscape-train --plan")
    model, meta = _load(ns)
    plan, name = resolve_plan(ns.plan, model)
    pruned = prune_filters(model, plan, ns.strategy)
    nc, ic = _io_of(model)
    shape = _input_shape(ns, meta, name, ic)
    ckpt = save_pruned(out, pruned, original=model, arch=ns.arch, plan=plan, input_shape=shape,
                       num_classes=nc, in_channels=ic, strategy=ns.strategy, preset=name, source=ns.model)
    info = ckpt["prune"]
    print(f"{PROG}: wrote {out}: {len(ckpt['widths'])} convs narrowed ({ns.strategy}); "
          f"{_fmt(info['flops'], info['params'])}; "
          f"{reduction(info['flops_original'], info['flops']):.2f}% fewer FLOPs, "
          f"{reduction(info['params_original'], info['params']):.2f}% fewer params")
    print(f"{PROG}: retrain it: landscape-train --init-from {out} --arch {ns.arch} --lr 0.001 --epochs 40 ...")
    return 0


def _agree(comm, fn):
    """Run ``fn`` on every rank; a LandscapeError on any rank ends all of them alike."""
    from landscape.parallel import abort_on_error, first_error

    value, error = None, None
    with abort_on_error(comm, PROG):
        try:
            value = fn()
        except LandscapeError as exc:
            error = str(exc)
    error = first_error(comm, error)
    if error:
        raise LandscapeError(error)
    return value


def _sensitivity(ns) -> int:
    import torch

    from landscape.parallel import local_rank_and_size, world
    from landscape.prune.scan import check_ratios

    comm = world()
    out = _check_out(ns.out, ns.overwrite, "--sensitivity")
    if not ns.model:
        raise LandscapeError("--sensitivity needs --model (a trained checkpoint)")
    ratios = parse_ratios(ns.ratios)
    check_ratios(ratios)  # before loading anything
    layers = [t.strip() for t in ns.layers.split(",") if t.strip()] if ns.layers else None
    _, local_size = local_rank_and_size(comm)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    threads = torch.get_num_threads()
    torch.set_num_threads(ns.threads or max(1, cores // local_size))
    try:
        return _scan(ns, comm, out, ratios, layers)
    finally:
        torch.set_num_threads(threads)  # main() may be called in a process that goes on


def _scan(ns, comm, out: str, ratios: list[float], layers: list[str] | None) -> int:
    from landscape.checkpoint import sha256
    from landscape.data import load_dataset
    from landscape.prune import sensitivity

    def setup():
        data = load_dataset(ns.dataset, root=ns.data_root, split=ns.split, raw=ns.raw_data,
                            shape=ns.synthetic_shape, num_classes=ns.num_classes or 10, size=ns.synthetic_size,
                            seed=ns.synthetic_seed)
        if ns.samples:
            data, _ = data.subset(ns.samples, ns.sample_seed)
        in_ch = data.x.shape[1] if data.x.dim() == 4 else 1
        model, _ = _load(ns, num_classes=data.num_classes or None, in_channels=in_ch)
        return data, model

    data, model = _agree(comm, setup)
    attrs = {
        "arch": ns.arch, "model": os.path.abspath(ns.model), "model_file_sha256": sha256(ns.model),
        "dataset": ns.dataset, "data_root": ns.data_root or "", "split": ns.split, "samples": ns.samples or "",
        "sample_seed": ns.sample_seed if ns.samples else "", "raw_data": int(ns.raw_data),
        "config_keys": "arch,dataset,split,samples,sample_seed,raw_data",
    }
    result = sensitivity(model, data, ratios, layers, ns.strategy, comm, out, loss=ns.loss,
                         batch_size=ns.batch_size, device=ns.device, overwrite=ns.overwrite, attrs=attrs,
                         chunk_size=ns.chunk_size, progress=ns.progress)
    if result is None:  # a rank other than 0
        return 0
    from landscape.plot.prune import figures

    root = os.path.splitext(out)[0]
    paths = []
    for key, fig in figures(result, model, name=ns.arch, data=f"{ns.dataset} {ns.split}").items():
        path = f"{root}.png" if key == "sensitivity" else f"{root}_norms.png"
        try:
            fig.savefig(path, dpi=150)
        except OSError as exc:
            raise LandscapeError(f"cannot write {path!r}: {exc.strerror or exc}") from None
        paths.append(path)
    import numpy as np

    i, j = np.unravel_index(int(np.nanargmin(result.accuracy)), result.accuracy.shape)
    print(f"{PROG}: wrote {out} ({int(result.completed.sum())}/{result.completed.size} pairs; unpruned accuracy "
          f"{result.baseline_accuracy:.2f}%; lowest: {result.accuracy[i, j]:.2f}% with {result.layers[i]} pruned by "
          f"{result.ratios[j]:g})")
    print(f"{PROG}: figures: {', '.join(paths)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-prune``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(argv)
        if ns.table1:
            from landscape.prune.table import markdown, matches, table1

            rows = table1()
            print(markdown(rows), end="")
            hit, total = matches(rows)
            print(f"\n{hit} of the paper's {total} printed numbers reproduced at their printed precision "
                  "(bold: where ours differ)")
            return 0
        if ns.list_presets:
            from landscape.prune import PRESETS

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
        if ns.count:
            return _count(ns)
        if ns.sensitivity:
            if ns.plan:
                raise LandscapeError("--sensitivity prunes each layer alone; it takes no --plan")
            return _sensitivity(ns)
        if ns.plan:
            return _prune(ns)
        raise LandscapeError("nothing to do: give --count, --sensitivity, or --plan with --out")

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
