"""``landscape-traj``: PCA directions of a training run and its path projected on them.

    landscape-traj --checkpoints 'runs/r56/model_*.pt' --final runs/r56/model_300.pt \\
        --arch resnet56 --out r56_pca.h5
    landscape-surf --model runs/r56/model_300.pt --arch resnet56 --directions r56_pca.h5 ...
    landscape-traj --checkpoints 'runs/r56/model_*.pt' --final runs/r56/model_300.pt \
        --arch resnet56 --directions surface_directions.h5 --out r56_path.h5   # given directions, no PCA

The output is a directions file (``landscape-surf --directions`` reads it) that also holds the
projected path (``proj_xcoord``, ``proj_ycoord``) and the explained variance.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, positive, run_cli
from landscape.jobs.network import ModelSpec
from landscape.jobs.surf import path_grid
from landscape.jobs.trajectory import TrajectoryConfig, trajectory_of_run
from landscape.space.params import DIR_TYPES, IGNORES

PROG = "landscape-traj"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    p = Parser(
        prog=PROG,
        description="Find the first two principal directions of the path through the "
        "checkpoints of one run, centred on the final model, and project every checkpoint "
        "onto them.",
    )
    p.add_argument("--checkpoints", nargs="+", required=True, metavar="GLOB",
                   help="checkpoint files or quoted glob patterns (sorted by the numbers in "
                   "their names: model_2.pt before model_10.pt)")
    p.add_argument("--final", required=True,
                   help="the final model, origin of the directions (may be among --checkpoints)")
    p.add_argument("--arch", required=True, help="zoo name or package.module:callable")
    p.add_argument("--num-classes", type=positive, default=None,
                   help="default: from the final checkpoint's metadata, else 10")
    p.add_argument("--in-channels", type=positive, default=None,
                   help="default: from the final checkpoint's metadata, else 3")
    p.add_argument("--dir-type", choices=DIR_TYPES, default="weights",
                   help="weights: trainable parameters (default); states: the whole state dict")
    p.add_argument("--ignore", choices=IGNORES, default="biasbn",
                   help="biasbn (default): leave 1-D tensors (biases, BatchNorm) out of the path")
    p.add_argument("--unsafe-pickle", action="store_true",
                   help="allow checkpoints holding pickled Python objects (trusted files only)")
    p.add_argument("--cache-mb", type=positive, default=1024,
                   help="memory for checkpoint differences held at once (default 1024)")
    p.add_argument("--directions", metavar="FILE", default=None,
                   help="project the checkpoints onto the first two directions of this directions file "
                   "(landscape-surf's, or the original tool's --dir_file) instead of computing PCA")
    p.add_argument("--threads", type=positive, default=None,
                   help="torch threads (default: OMP_NUM_THREADS, else the idle cores)")
    p.add_argument("--out", required=True, help="output HDF5 file")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-traj``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(argv)
        traj = trajectory_of_run(TrajectoryConfig(
            tuple(ns.checkpoints), ModelSpec(ns.arch, ns.final, ns.num_classes, ns.in_channels, ns.unsafe_pickle),
            ns.out, ns.dir_type, ns.ignore, ns.cache_mb << 20, ns.overwrite, ns.directions, ns.threads))
        r = traj.explained_variance_ratio * 100
        if ns.directions:
            print(f"{PROG}: {len(traj.checkpoints)} checkpoints projected onto the directions of {ns.directions}; "
                  f"share of the path's variance along direction 1 {r[0]:.1f} %, direction 2 {r[1]:.1f} %; "
                  f"largest residual {traj.residual.max():.4g}")
        else:
            print(f"{PROG}: {len(traj.checkpoints)} checkpoints; explained variance: 1st PC {r[0]:.1f} %, "
                  f"2nd PC {r[1]:.1f} % ({r.sum():.1f} % together); largest residual "
                  f"{traj.residual.max():.4g}")
        grid = path_grid(ns.out)  # what landscape-surf --directions computes without --x/--y
        print(f"{PROG}: wrote {ns.out}; landscape-surf --directions {ns.out} computes the grid covering the "
              f"path: --x={grid.x} --y={grid.y}")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
