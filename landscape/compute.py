"""A surface from files: ``compute_surface(SurfaceConfig(model="ckpt.pt", arch="resnet20", ...))``.

What ``landscape-surf`` does, as a library call: checkpoint(s), dataset and directions files are
loaded into a model, data and directions, and :func:`landscape.engine.surface` does the rest. The
built-in demo (no checkpoint: a small net trained on scikit-learn's digits) and the grid that
covers an optimization path are decided here too. Every MPI rank runs this function.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from landscape.checkpoint import load_model, load_state_dict, read_checkpoint, sha256, summary
from landscape.data import SPLITS, Dataset, DataSpec
from landscape.directions import interpolation_direction, load_directions, random_directions
from landscape.engine import MAX_POINTS, directions_path, surface
from landscape.errors import LandscapeError
from landscape.parallel import on_root, world
from landscape.params import snapshot
from landscape.surface_file import Surface

DEMO_OUT = os.path.join("landscape_demo", "surface.h5")
DEMO_GRID = "-1:1:31"
PATH_GRID_POINTS = 31
QUANTITIES = ("loss", "eig")  # what --metrics may name: loss (and accuracy) per split; eig: Hessian


@dataclass
class SurfaceConfig(DataSpec):
    """Everything that defines a surface run from files (the fields of ``landscape-surf``'s options):
    the data (the fields of :class:`landscape.data.DataSpec`), the model and the grid.

    ``model=None`` is the built-in demo. ``xnorm``/``ynorm``/``znorm`` and ``xignore``/... override
    ``norm``/``ignore`` per axis. ``split`` may name several splits (``"train,test"``).
    """

    model: str | None = None
    arch: str | None = None
    out: str | None = None
    model2: str | None = None
    model3: str | None = None
    curve: str | None = None  # landscape-connect's curve file: the plane through a, b and the bend
    unsafe_pickle: bool = False
    x: str | None = None
    y: str | None = None
    z: str | None = None
    dir_type: str = "weights"
    norm: str = "filter"
    ignore: str = "biasbn"
    xnorm: str | None = None
    ynorm: str | None = None
    znorm: str | None = None
    xignore: str | None = None
    yignore: str | None = None
    zignore: str | None = None
    semantics: str = "landscape"
    same_dir: bool = False
    seed: int = 0
    directions: str | None = None
    metrics: tuple[str, ...] = ("loss",)
    eig_tol: float | None = None
    eig_convention: str = "mean"  # mean | batch_sum (the original tool's scale)
    eig_params: str = "all"  # all trainable parameters | original (the original tool's: tensors of dim > 1)
    overwrite: bool = False
    repair: bool = False
    loss: str = "crossentropy"
    batch_size: int | None = None
    device: str | None = "cpu"
    threads: int | None = None
    compile: bool = False
    precision: str = "fp32"
    bn_recompute: int = 0
    chunk_size: int = 1
    flush_seconds: float = 2.0
    max_points: int | None = MAX_POINTS
    command: str = ""
    plot: bool = False
    extra: dict = field(default_factory=dict)


def is_demo(cfg: SurfaceConfig) -> bool:
    return cfg.model is None


def resolve(cfg: SurfaceConfig, comm=None) -> SurfaceConfig:
    """Fill what the options leave open: the demo (rank 0 trains its network, the others wait),
    the default grid and output, and the grid covering an optimization path."""
    from dataclasses import replace

    comm = comm or world()
    if cfg.curve:
        from landscape.jobs.connect import plane_options

        cfg = replace(cfg, **plane_options(cfg))
    if is_demo(cfg):
        from landscape.demo import DEMO_ARCH, DEMO_DATASET, demo_checkpoint

        if cfg.model2 or cfg.model3 or (cfg.arch and cfg.arch != DEMO_ARCH):
            raise LandscapeError("a second model and an architecture need a checkpoint (without one: the demo)")
        path = on_root(comm, demo_checkpoint)
        cfg = replace(cfg, model=path, arch=DEMO_ARCH, dataset=DEMO_DATASET, x=cfg.x or DEMO_GRID,
                      y=cfg.y or DEMO_GRID, out=cfg.out or DEMO_OUT, plot=True)
        folder = os.path.dirname(cfg.out) or "."
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise LandscapeError(f"cannot create the folder {folder!r}: {exc.strerror or exc}") from None
    elif not cfg.arch:
        raise LandscapeError("an architecture is needed with a checkpoint (a zoo name or package.module:callable)")
    if cfg.directions and cfg.x is None and cfg.y is None:
        cfg = replace(cfg, **path_grid(cfg.directions))
    return replace(cfg, x=cfg.x or "-1:1:51", out=cfg.out if cfg.out is not None else "surface.h5")


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


def splits_of(cfg: SurfaceConfig) -> list[str]:
    splits = [s for s in cfg.split.replace(" ", "").split(",") if s]
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits or len(set(splits)) != len(splits):
        raise LandscapeError(f"split must be train, test or train,test; got {cfg.split!r}")
    return splits


def load_data(cfg: SurfaceConfig, split: str | None = None) -> tuple[Dataset, np.ndarray | None]:
    """One split of the evaluation data, cut to the fixed subset ``cfg.samples`` when given."""
    return DataSpec.of(cfg).load(split or splits_of(cfg)[0])


def build(cfg: SurfaceConfig, data: Dataset, path: str) -> torch.nn.Module:
    """``cfg.arch`` with the checkpoint at ``path`` loaded (widths of a pruned one included)."""
    in_channels = data.x.shape[1] if data.x.dim() == 4 else 1
    return load_model(cfg.arch, path, num_classes=cfg.num_classes or data.num_classes, in_channels=in_channels,
                      unsafe_pickle=cfg.unsafe_pickle)


def per_axis(cfg: SurfaceConfig) -> tuple[list[str], list[str]]:
    norms = [cfg.xnorm or cfg.norm, cfg.ynorm or cfg.norm, cfg.znorm or cfg.norm]
    ignores = [cfg.xignore or cfg.ignore, cfg.yignore or cfg.ignore, cfg.zignore or cfg.ignore]
    return norms, ignores


def make_directions(cfg: SurfaceConfig, model: torch.nn.Module, ndim: int) -> tuple[list[dict] | None, dict]:
    """The directions of the run when they are not plain random ones (None then: the engine draws
    them): from a file, towards ``model2`` (and ``model3``), or y = x; and provenance for them."""
    if cfg.curve:
        from landscape.jobs.connect import plane_of

        return plane_of(cfg.curve, ndim)
    origin = {k: v.detach().cpu() for k, v in snapshot(model, cfg.dir_type).items()}
    norms, ignores = per_axis(cfg)
    if cfg.directions:
        if cfg.model2 or cfg.model3 or cfg.same_dir:
            raise LandscapeError("directions from a file exclude a second model, a third and the same-direction "
                                 "option: those make the directions themselves")
        dirs, fattrs = load_directions(cfg.directions, names=list(origin))
        if len(dirs) < ndim:
            raise LandscapeError(f"{cfg.directions!r} holds {len(dirs)} direction(s); a {ndim}D surface needs {ndim}")
        made_for = str(fattrs.get("dir_type", cfg.dir_type))
        if made_for != cfg.dir_type:
            raise LandscapeError(f"{cfg.directions!r} was made with dir_type {made_for}; use that dir_type")
        final_sha = str(fattrs.get("model_sha256", ""))  # landscape-traj files name their final model
        if final_sha and final_sha != sha256(cfg.model):
            raise LandscapeError(f"{cfg.directions!r} is the trajectory of another final model "
                                 f"({fattrs.get('model', '?')}); give that checkpoint as the model")
        info = {"norm": "pca" if final_sha else str(fattrs.get("norm", "")), "ignore": str(fattrs.get("ignore", "")),
                "seed": fattrs.get("seed", ""), "directions_file": os.path.abspath(cfg.directions),
                "directions_from": "file"}
        return dirs[:ndim], info
    if cfg.model3 and not cfg.model2:
        raise LandscapeError("a third model needs a second one (the plane through three models)")
    if cfg.model3 and ndim != 2:
        raise LandscapeError("the plane through three models is 2D: give a y axis")
    if cfg.same_dir and ndim < 2:
        raise LandscapeError("the same direction for y as for x needs a y axis")
    dirs: list[dict] = []
    info: dict = {}
    if cfg.model2:
        dirs.append(interpolation_direction(origin, load_state_dict(cfg.model2, cfg.unsafe_pickle)))
        info["directions_from"] = "model2"
        if cfg.model3:
            dirs.append(interpolation_direction(origin, load_state_dict(cfg.model3, cfg.unsafe_pickle)))
            info["directions_from"] = "model2, model3"
    elif not cfg.same_dir:
        return None, {}
    while len(dirs) < ndim:  # the remaining axes: random (or, with same_dir, y = x)
        k = len(dirs)
        if cfg.same_dir and k == 1:
            dirs.append({n: t.clone() for n, t in dirs[0].items()})
            continue
        drawn = random_directions(origin, k + 1, norms[:k + 1], ignores[:k + 1], cfg.seed, cfg.semantics)
        dirs.append(drawn[k])
    if cfg.same_dir:
        info["directions_from"] = (info.get("directions_from", "random") + "; y = x")
    return dirs, info


def pruned_summary(cfg: SurfaceConfig, model: torch.nn.Module, data: Dataset) -> dict:
    """:func:`landscape.checkpoint.summary` of the checkpoint, with the network's FLOPs counted as
    the pruning paper does (shape arithmetic; comparisons show them where they differ)."""
    info = summary(cfg.model, cfg.unsafe_pickle)
    meta = read_checkpoint(cfg.model, cfg.unsafe_pickle)
    if isinstance(meta, dict) and meta.get("widths"):
        info.setdefault("pruned", "pruned")
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()) and data.x.dim() == 4:
        from landscape.prune import count

        try:
            info["flops"] = float(count(model, tuple(data.x.shape[1:]))[0])
        except Exception:  # noqa: BLE001 - a title detail: a network the counter cannot trace goes without
            pass
    return info


def metric_objects(cfg: SurfaceConfig) -> list:
    """The per-point metrics ``cfg.metrics`` names besides loss and accuracy."""
    unknown = [m for m in cfg.metrics if m not in QUANTITIES]
    if unknown:
        raise LandscapeError(f"unknown metric {unknown[0]!r}; choose from {', '.join(QUANTITIES)}")
    if "loss" not in cfg.metrics:
        raise LandscapeError("the metrics must include loss (and accuracy): the surface is the loss's")
    out = []
    if "eig" in cfg.metrics:
        from landscape.hessian import EigMetric

        options = {"tol": cfg.eig_tol} if cfg.eig_tol else {}
        out.append(EigMetric(convention=cfg.eig_convention, params=None if cfg.eig_params == "all" else cfg.eig_params,
                             **options))
    return out


def compute_surface(cfg: SurfaceConfig, comm=None, progress: bool = True) -> Surface:
    """Compute (or resume) the surface ``cfg`` describes and write it to ``cfg.out``.

    Collective under MPI: every rank calls it and gets the finished :class:`Surface`. A user error
    on any rank raises :class:`LandscapeError` on all of them.
    """
    comm = comm or world()
    cfg = resolve(cfg, comm)
    splits = splits_of(cfg)
    data, indices = {}, None
    for s in splits:
        data[s], idx = load_data(cfg, s)
        indices = idx if indices is None else indices
    first = data[splits[0]]
    model = build(cfg, first, cfg.model)
    ndim = 1 + (cfg.y is not None) + (cfg.z is not None)
    dirs, dir_info = make_directions(cfg, model, ndim)
    norms, ignores = per_axis(cfg)
    bn_data = None
    if cfg.bn_recompute:
        bn_data = load_data(cfg, "train")[0] if "train" not in data else data["train"]
    provenance = {
        "command": cfg.command or "compute_surface", "model": os.path.abspath(cfg.model),
        "model_sha256": sha256(cfg.model), "arch": cfg.arch,
        "model2": os.path.abspath(cfg.model2) if cfg.model2 else "",
        "model2_sha256": sha256(cfg.model2) if cfg.model2 else "",
        "model3": os.path.abspath(cfg.model3) if cfg.model3 else "",
        "model3_sha256": sha256(cfg.model3) if cfg.model3 else "",
        **DataSpec.of(cfg).provenance(), "same_dir": cfg.same_dir,
        **{f"checkpoint_{k}": v for k, v in pruned_summary(cfg, model, first).items()},
        **dir_info, **cfg.extra,
    }
    result = surface(
        model, data, x=cfg.x, y=cfg.y, z=cfg.z, loss_fn=cfg.loss, directions=dirs, dir_type=cfg.dir_type,
        norm=norms[:ndim], ignore=ignores[:ndim], seed=cfg.seed, semantics=cfg.semantics,
        metrics=metric_objects(cfg), out=cfg.out, overwrite=cfg.overwrite, repair=cfg.repair,
        batch_size=cfg.batch_size, device=cfg.device, precision=cfg.precision, compile=cfg.compile,
        threads=cfg.threads, bn_recompute=cfg.bn_recompute, bn_data=bn_data, comm=comm,
        chunk_size=cfg.chunk_size, flush_seconds=cfg.flush_seconds, max_points=cfg.max_points,
        progress=progress, provenance=provenance,
        directions_out="" if cfg.directions else None,
        extras={"sample_indices": indices} if indices is not None else None,
    )
    return result




def run(cfg: SurfaceConfig, comm=None, progress: bool = True) -> tuple[Surface, list[str]]:
    """:func:`compute_surface`, then (rank 0, when ``cfg.plot`` or for the demo) the standard
    figures beside the file; returns the surface and the figure paths."""
    comm = comm or world()
    cfg = resolve(cfg, comm)
    result = compute_surface(cfg, comm, progress)
    paths: list[str] = []
    if cfg.plot and comm.rank == 0 and result.ndim < 3:
        from landscape.plot.render import render

        paths = render(result, os.path.splitext(cfg.out)[0])
    return result, paths


__all__ = ["SurfaceConfig", "compute_surface", "directions_path", "load_data", "make_directions", "resolve", "run"]
