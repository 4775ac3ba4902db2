"""``landscape-traj``'s job: the path of a training run's checkpoints in the plane of its PCA
directions (or of given ones), into a trajectory file."""

from __future__ import annotations

import os
from collections.abc import Sequence

from landscape.directions.pca import expand_checkpoints, pca_directions, project_onto
from landscape.errors import LandscapeError
from landscape.io.checkpoint import read_checkpoint
from landscape.io.directions_file import load_directions
from landscape.io.files import owned_output
from landscape.io.trajectory_file import Trajectory, write_trajectory
from landscape.jobs.network import network
from landscape.runtime.threads import choose_threads, using_threads
from landscape.space.params import live_tensors


def trajectory_of_run(
    checkpoints: str | Sequence[str],
    final: str,
    arch: str,
    out: str | os.PathLike,
    num_classes: int | None = None,
    in_channels: int | None = None,
    dir_type: str = "weights",
    ignore: str = "biasbn",
    unsafe_pickle: bool = False,
    cache_bytes: int = 1 << 30,
    overwrite: bool = False,
    directions: str | None = None,
    threads: int | None = None,
) -> Trajectory:
    """What ``landscape-traj`` does: the PCA path of the checkpoints (glob patterns or paths) of one
    run of ``arch`` around ``final``, written to ``out`` (refused if it exists, unless
    ``overwrite``). The network's shape comes from the final checkpoint's metadata when not given.
    ``directions``: a directions file (landscape-surf's, or the original tool's) whose first two
    directions the checkpoints are projected onto instead of PCA's. ``threads``: torch threads
    (None: :mod:`landscape.runtime.threads`' policy, the idle cores)."""
    if cache_bytes < 1:
        raise LandscapeError(f"the memory for checkpoint differences must be positive, got {cache_bytes}")
    with owned_output(out, overwrite=overwrite) as (out,):
        return _trajectory(checkpoints, final, arch, out, num_classes, in_channels, dir_type, ignore, unsafe_pickle,
                           cache_bytes, threads, directions)


def _trajectory(checkpoints, final, arch, out, num_classes, in_channels, dir_type, ignore, unsafe_pickle,
                cache_bytes, threads, directions) -> Trajectory:
    paths = expand_checkpoints(checkpoints)
    ckpt = read_checkpoint(final, unsafe_pickle)
    model = network(ckpt, arch, num_classes, in_channels)  # the architecture, at the final weights
    with using_threads(choose_threads(threads)):
        if directions:
            dirs, attrs = load_directions(directions, names=list(live_tensors(model, dir_type)))
            made = attrs.get("dir_type")
            if made and made != dir_type:
                raise LandscapeError(f"{directions!r} was made with dir_type {made}; use that dir_type")
            traj = project_onto(paths, ckpt, model, dirs, dir_type, ignore, unsafe_pickle)
            traj.attrs["directions_file"] = os.path.abspath(directions)
        else:
            traj = pca_directions(paths, ckpt, model, dir_type, ignore, unsafe_pickle, cache_bytes=cache_bytes)
    traj.attrs["arch"] = arch
    write_trajectory(out, traj)
    return traj
