"""Computing a loss surface end to end: ``compute_surface(SurfaceConfig(...))``.

checkpoint + dataset -> directions -> grid -> evaluator (serial kernel) -> parallel.map_points
-> surface file. Every MPI rank runs this function; rank 0 alone touches the output files.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import time
from dataclasses import dataclass, field

import h5py
import numpy as np
import torch

from landscape import __version__
from landscape.checkpoint import load_into_, load_state_dict, sha256
from landscape.data import Dataset, load_dataset
from landscape.directions import (
    interpolation_direction,
    load_directions,
    random_directions,
    save_directions,
)
from landscape.errors import LandscapeError
from landscape.evaluate import Evaluator, resolve_device
from landscape.files import remove_stale_temporaries
from landscape.grid import Grid, parse_axis
from landscape.models import build_model
from landscape.parallel import abort_on_error, first_error, local_rank_and_size, map_points, world
from landscape.params import Mover, snapshot
from landscape.surface import (
    Surface,
    config_mismatch,
    new_surface,
    read_surface,
    write_surface,
)

PROG = "landscape-surf"  # how error messages from the ranks start


@dataclass
class SurfaceConfig:
    """Everything that defines a surface run (the fields of ``landscape-surf``'s options)."""

    model: str
    arch: str
    out: str = "surface.h5"
    model2: str | None = None
    unsafe_pickle: bool = False
    dataset: str = "digits"
    data_root: str | None = None
    split: str = "train"
    samples: int | None = None
    sample_seed: int = 0
    synthetic_shape: tuple[int, ...] = (3, 32, 32)
    synthetic_size: int = 2048
    synthetic_seed: int = 0  # landscape-train's --seed, for a network trained on synthetic data
    raw_data: bool = False  # no per-channel normalization (for networks trained with --raw-data)
    num_classes: int | None = None
    x: str = "-1:1:51"
    y: str | None = None
    dir_type: str = "weights"
    norm: str = "filter"
    ignore: str = "biasbn"
    seed: int = 0
    directions: str | None = None
    overwrite: bool = False
    loss: str = "crossentropy"
    batch_size: int | None = None
    device: str | None = "cpu"
    threads: int | None = None
    compile: bool = False
    precision: str = "fp32"
    chunk_size: int = 1
    flush_seconds: float = 2.0
    command: str = field(default_factory=lambda: " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]))


def directions_path(out: str) -> str:
    """Where a surface's own directions go: ``surface.h5`` -> ``surface.dirs.h5``."""
    root, ext = os.path.splitext(out)
    return f"{root}.dirs{ext or '.h5'}"


def directions_checksum(directions: list[dict[str, torch.Tensor]]) -> str:
    """SHA-256 of the directions' names and float32 bytes: equal on every rank or not at all."""
    h = hashlib.sha256()
    for d in directions:
        for name, t in d.items():
            h.update(name.encode())
            h.update(t.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def load_data(cfg: SurfaceConfig) -> tuple[Dataset, np.ndarray | None]:
    """The evaluation split, cut to the fixed subset ``cfg.samples`` when given."""
    data = load_dataset(
        cfg.dataset, root=cfg.data_root, split=cfg.split, shape=cfg.synthetic_shape,
        num_classes=cfg.num_classes or 10, size=cfg.synthetic_size, seed=cfg.synthetic_seed,
        raw=cfg.raw_data,
    )
    if cfg.samples is None:
        return data, None
    return data.subset(cfg.samples, cfg.sample_seed)


def load_model(cfg: SurfaceConfig, data: Dataset, path: str) -> torch.nn.Module:
    """Build ``cfg.arch`` for ``data`` and load the checkpoint at ``path`` into it."""
    in_channels = data.x.shape[1] if data.x.dim() == 4 else 1
    model = build_model(cfg.arch, num_classes=cfg.num_classes or data.num_classes, in_channels=in_channels)
    return load_into_(model, load_state_dict(path, cfg.unsafe_pickle), source=f"checkpoint {path!r}")


def make_directions(cfg: SurfaceConfig, origin: dict, ndim: int) -> tuple[list[dict], dict]:
    """The ``ndim`` directions of the run: from a file, interpolation to ``model2``, or random;
    and, for a file, the provenance it carries (``norm``, ``ignore``, ``seed``) for the surface."""
    if not cfg.directions:
        if cfg.model2:
            dirs = [interpolation_direction(origin, load_state_dict(cfg.model2, cfg.unsafe_pickle))]
            if ndim == 2:
                dirs += random_directions(origin, 1, cfg.norm, cfg.ignore, cfg.seed)
            return dirs, {}
        return random_directions(origin, ndim, cfg.norm, cfg.ignore, cfg.seed), {}
    if cfg.model2:
        raise LandscapeError("--model2 and --directions exclude each other: the interpolation "
                             "direction is model2 - model")
    dirs, fattrs = load_directions(cfg.directions, names=list(origin))
    if len(dirs) < ndim:
        raise LandscapeError(f"{cfg.directions!r} holds {len(dirs)} direction(s); a {ndim}D surface needs {ndim}")
    made_for = str(fattrs.get("dir_type", cfg.dir_type))
    if made_for != cfg.dir_type:
        raise LandscapeError(f"{cfg.directions!r} was made with --dir-type {made_for}; "
                             f"pass --dir-type {made_for}")
    final_sha = str(fattrs.get("model_sha256", ""))  # landscape-traj files name their final model
    if final_sha and final_sha != sha256(cfg.model):
        raise LandscapeError(f"{cfg.directions!r} is the trajectory of another final model "
                             f"({fattrs.get('model', '?')}); give that checkpoint as --model")
    norm = "pca" if final_sha else fattrs.get("norm", "")
    info = {"norm": norm, "ignore": fattrs.get("ignore", ""), "seed": fattrs.get("seed", "")}
    return dirs[:ndim], {k: (v.decode() if isinstance(v, bytes) else v) for k, v in info.items()}


def provenance(cfg: SurfaceConfig, dirs_sha: str, n_samples: int, comm, batch_size: int) -> dict:
    """The attributes a surface file carries: configuration (checked on resume) and context."""
    return {
        "landscape_version": __version__, "torch_version": torch.__version__,
        "numpy_version": np.__version__, "h5py_version": h5py.__version__,
        "python_version": platform.python_version(), "hostname": platform.node(),
        "command": cfg.command, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "model": os.path.abspath(cfg.model), "model_sha256": sha256(cfg.model),
        "model2": os.path.abspath(cfg.model2) if cfg.model2 else "",
        "model2_sha256": sha256(cfg.model2) if cfg.model2 else "",
        "arch": cfg.arch, "dataset": cfg.dataset, "data_root": cfg.data_root or "",
        "raw_data": cfg.raw_data, "num_classes": cfg.num_classes or "",
        "synthetic": f"{cfg.synthetic_shape} x {cfg.synthetic_size}, seed {cfg.synthetic_seed}"
        if cfg.dataset == "synthetic" else "",
        "split": cfg.split, "samples": n_samples, "sample_seed": cfg.sample_seed if cfg.samples else "",
        "loss": cfg.loss, "dir_type": cfg.dir_type, "norm": cfg.norm, "ignore": cfg.ignore,
        "seed": cfg.seed if not cfg.directions else "",
        "directions_file": os.path.abspath(cfg.directions or directions_path(cfg.out)),
        "directions_sha256": dirs_sha, "precision": cfg.precision, "compile": cfg.compile,
        "device": str(cfg.device), "batch_size": batch_size, "mpi_ranks": comm.size,
    }


def _open_output(cfg: SurfaceConfig, grid: Grid, attrs: dict, dirs: list, extras: dict) -> Surface:
    """Rank 0: resume the existing file when it matches, else start a new one (never clobber)."""
    out_dir = os.path.dirname(os.path.abspath(cfg.out))
    if not os.path.isdir(out_dir):
        raise LandscapeError(f"output folder {out_dir!r} does not exist")
    if not os.access(out_dir, os.W_OK):
        raise LandscapeError(f"output folder {out_dir!r} is not writable")
    remove_stale_temporaries(cfg.out)
    if os.path.exists(cfg.out) and not cfg.overwrite:
        try:
            old = read_surface(cfg.out)
        except LandscapeError as exc:
            raise LandscapeError(f"{exc}; refusing to replace it without --overwrite") from None
        reason = config_mismatch(old, attrs)
        if reason is None and old.shape != grid.shape:
            reason = f"the grid is {old.shape} in the file but {grid.shape} now"
        if reason:
            raise LandscapeError(
                f"{cfg.out!r} holds a surface of another configuration ({reason}); "
                "use --overwrite to replace it or --out for a new file"
            )
        old.attrs.update({k: attrs[k] for k in ("command", "batch_size", "mpi_ranks", "device", "hostname")})
        old.attrs["resumed"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        surface = old
    else:
        surface = new_surface(grid, cfg.split, attrs)
        surface.extras.update(extras)
    if not cfg.directions:
        dpath = directions_path(cfg.out)
        same = os.path.exists(dpath) and _same_directions(dpath, attrs["directions_sha256"])
        if os.path.exists(dpath) and not same and not cfg.overwrite:
            raise LandscapeError(f"{dpath!r} holds other directions (other surfaces may use them); "
                                 "use --overwrite to replace them or --out for a new name")
        if not same:
            save_directions(dpath, dirs, {k: attrs[k] for k in ("dir_type", "norm", "ignore", "seed", "arch")})
    write_surface(cfg.out, surface)
    return surface


def _same_directions(path: str, checksum: str) -> bool:
    try:
        dirs, _ = load_directions(path)
    except LandscapeError:
        return False
    return directions_checksum(dirs) == checksum


def compute_surface(cfg: SurfaceConfig, comm=None, progress: bool = True) -> Surface | None:
    """Compute (or resume) the surface ``cfg`` describes and write it to ``cfg.out``.

    Collective under MPI: every rank calls it; rank 0 returns the finished :class:`Surface`,
    the others None. A user error on any rank raises :class:`LandscapeError` on all of them.
    """
    comm = comm or world()
    local_rank, local_size = local_rank_and_size(comm)
    threads = cfg.threads or max(1, (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                                     else os.cpu_count() or 1) // local_size)
    torch.set_num_threads(threads)

    error = None
    with abort_on_error(comm, PROG):  # an unexpected error on one rank must not hang the others
        try:
            grid = Grid(parse_axis(cfg.x), parse_axis(cfg.y) if cfg.y else None)
            device = resolve_device(cfg.device)
            if device.type == "cuda":
                if device.index is None:  # each rank takes the GPU of its node-local rank
                    device = torch.device("cuda", local_rank % torch.cuda.device_count())
                torch.cuda.set_device(device)
            data, sample_idx = load_data(cfg)
            model = load_model(cfg, data, cfg.model)
            origin = snapshot(model, cfg.dir_type)
            dirs, dir_attrs = make_directions(cfg, origin, len(grid.shape))
            dirs_sha = directions_checksum(dirs)
            evaluator = Evaluator(model, data, cfg.loss, cfg.batch_size, device, cfg.precision, cfg.compile)
            mover = Mover(model, origin, dirs, cfg.dir_type)
        except LandscapeError as exc:
            error = str(exc)
    error = first_error(comm, error)
    if error:
        raise LandscapeError(error)
    if len(set(comm.allgather(dirs_sha))) != 1:
        raise LandscapeError("ranks disagree on the directions (different torch versions across nodes?)")
    if comm.size > 1 and cfg.batch_size is None:
        # One batch size everywhere (rank 0's pick), so no value depends on the rank computing it.
        batch_size = comm.bcast(evaluator.batch_size, root=0)
        if batch_size != evaluator.batch_size:
            with abort_on_error(comm, PROG):
                evaluator = Evaluator(model, data, cfg.loss, batch_size, device, cfg.precision, cfg.compile)

    surface, error = None, None
    if comm.rank == 0:
        with abort_on_error(comm, PROG):
            try:
                attrs = provenance(cfg, dirs_sha, len(data), comm, evaluator.batch_size)
                attrs.update(dir_attrs)
                attrs["threads_per_rank"] = threads
                extras = {} if sample_idx is None else {"sample_indices": sample_idx}
                surface = _open_output(cfg, grid, attrs, dirs, extras)
            except LandscapeError as exc:
                error = str(exc)
    error = comm.bcast(error, root=0)
    if error:
        raise LandscapeError(error)

    keys = (f"{cfg.split}_loss", f"{cfg.split}_acc")

    def job(k: int) -> dict:
        mover.move_(grid.point(k))
        return dict(zip(keys, evaluator(), strict=True))

    pending = surface.pending() if surface is not None else np.empty(0, dtype=int)
    bar = None
    if comm.rank == 0 and progress and len(pending):
        from tqdm import tqdm

        bar = tqdm(total=surface.completed.size, initial=surface.completed.size - len(pending),
                   desc="surface", unit="pt", file=sys.stderr, dynamic_ncols=True)
    last_write = time.monotonic()

    def on_result(k: int, values: dict) -> None:
        nonlocal last_write
        surface.record(k, values)
        if bar is not None:
            bar.update(1)
        if time.monotonic() - last_write >= cfg.flush_seconds:
            write_surface(cfg.out, surface)
            last_write = time.monotonic()

    def save() -> None:
        if surface is not None:
            write_surface(cfg.out, surface)

    try:
        map_points(job, pending, on_result, comm, cfg.chunk_size, on_abort=save, prog=PROG)
    except BaseException:
        if comm.size == 1:
            save()  # keep every finished point of an interrupted serial run
        raise
    finally:
        if bar is not None:
            bar.close()
        mover.restore_()
    if comm.rank != 0:
        return None
    surface.attrs["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_surface(cfg.out, surface)
    return surface


__all__ = ["SurfaceConfig", "compute_surface", "directions_path"]
