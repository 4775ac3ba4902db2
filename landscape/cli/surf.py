"""``landscape-surf``: compute a 1D, 2D or 3D loss/accuracy surface around a checkpoint.

    landscape-surf                                   # built-in demo: digits net, 2D surface, plots
    landscape-surf --model ckpt.pt --arch resnet20 --dataset cifar10 --data-root DIR \\
        --x=-1:1:51 --y=-1:1:51 --norm filter --ignore biasbn --out surface.h5
    landscape-surf --model a.pt --model2 b.pt --arch resnet20 ... --x=-0.5:1.5:41 --out interp.h5
    mpirun -n 4 landscape-surf --model ckpt.pt ...   # the same file, computed by 4 ranks
"""

from __future__ import annotations

import argparse
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
from landscape.data.datasets import DataSpec
from landscape.directions.options import Directions
from landscape.directions.sampling import NORMS, SEMANTICS
from landscape.engine.options import MAX_POINTS, Output
from landscape.evaluation.losses import LOSSES
from landscape.evaluation.options import PRECISIONS, EvalOptions
from landscape.hessian.operator import CONVENTIONS, PARAM_CHOICES
from landscape.jobs.surf import DEFAULT_GRID, DEFAULT_OUT, DEMO_GRID, DEMO_OUT, PATH_GRID_POINTS, SurfConfig, surf
from landscape.runtime.parallel import world
from landscape.space.grid import Grid
from landscape.space.params import DIR_TYPES, IGNORES

PROG = "landscape-surf"
GRID_OPTIONS = ("--x", "--y", "--z")


def _metrics(text: str) -> tuple[str, ...]:
    items = tuple(t for t in text.replace(" ", "").split(",") if t)
    if not items:
        raise ValueError(text)
    names = {"acc": "loss", "loss": "loss", "eig": "eig"}
    if any(t not in names for t in items):
        raise ValueError(text)
    return tuple(dict.fromkeys(names[t] for t in items))


_metrics.__name__ = "comma-separated list of loss, acc, eig"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    d = SurfConfig()
    dirs, ev, out = d.directions, d.evaluation, d.output
    p = Parser(
        prog=PROG,
        description="Compute the loss and accuracy of a network on a grid of points "
        "theta + a*d1 (+ b*d2 (+ c*d3)) around a checkpoint, into one HDF5 surface file. With no --model, "
        "trains a small network on scikit-learn's digits (cached) and draws its 2D surface.",
    )
    m = p.add_argument_group("model")
    m.add_argument("--model", help="checkpoint: a state dict, or a dict holding one under "
                   "'state_dict' (loaded with torch.load(weights_only=True)), or a .safetensors file; a pruned "
                   "checkpoint's widths are read from it. With --arch hf:DIR: default DIR's weights")
    m.add_argument("--model2", help="second checkpoint: the x direction becomes model2 - model "
                   "(linear interpolation; x=0 is --model, x=1 is --model2 when --dir-type states "
                   "also interpolates the BatchNorm statistics)")
    m.add_argument("--model3", help="third checkpoint, with --model2: the y direction is model3 - model "
                   "(the plane through three models)")
    m.add_argument("--curve", metavar="CURVE.pt", help="a landscape-connect curve file: the plane through its ends "
                   "a, b and its bend (x along b - a, y towards the bend orthogonal to it, as long; the default "
                   "grid covers the three)")
    m.add_argument("--arch", help="zoo name (resnet20, vgg9, digits_cnn, ...), "
                   "package.module:callable returning an nn.Module (modules in the current folder are found), "
                   "or hf:DIR, the Hugging Face model of DIR/config.json (offline; pip install 'torch-landscape[hf]')")
    m.add_argument("--num-classes", type=positive, default=None, help="default: from the dataset")
    m.add_argument("--unsafe-pickle", action="store_true",
                   help="allow checkpoints holding pickled Python objects (a whole nn.Module). "
                   "Unpickling runs arbitrary code from the file: only for files you trust")

    add_data_options(p, d.data.split, several=True)

    s = p.add_argument_group("grid and directions")
    s.add_argument("--x", default=None, metavar="MIN:MAX:NUM",
                   help=f"x axis (default {DEFAULT_GRID}; {DEMO_GRID} for the demo; with a landscape-traj "
                   f"--directions file and no --x/--y: {PATH_GRID_POINTS}x{PATH_GRID_POINTS} "
                   "points covering the path)")
    s.add_argument("--y", default=None, metavar="MIN:MAX:NUM", help="y axis; absent: a 1D surface")
    s.add_argument("--z", default=None, metavar="MIN:MAX:NUM",
                   help="a third axis: a volume (VTK image data and plotly isosurfaces in landscape-plot)")
    s.add_argument("--adaptive", type=float, default=None, metavar="TOL",
                   help="evaluate a coarse grid, then refine only where interpolation misses by more than TOL "
                   "(relative, e.g. 0.01); the other points are interpolated and the file marks the evaluated "
                   "ones (1D and 2D)")
    s.add_argument("--hold-directions", action="store_true",
                   help="keep the directions whole in memory (two more copies of the model) instead of drawing or "
                   "reading them tensor by tensor at every point; the same values")
    s.add_argument("--dir-type", choices=DIR_TYPES, default=dirs.dir_type,
                   help="directions over the parameters (weights) or the whole state dict "
                   "including BatchNorm statistics (states)")
    s.add_argument("--norm", choices=NORMS, default=dirs.norm, help="direction normalization (every axis)")
    s.add_argument("--ignore", choices=IGNORES, default=None,
                   help="biasbn: zero direction for biases and BatchNorm (1-D tensors) (every axis; default biasbn, "
                   "none with --norm elementwise)")
    for axis in "xyz":
        s.add_argument(f"--{axis}norm", choices=NORMS, default=None, help=f"normalization of the {axis} direction")
        s.add_argument(f"--{axis}ignore", choices=IGNORES, default=None, help=f"ignore rule of the {axis} direction")
    s.add_argument("--semantics", choices=SEMANTICS, default=dirs.semantics,
                   help="original: the original tool's normalization rules where they differ (a kept 1-D "
                   "direction equals the weights; weight norm is element-wise d*w)")
    s.add_argument("--same-dir", action="store_true", help="y direction = x direction (the diagonal)")
    s.add_argument("--seed", type=non_negative, default=dirs.seed, help="seed of the random directions")
    s.add_argument("--directions", dest="directions_file", metavar="FILE",
                   help="read the directions from FILE (a .dirs.h5 written by an earlier run, a "
                   "landscape-traj PCA file, or the original tool's directions file) instead of drawing them")

    e = p.add_argument_group("evaluation")
    e.add_argument("--metrics", type=_metrics, default=d.metrics,
                   help="quantities at every point: loss (with accuracy; always), eig (the Hessian's extreme "
                   "eigenvalues max_eig, min_eig: the convexity map). Default loss")
    e.add_argument("--eig-tol", type=positive_float, default=None,
                   help="relative tolerance of the eigenvalues of --metrics eig (default 1e-3 of |max_eig|; "
                   "much looser risks taking an eigenvalue near zero for min_eig). Each point's Lanczos run is a "
                   "warm start from a finished neighbour, so a resumed run (or another number of ranks) may "
                   "differ from an uninterrupted one within this tolerance; loss and accuracy are identical")
    e.add_argument("--eig-convention", choices=CONVENTIONS, default=d.eig_convention,
                   help="mean: the Hessian of the mean loss (default); batch_sum: the original tool's sum of the "
                   "batch means' Hessians (larger by the number of batches)")
    e.add_argument("--eig-params", choices=PARAM_CHOICES, default=d.eig_params,
                   help="the parameters of the Hessian: all trainable ones (default) or the original tool's "
                   "choice (tensors of more than one dimension)")
    e.add_argument("--loss", choices=list(LOSSES), default=ev.loss_fn)
    e.add_argument("--batch-size", type=positive, default=ev.batch_size,
                   help="default: the fastest of 64..512, found by a quick timing probe (rank 0; at most 3 "
                   "evaluations of the data, its choice remembered per model, input shape, device and threads in "
                   "$LANDSCAPE_CACHE, else ~/.cache/landscape)")
    e.add_argument("--bn-recompute", type=non_negative, default=ev.bn_recompute, metavar="N",
                   help="re-estimate BatchNorm running statistics from N training batches at every point "
                   "(for paths between BatchNorm networks)")
    e.add_argument("--device", default=ev.device, help="cpu (default), cuda, cuda:N, auto")
    e.add_argument("--threads", type=positive, default=ev.threads,
                   help="torch threads per process (default: OMP_NUM_THREADS, else the idle cores / ranks)")
    e.add_argument("--precision", choices=PRECISIONS, default=ev.precision,
                   help="bf16: autocast (only where the CPU or GPU runs it fast; the loss moves, see README)")
    e.add_argument("--compile", action="store_true", help="torch.compile the model (slow start; see README)")
    e.add_argument("--chunk-size", type=positive, default=out.chunk_size,
                   help="points per work unit under MPI")

    o = p.add_argument_group("output")
    o.add_argument("--out", default=out.path, help=f"surface file (default {DEFAULT_OUT}; {DEMO_OUT} "
                   "for the demo). Rerunning the same command resumes it")
    o.add_argument("--overwrite", action="store_true",
                   help="replace an --out file of another configuration (or a damaged one) instead of refusing")
    o.add_argument("--repair", action="store_true",
                   help="resume a damaged --out file, keeping the points whose values verify")
    o.add_argument("--allow-large", action="store_true",
                   help="allow a grid of more than a million points")
    o.add_argument("--plot", action="store_true",
                   help="also draw the figures next to --out (always done for the demo)")
    o.add_argument("--no-progress", dest="progress", action="store_false", default=out.progress)
    return p


def config_from_args(ns: argparse.Namespace, argv: Sequence[str]):
    """The :class:`landscape.jobs.surf.SurfConfig` of parsed options: the one place where
    flags become option objects (each object checks its values as it is built)."""
    grid = None  # no axis given: the command's default (the demo's, a path's, or DEFAULT_GRID)
    if ns.x is not None or ns.y is not None or ns.z is not None:
        demo = ns.model is None and not (ns.arch or "").startswith("hf:")
        grid = Grid(ns.x or (DEMO_GRID if demo else DEFAULT_GRID), ns.y or (DEMO_GRID if demo else None), ns.z)
    norm, ignore = ns.norm, ns.ignore
    if any(getattr(ns, f"{a}{k}") for a in "xyz" for k in ("norm", "ignore")):
        norm = tuple(getattr(ns, f"{a}norm") or ns.norm for a in "xyz")
        ignore = tuple(getattr(ns, f"{a}ignore") or ns.ignore for a in "xyz")
    return SurfConfig(
        data=DataSpec.of(ns), model=ns.model, arch=ns.arch, model2=ns.model2, model3=ns.model3, curve=ns.curve,
        unsafe_pickle=ns.unsafe_pickle, grid=grid, adaptive=ns.adaptive,
        directions=Directions(dir_type=ns.dir_type, norm=norm, ignore=ignore, seed=ns.seed, semantics=ns.semantics,
                              hold=ns.hold_directions),
        directions_file=ns.directions_file, same_dir=ns.same_dir, metrics=ns.metrics, eig_tol=ns.eig_tol,
        eig_convention=ns.eig_convention, eig_params=ns.eig_params,
        evaluation=EvalOptions(loss_fn=ns.loss, batch_size=ns.batch_size, device=ns.device, precision=ns.precision,
                               compile=ns.compile, threads=ns.threads, bn_recompute=ns.bn_recompute),
        output=Output(path=ns.out, overwrite=ns.overwrite, repair=ns.repair, chunk_size=ns.chunk_size,
                      max_points=None if ns.allow_large else MAX_POINTS, progress=ns.progress,
                      provenance={"command": " ".join([PROG, *argv])}),
        plot=ns.plot,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-surf``; returns the exit code."""
    argv = join_negative_values(list(sys.argv[1:] if argv is None else argv), GRID_OPTIONS)

    def body() -> int:
        cfg = config_from_args(build_parser().parse_args(argv), argv)
        comm = world()
        result = surf(cfg, comm)
        surface, figures = result.surface, result.figures
        if comm.rank == 0:
            done = surface.completed
            loss = surface.loss
            points = f"{done.sum()}/{done.size} points"
            if "evaluated" in surface.arrays:
                points = (f"{int(surface.arrays['evaluated'].sum())} of {done.size} points evaluated, the rest "
                          f"interpolated at tolerance {surface.attrs.get('adaptive_tol')}")
            print(f"{PROG}: wrote {surface.path} ({points}, loss {_range(loss)})"
                  + (f"; repaired: {surface.attrs['repaired']}" if surface.attrs.get("repaired") else ""))
            if figures:
                print(f"{PROG}: figures: {', '.join(figures)}")
        return 0

    return run_cli(PROG, body, HINTS)


HINTS = {
    "DamagedFile": "rerun with --overwrite to start again, or with --repair to keep the points whose values verify",
    "ConfigMismatch": "use --overwrite to replace it, or --out for a new file",
    "GridTooLarge": "pass --allow-large to compute it anyway",
}


def _range(values) -> str:
    import numpy as np

    finite = values[np.isfinite(values)]
    bad = values.size - finite.size
    text = f"{finite.min():.4g}..{finite.max():.4g}" if finite.size else "none finite"
    return text + (f", {bad} point(s) NaN/inf" if bad else "")


if __name__ == "__main__":
    sys.exit(main())
