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

import argparse
import glob
import os
import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, add_model_options, add_run_options, input_file, output_file, positive, run_cli
from landscape.cli._declared import declared

PROG = "landscape-traj"


def checkpoints(text: str) -> str:
    """An argparse type: a checkpoint file, or a glob pattern that names at least one file."""
    if not any(os.path.isfile(f) for f in (glob.glob(text) if glob.has_magic(text) else [text])):
        raise argparse.ArgumentTypeError(f"no checkpoint file matches {text!r}")
    return text


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    p = Parser(
        prog=PROG,
        description="Find the first two principal directions of the path through the "
        "checkpoints of one run, centred on the final model, and project every checkpoint "
        "onto them.",
    )
    p.add_argument("--checkpoints", nargs="+", required=True, metavar="GLOB", type=checkpoints,
                   help="checkpoint files or quoted glob patterns (sorted by the numbers in "
                   "their names: model_2.pt before model_10.pt)")
    p.add_argument("--final", required=True, type=input_file,
                   help="the final model, origin of the directions (may be among --checkpoints)")
    add_model_options(p, arch_required=True, in_channels=True, group=p)
    d = declared("landscape.jobs.trajectory", "TrajectoryConfig")
    p.add_argument("--dir-type", choices=declared("landscape.space.params", "DIR_TYPES"), default=d.dir_type,
                   help="weights: trainable parameters (default); states: the whole state dict")
    p.add_argument("--ignore", choices=declared("landscape.space.params", "IGNORES"), default=d.ignore,
                   help="biasbn (default): leave 1-D tensors (biases, BatchNorm) out of the path")
    p.add_argument("--cache-mb", type=positive, default=1024,
                   help="memory for checkpoint differences held at once (default 1024)")
    p.add_argument("--directions", metavar="FILE", default=None, type=input_file,
                   help="project the checkpoints onto the first two directions of this directions file "
                   "(landscape-surf's, or the original tool's --dir_file) instead of computing PCA")
    p.add_argument("--out", required=True, type=output_file, help="output HDF5 file")
    add_run_options(p, device=None, group=p)
    return p


def config_from_args(ns: argparse.Namespace):
    """The :class:`landscape.jobs.trajectory.TrajectoryConfig` of parsed options: the one place
    where flags become the job's options."""
    # torch: imported once the arguments are checked (--help never imports it)
    from landscape.jobs.network import ModelSpec
    from landscape.jobs.trajectory import TrajectoryConfig

    return TrajectoryConfig(
        tuple(ns.checkpoints), ModelSpec(ns.arch, ns.final, ns.num_classes, ns.in_channels, ns.unsafe_pickle),
        ns.out, ns.dir_type, ns.ignore, ns.cache_mb << 20, ns.overwrite, ns.directions, ns.threads, ns.progress)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-traj``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(argv)
        cfg = config_from_args(ns)
        # torch: imported once the arguments are checked
        from landscape.jobs.surf import path_grid
        from landscape.jobs.trajectory import trajectory_of_run

        traj = trajectory_of_run(cfg)
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
