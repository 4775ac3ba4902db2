"""``landscape-surf``: compute a 1D or 2D loss/accuracy surface around a checkpoint.

    landscape-surf                                   # built-in demo: digits net, 2D surface, plots
    landscape-surf --model ckpt.pt --arch resnet20 --dataset cifar10 --data-root DIR \\
        --x=-1:1:51 --y=-1:1:51 --norm filter --ignore biasbn --out surface.h5
    landscape-surf --model a.pt --model2 b.pt --arch resnet20 ... --x=-0.5:1.5:41 --out interp.h5
    mpirun -n 4 landscape-surf --model ckpt.pt ...   # the same file, computed by 4 ranks
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, join_negative_values, non_negative, positive, run_cli

PROG = "landscape-surf"
DEMO_OUT = os.path.join("landscape_demo", "surface.h5")
DEMO_GRID = "-1:1:31"
PATH_GRID_POINTS = 31


def _shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(t) for t in text.lower().replace("x", ",").split(",") if t)
    except ValueError:
        dims = ()
    if not dims or min(dims) < 1:
        raise ValueError(text)
    return dims


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    from landscape.compute import SurfaceConfig
    from landscape.directions import IGNORES, NORMS
    from landscape.evaluate import LOSSES, PRECISIONS
    from landscape.params import DIR_TYPES

    d = SurfaceConfig(model="", arch="")
    p = Parser(
        prog=PROG,
        description="Compute the loss and accuracy of a network on a grid of points "
        "theta + a*d1 (+ b*d2) around a checkpoint, into one HDF5 surface file. With no --model, "
        "trains a small network on scikit-learn's digits (cached) and draws its 2D surface.",
    )
    m = p.add_argument_group("model")
    m.add_argument("--model", help="checkpoint: a state dict, or a dict holding one under "
                   "'state_dict' (loaded with torch.load(weights_only=True))")
    m.add_argument("--model2", help="second checkpoint: the x direction becomes model2 - model "
                   "(linear interpolation; x=0 is --model, x=1 is --model2 when --dir-type states "
                   "also interpolates the BatchNorm statistics)")
    m.add_argument("--arch", help="zoo name (resnet20, vgg9, digits_cnn, ...) or "
                   "package.module:callable returning an nn.Module")
    m.add_argument("--num-classes", type=positive, default=None, help="default: from the dataset")
    m.add_argument("--unsafe-pickle", action="store_true",
                   help="allow checkpoints holding pickled Python objects (a whole nn.Module). "
                   "Unpickling runs arbitrary code from the file: only for files you trust")

    g = p.add_argument_group("data")
    g.add_argument("--dataset", default=d.dataset,
                   help="digits, synthetic, cifar10, cifar100, mnist or package.module:callable "
                   f"(default {d.dataset})")
    g.add_argument("--data-root", help="folder with cifar-10-batches-py, cifar-100-python or "
                   "the MNIST IDX files")
    g.add_argument("--split", choices=["train", "test"], default=d.split)
    g.add_argument("--samples", type=positive, default=None, metavar="N",
                   help="evaluate a fixed random subset of N samples (its indices are recorded)")
    g.add_argument("--sample-seed", type=non_negative, default=d.sample_seed)
    g.add_argument("--synthetic-shape", type=_shape, default=d.synthetic_shape, metavar="C,H,W",
                   help="input shape of --dataset synthetic (default 3,32,32)")
    g.add_argument("--synthetic-size", type=positive, default=d.synthetic_size,
                   help=f"samples of --dataset synthetic (default {d.synthetic_size})")
    g.add_argument("--synthetic-seed", type=non_negative, default=d.synthetic_seed,
                   help="seed of --dataset synthetic: the --seed the network was trained with")
    g.add_argument("--raw-data", action="store_true",
                   help="no per-channel normalization (for networks trained with --raw-data)")

    s = p.add_argument_group("grid and directions")
    s.add_argument("--x", default=None, metavar="MIN:MAX:NUM",
                   help=f"x axis (default {d.x}; {DEMO_GRID} for the demo; with a landscape-traj "
                   f"--directions file and no --x/--y: {PATH_GRID_POINTS}x{PATH_GRID_POINTS} "
                   "points covering the path)")
    s.add_argument("--y", default=None, metavar="MIN:MAX:NUM", help="y axis; absent: a 1D surface")
    s.add_argument("--dir-type", choices=DIR_TYPES, default=d.dir_type,
                   help="directions over the parameters (weights) or the whole state dict "
                   "including BatchNorm statistics (states)")
    s.add_argument("--norm", choices=NORMS, default=d.norm, help="direction normalization")
    s.add_argument("--ignore", choices=IGNORES, default=d.ignore,
                   help="biasbn: zero direction for biases and BatchNorm (1-D tensors)")
    s.add_argument("--seed", type=non_negative, default=d.seed, help="seed of the random directions")
    s.add_argument("--directions", metavar="FILE",
                   help="read the directions from FILE (a .dirs.h5 written by an earlier run, or "
                   "a landscape-traj PCA file) instead of drawing them")

    e = p.add_argument_group("evaluation")
    e.add_argument("--loss", choices=LOSSES, default=d.loss)
    e.add_argument("--batch-size", type=positive, default=None,
                   help="default: the fastest of 64..512, found by a quick timing probe")
    e.add_argument("--device", default=d.device, help="cpu (default), cuda, cuda:N, auto")
    e.add_argument("--threads", type=positive, default=None,
                   help="torch threads per process (default: cores / ranks on this node)")
    e.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                   help="bf16: autocast, ~3x faster on CPU but the loss moves (see README)")
    e.add_argument("--compile", action="store_true", help="torch.compile the model (slow start)")
    e.add_argument("--chunk-size", type=positive, default=d.chunk_size,
                   help="points per work unit under MPI")

    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, help=f"surface file (default surface.h5; {DEMO_OUT} "
                   "for the demo). Rerunning the same command resumes it")
    o.add_argument("--overwrite", action="store_true",
                   help="replace an --out file of another configuration instead of refusing")
    o.add_argument("--plot", action="store_true",
                   help="also draw the figures next to --out (always done for the demo)")
    o.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def config_from_args(ns) -> tuple:
    """(SurfaceConfig, whether to plot) from parsed arguments; no --model means the demo."""
    from landscape.compute import SurfaceConfig
    from landscape.errors import LandscapeError

    plot = ns.plot
    fields = {k: v for k, v in vars(ns).items() if k not in ("plot", "progress") and v is not None}
    if ns.model is None:
        from landscape.demo import DEMO_ARCH, DEMO_DATASET, demo_checkpoint

        if ns.model2 or (ns.arch and ns.arch != DEMO_ARCH):
            raise LandscapeError("--model2 and --arch need --model (without --model: the demo)")
        from landscape.parallel import world

        comm = world()  # under mpirun, rank 0 alone trains the demo net; the others wait for it
        path, error = None, None
        if comm.rank == 0:
            try:
                path = demo_checkpoint()
            except LandscapeError as exc:
                error = str(exc)
        path, error = comm.bcast((path, error), root=0)
        if error:
            raise LandscapeError(error)
        fields.update(model=path, arch=DEMO_ARCH, dataset=DEMO_DATASET)
        fields.setdefault("x", DEMO_GRID)
        fields.setdefault("y", DEMO_GRID)
        fields.setdefault("out", DEMO_OUT)
        try:
            os.makedirs(os.path.dirname(fields["out"]) or ".", exist_ok=True)
        except OSError as exc:
            raise LandscapeError(f"cannot create the folder of {fields['out']!r}: {exc.strerror or exc}") from None
        plot = True
    elif ns.arch is None:
        raise LandscapeError("--arch is needed with --model (a zoo name or package.module:callable)")
    if ns.directions and ns.x is None and ns.y is None:
        fields.update(path_grid(ns.directions))
    return SurfaceConfig(**fields), plot


def path_grid(directions: str, num: int = PATH_GRID_POINTS) -> dict[str, str]:
    """For a landscape-traj file: ``x`` and ``y`` covering the optimization path with a margin;
    for a plain directions file, nothing (the usual defaults apply)."""
    import h5py

    from landscape.trajectory import path_extent, read_trajectory

    try:
        with h5py.File(directions, "r") as f:
            if "proj_xcoord" not in f:
                return {}
    except OSError:
        return {}  # not readable: the directions loader reports it
    x0, x1, y0, y1 = path_extent(read_trajectory(directions))
    return {"x": f"{x0:.4g}:{x1:.4g}:{num}", "y": f"{y0:.4g}:{y1:.4g}:{num}"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-surf``; returns the exit code."""
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv))

    def body() -> int:
        from landscape.compute import compute_surface

        ns = build_parser().parse_args(argv)
        cfg, plot = config_from_args(ns)
        cfg.command = " ".join([PROG, *argv])
        surface = compute_surface(cfg, progress=ns.progress)
        if surface is None:  # an MPI rank other than 0
            return 0
        print(f"{PROG}: wrote {cfg.out} ({surface.completed.sum()}/{surface.completed.size} "
              f"points, loss {_range(surface.loss)})")
        if plot:
            from landscape.plot.render import render

            paths = render(surface, os.path.splitext(cfg.out)[0])
            print(f"{PROG}: figures: {', '.join(paths)}")
        return 0

    return run_cli(PROG, body)


def _range(values) -> str:
    import numpy as np

    finite = values[np.isfinite(values)]
    bad = values.size - finite.size
    text = f"{finite.min():.4g}..{finite.max():.4g}" if finite.size else "none finite"
    return text + (f", {bad} point(s) NaN/inf" if bad else "")


if __name__ == "__main__":
    sys.exit(main())
