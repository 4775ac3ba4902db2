"""``landscape-traj``'s job: the path of a training run's checkpoints in the plane of its PCA
directions (or of given ones), into a trajectory file."""

from __future__ import annotations

import os
from dataclasses import dataclass

from landscape.directions.pca import expand_checkpoints, pca_directions, project_onto
from landscape.errors import LandscapeError
from landscape.io.directions_file import load_directions
from landscape.io.files import owned_output
from landscape.io.trajectory_file import Trajectory, write_trajectory
from landscape.jobs.network import ModelSpec
from landscape.runtime.threads import choose_threads, using_threads
from landscape.space.params import live_tensors


@dataclass(frozen=True)
class TrajectoryConfig:
    """What ``landscape-traj`` computes: the path of the ``checkpoints`` (glob patterns or paths) of
    one training run around its final checkpoint ``model.path`` (a :class:`ModelSpec`: the
    architecture, and the classes and input channels when the final checkpoint does not record
    them), over ``dir_type`` tensors with those of ``ignore`` left out, written to ``out`` (never
    over an existing file unless ``overwrite``). ``directions``: a directions file (landscape-surf's,
    or the original tool's) whose first two directions the checkpoints are projected onto instead of
    PCA's. ``cache_bytes``: memory for checkpoint differences held at once; ``threads``: torch
    threads (None: the policy)."""

    checkpoints: str | tuple[str, ...]
    model: ModelSpec
    out: str
    dir_type: str = "weights"
    ignore: str = "biasbn"
    cache_bytes: int = 1 << 30
    overwrite: bool = False
    directions: str | None = None
    threads: int | None = None


def trajectory_of_run(cfg: TrajectoryConfig) -> Trajectory:
    """What ``landscape-traj`` does: the PCA path of ``cfg.checkpoints`` (or their projection onto
    ``cfg.directions``), written to ``cfg.out``; returns it."""
    if cfg.cache_bytes < 1:
        raise LandscapeError(f"the memory for checkpoint differences must be positive, got {cfg.cache_bytes}")
    cfg.model.need_arch()
    with owned_output(cfg.out, overwrite=cfg.overwrite) as (out,):
        return _trajectory(cfg, out)


def _trajectory(cfg: TrajectoryConfig, out: str) -> Trajectory:
    paths = expand_checkpoints(cfg.checkpoints)
    ckpt = cfg.model.read()
    model = cfg.model.build(ckpt)  # the architecture, at the final weights
    unsafe = cfg.model.unsafe_pickle
    with using_threads(choose_threads(cfg.threads)):
        if cfg.directions:
            dirs, attrs = load_directions(cfg.directions, names=list(live_tensors(model, cfg.dir_type)))
            made = attrs.get("dir_type")
            if made and made != cfg.dir_type:
                raise LandscapeError(f"{cfg.directions!r} was made with dir_type {made}; use that dir_type")
            traj = project_onto(paths, ckpt, model, dirs, cfg.dir_type, cfg.ignore, unsafe)
            traj.attrs["directions_file"] = os.path.abspath(cfg.directions)
        else:
            traj = pca_directions(paths, ckpt, model, cfg.dir_type, cfg.ignore, unsafe, cache_bytes=cfg.cache_bytes)
    traj.attrs["arch"] = cfg.model.arch
    write_trajectory(out, traj)
    return traj
