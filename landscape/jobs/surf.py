"""``landscape-surf``'s job: ``surf(SurfConfig(model="ckpt.pt", arch="resnet20", ...))``.

What ``landscape-surf`` does, as a call: :func:`resolve` fills what the options leave open and
reads every input once (the checkpoints, a curve and its plane) into a :class:`ResolvedSurf`;
:func:`compute` loads the data, builds the network (:mod:`landscape.jobs.network`), makes the
directions from the files and hands the rest to :func:`landscape.surface`; :func:`surf` does
both and draws the figures. The built-in demo (no checkpoint: a small net trained on
scikit-learn's digits) and the grid that covers an optimization path are decided here too. Every
MPI rank runs these functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import torch

from landscape import connect
from landscape.data.datasets import SPLITS, Dataset, DataSpec
from landscape.directions.options import Directions
from landscape.directions.sampling import interpolation_direction, per_axis, random_directions
from landscape.engine.options import Output
from landscape.engine.surface import surface
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.hessian import EigMetric
from landscape.io.checkpoint import Checkpoint, read_checkpoint
from landscape.io.directions_file import load_directions
from landscape.io.h5 import opened
from landscape.io.surface_file import Surface
from landscape.io.trajectory_file import path_extent, read_trajectory
from landscape.jobs.connect import plane_of, plane_options, read_curve
from landscape.jobs.demo import DEMO_ARCH, DEMO_DATASET, demo_checkpoint
from landscape.jobs.network import check_weights, network
from landscape.models.hf import default_weights
from landscape.prune import count
from landscape.runtime.parallel import local_rank_and_size, on_root, world
from landscape.runtime.threads import choose_threads
from landscape.space.grid import Grid
from landscape.space.params import live_tensors, snapshot

DEMO_OUT = os.path.join("landscape_demo", "surface.h5")
DEMO_GRID = "-1:1:31"
DEFAULT_GRID = "-1:1:51"
DEFAULT_OUT = "surface.h5"
PATH_GRID_POINTS = 31
STREAM_ABOVE = 256 << 20  # bytes of one direction: larger ones from a file are streamed, smaller ones held
QUANTITIES = ("loss", "eig")  # what --metrics may name: loss (and accuracy) per split; eig: Hessian


@dataclass(frozen=True)
class SurfConfig:
    """Everything that defines a ``landscape-surf`` run: the checkpoint(s), the data (a
    :class:`landscape.data.datasets.DataSpec`), and the option objects of :func:`landscape.surface`.

    ``model=None`` is the built-in demo. ``grid=None``: the demo's, the one covering the path of a
    landscape-traj ``directions_file``, else ``-1:1:51``. ``directions``: the random directions'
    settings (``norm``/``ignore`` one for all axes or one per axis x, y, z); ``directions_file``,
    ``model2`` (and ``model3``), ``same_dir`` or ``curve`` (a landscape-connect curve file: the plane
    through its ends and its bend) make the directions from files instead. ``adaptive``: the
    grid's adaptive tolerance (:class:`landscape.space.grid.Grid`), whichever grid applies.
    ``output.path=None``: ``surface.h5`` (the demo's ``landscape_demo/surface.h5``). ``data.split``
    may name several splits (``"train,test"``). ``metrics``: names from ``QUANTITIES``; ``eig_*``
    set up the Hessian metric. ``evaluation.threads=None``: the thread policy, decided once by
    :func:`resolve`. ``plot``: draw the standard figures beside the file.
    """

    model: str | None = None
    arch: str | None = None
    model2: str | None = None
    model3: str | None = None
    curve: str | None = None
    unsafe_pickle: bool = False
    data: DataSpec = field(default_factory=DataSpec)
    grid: Grid | None = None
    adaptive: float | None = None
    directions: Directions = field(default_factory=Directions)
    directions_file: str | None = None
    same_dir: bool = False
    metrics: tuple[str, ...] = ("loss",)
    eig_tol: float | None = None
    eig_convention: str = "mean"  # mean | batch_sum (the original tool's scale)
    eig_params: str = "all"  # all trainable parameters | original (the original tool's: tensors of dim > 1)
    evaluation: EvalOptions = field(default_factory=lambda: EvalOptions(loss_fn="crossentropy", device="cpu"))
    output: Output = field(default_factory=Output)
    plot: bool = False

    def __post_init__(self):
        for name, kind in (("data", DataSpec), ("directions", Directions), ("evaluation", EvalOptions),
                           ("output", Output)):
            if not isinstance(getattr(self, name), kind):
                raise LandscapeError(f"`{name}` must be a landscape.{kind.__name__}, got "
                                     f"{type(getattr(self, name)).__name__}")
        if self.grid is not None and not isinstance(self.grid, Grid):
            object.__setattr__(self, "grid", Grid(self.grid))
        if self.directions.tensors is not None:
            raise LandscapeError("`directions` of a SurfConfig are made from files (`directions_file`, "
                                 "`model2`); give tensors to landscape.surface")


@dataclass(frozen=True)
class ResolvedSurf:
    """A :class:`SurfConfig` resolved by :func:`resolve`, the only maker of this type: ``config``
    with every open option filled (the model, its architecture, the data, the grid, the output
    file, the thread count), ``checkpoints`` read once by option name (``model``, ``model2``,
    ``model3``; a curve file is the ``model``), and a curve's ``plane`` (its two directions and the
    bend's coordinates, computed once). Resolving it again is refused: it is resolved."""

    config: SurfConfig
    checkpoints: Mapping[str, Checkpoint]
    plane: tuple[list[dict], tuple[float, float]] | None = None


@dataclass(frozen=True)
class SurfResult:
    """What :func:`surf` made: the surface (its file is ``surface.path``) and the figures drawn."""

    surface: Surface
    figures: tuple[str, ...] = ()


def is_demo(cfg: SurfConfig) -> bool:
    return cfg.model is None


def resolve(cfg: SurfConfig, comm=None) -> ResolvedSurf:
    """Fill what the options leave open, once: the thread count (the policy, when not given), the
    demo (rank 0 trains its network, the others wait), a curve's plane, the default grid and
    output, and the grid covering an optimization path; and read every checkpoint once."""
    if not isinstance(cfg, SurfConfig):
        raise LandscapeError(f"resolve takes a SurfConfig, got {type(cfg).__name__}"
                             + (" (resolved already)" if isinstance(cfg, ResolvedSurf) else ""))
    comm = comm or world()
    if cfg.evaluation.threads is None:  # the thread policy, applied once, here at the edge
        cfg = replace(cfg, evaluation=replace(cfg.evaluation,
                                              threads=choose_threads(None, local_rank_and_size(comm)[1])))
    if cfg.model is None and (cfg.arch or "").startswith("hf:"):
        cfg = replace(cfg, model=default_weights(cfg.arch[3:]))  # a Hugging Face folder's own weights
    checkpoints: dict[str, Checkpoint] = {}
    plane = None
    if cfg.curve:
        if (cfg.model and cfg.model != cfg.curve) or cfg.model2 or cfg.model3 or cfg.directions_file or cfg.same_dir:
            raise LandscapeError("the plane of a curve is set by the curve: give no --model, --model2, --model3, "
                                 "--directions or --same-dir with --curve")
        checkpoints["model"] = read_checkpoint(cfg.curve, cfg.unsafe_pickle)  # the curve file, read once
        curve = read_curve(cfg.curve, checkpoint=checkpoints["model"])
        plane = connect.plane_directions(curve)  # its plane, computed once
        cfg = replace(cfg, **plane_options(cfg, curve, plane[1]))
    if is_demo(cfg):
        if cfg.model2 or cfg.model3 or (cfg.arch and cfg.arch != DEMO_ARCH):
            raise LandscapeError("a second model and an architecture need a checkpoint (without one: the demo)")
        path = on_root(comm, lambda: demo_checkpoint(threads=cfg.evaluation.threads))
        cfg = replace(cfg, model=path, arch=DEMO_ARCH, data=replace(cfg.data, dataset=DEMO_DATASET),
                      grid=cfg.grid or Grid(DEMO_GRID, DEMO_GRID),
                      output=replace(cfg.output, path=cfg.output.path or DEMO_OUT), plot=True)
        folder = os.path.dirname(cfg.output.path) or "."
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as exc:
            raise LandscapeError(f"cannot create the folder {folder!r}: {exc.strerror or exc}") from None
    elif not cfg.arch:
        raise LandscapeError("an architecture is needed with a checkpoint (a zoo name or package.module:callable)")
    if cfg.grid is None and cfg.directions_file:
        cfg = replace(cfg, grid=path_grid(cfg.directions_file))
    grid = cfg.grid or Grid(DEFAULT_GRID)
    if cfg.adaptive is not None and grid.adaptive != cfg.adaptive:
        grid = replace(grid, adaptive=cfg.adaptive)
    cfg = replace(cfg, grid=grid,
                  output=cfg.output if cfg.output.path is not None else replace(cfg.output, path=DEFAULT_OUT))
    splits_of(cfg)  # a bad split is refused before any checkpoint is read
    for name, path in (("model", cfg.model), ("model2", cfg.model2), ("model3", cfg.model3)):
        if path and name not in checkpoints:
            checkpoints[name] = read_checkpoint(path, cfg.unsafe_pickle)  # each file read once
    return ResolvedSurf(cfg, checkpoints, plane)


def path_grid(directions: str, num: int = PATH_GRID_POINTS) -> Grid | None:
    """For a landscape-traj file: the grid covering the optimization path with a margin; for a
    plain directions file, None (the usual default applies)."""
    try:
        with opened(directions, "directions file", lambda f: True) as (f, _):
            if "proj_xcoord" not in f:
                return None
    except LandscapeError:
        return None  # not readable: the directions loader reports it
    x0, x1, y0, y1 = path_extent(read_trajectory(directions, directions=False))  # the path alone
    return Grid(f"{x0:.4g}:{x1:.4g}:{num}", f"{y0:.4g}:{y1:.4g}:{num}")


def splits_of(cfg: SurfConfig) -> list[str]:
    """The splits ``cfg.data.split`` names (``"train"``, ``"test"`` or ``"train,test"``)."""
    text = cfg.data.split
    splits = [s for s in text.replace(" ", "").split(",") if s]
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits or len(set(splits)) != len(splits):
        raise LandscapeError(f"split must be train, test or train,test; got {text!r}")
    return splits


def make_directions(run: ResolvedSurf, model: torch.nn.Module, ndim: int) -> tuple[list[dict] | None, dict]:
    """The directions of the run when they are not plain random ones (None then: the engine draws
    them): from a file, towards ``model2`` (and ``model3``), or y = x, or the plane of a curve; and
    provenance for them, from the run's checkpoints and plane (read once by :func:`resolve`)."""
    cfg, ckpts = run.config, run.checkpoints
    if run.plane is not None:
        return plane_of(*run.plane, ndim)
    d = cfg.directions
    # the model's own tensors (no copy): read here, before anything moves the model
    origin = {k: v.detach().cpu() for k, v in live_tensors(model, d.dir_type).items()}
    norms, ignores = per_axis(d.norm, ndim, "norm"), per_axis(d.ignore, ndim, "ignore")
    if cfg.directions_file:
        if cfg.model2 or cfg.model3 or cfg.same_dir:
            raise LandscapeError("directions from a file exclude a second model, a third and the same-direction "
                                 "option: those make the directions themselves")
        # a large model's directions are read tensor by tensor at every point (its memory bound); a small
        # model's are held: reading them costs more than its point (ResNet-20: 330 ms a move against 0.3 ms)
        big = sum(v.numel() for v in origin.values()) * 4 > STREAM_ABOVE
        dirs, fattrs = load_directions(cfg.directions_file, names=list(origin), stream=big and not d.hold)
        if len(dirs) < ndim:
            raise LandscapeError(f"{cfg.directions_file!r} holds {len(dirs)} direction(s); a {ndim}D surface "
                                 f"needs {ndim}")
        made_for = str(fattrs.get("dir_type", d.dir_type))
        if made_for != d.dir_type:
            raise LandscapeError(f"{cfg.directions_file!r} was made with dir_type {made_for}; use that dir_type")
        final_sha = str(fattrs.get("model_sha256", ""))  # landscape-traj files name their final model
        if final_sha and final_sha != ckpts["model"].sha256:
            raise LandscapeError(f"{cfg.directions_file!r} is the trajectory of another final model "
                                 f"({fattrs.get('model', '?')}); give that checkpoint as the model")
        info = {"norm": "pca" if final_sha else str(fattrs.get("norm", "")), "ignore": str(fattrs.get("ignore", "")),
                "seed": fattrs.get("seed", ""), "directions_file": os.path.abspath(cfg.directions_file),
                "directions_from": "file"}
        return dirs[:ndim], info
    if cfg.model3 and not cfg.model2:
        raise LandscapeError("a third model needs a second one (the plane through three models)")
    if cfg.model3 and ndim != 2:
        raise LandscapeError("the plane through three models is 2D: give a y axis")
    if cfg.same_dir and ndim < 2:
        raise LandscapeError("the same direction for y as for x needs a y axis")
    dirs: list = []
    info: dict = {}
    if cfg.model2:
        # target - origin tensor by tensor (no whole difference held); the origin is the checkpoint's
        # own tensors where they are the model's to the bit (same dtype), else the model's snapshot
        held = ckpts["model"].state_dict
        same = all(k in held and held[k].dtype == v.dtype and held[k].shape == v.shape for k, v in origin.items())
        base = {k: held[k] for k in origin} if same else {k: v.cpu() for k, v in snapshot(model, d.dir_type).items()}
        dirs.append(interpolation_direction(base, ckpts["model2"].state_dict, lazy=True))
        info["directions_from"] = "model2"
        if cfg.model3:
            dirs.append(interpolation_direction(base, ckpts["model3"].state_dict, lazy=True))
            info["directions_from"] = "model2, model3"
    elif not cfg.same_dir:
        return None, {}
    while len(dirs) < ndim:  # the remaining axes: random (or, with same_dir, y = x)
        k = len(dirs)
        if cfg.same_dir and k == 1:
            dirs.append(dirs[0])  # the same object: read, never written
            continue
        drawn = random_directions(origin, k + 1, norms[:k + 1], ignores[:k + 1], d.seed, d.semantics,
                                  lazy=not d.hold)
        dirs.append(drawn[k])
    if cfg.same_dir:
        info["directions_from"] = (info.get("directions_from", "random") + "; y = x")
    return dirs, info


def pruned_summary(ckpt: Checkpoint, model: torch.nn.Module, data: Dataset) -> dict:
    """What the checkpoint records (:meth:`landscape.io.checkpoint.Checkpoint.summary`), with the
    network's FLOPs counted as the pruning paper does (shape arithmetic; comparisons show them
    where they differ)."""
    info = ckpt.summary()
    if ckpt.meta.get("widths"):
        info.setdefault("pruned", "pruned")
    if any(isinstance(m, torch.nn.Conv2d) for m in model.modules()) and data.x.dim() == 4:
        try:
            info["flops"] = float(count(model, tuple(data.x.shape[1:]))[0])
        except Exception:  # noqa: BLE001 - a title detail: a network the counter cannot trace goes without
            pass
    return info


def metric_objects(cfg: SurfConfig) -> list:
    """The per-point metrics ``cfg.metrics`` names besides loss and accuracy."""
    unknown = [m for m in cfg.metrics if m not in QUANTITIES]
    if unknown:
        raise LandscapeError(f"unknown metric {unknown[0]!r}; choose from {', '.join(QUANTITIES)}")
    if "loss" not in cfg.metrics:
        raise LandscapeError("the metrics must include loss (and accuracy): the surface is the loss's")
    out = []
    if "eig" in cfg.metrics:
        options = {"tol": cfg.eig_tol} if cfg.eig_tol else {}
        out.append(EigMetric(convention=cfg.eig_convention, params=None if cfg.eig_params == "all" else cfg.eig_params,
                             **options))
    return out


def compute(run: ResolvedSurf, comm=None) -> Surface:
    """Compute (or resume) the surface of a resolved run and write it to its ``output.path``.

    Collective under MPI: every rank calls it and gets the finished :class:`Surface`. A user error
    on any rank raises :class:`LandscapeError` on all of them.
    """
    if not isinstance(run, ResolvedSurf):
        raise LandscapeError(f"compute takes the ResolvedSurf of resolve(), got {type(run).__name__}")
    comm = comm or world()
    cfg, ckpts = run.config, run.checkpoints
    splits = splits_of(cfg)
    data, indices = {}, None
    for s in splits:
        data[s], idx = cfg.data.load(s)
        indices = idx if indices is None else indices
    first = data[splits[0]]
    model = network(ckpts["model"], cfg.arch, cfg.data.num_classes, data=first)
    for other in ("model2", "model3"):  # the ends of an interpolation: NaN there is NaN along the way
        if other in ckpts:
            check_weights(ckpts[other], model)
    ndim = cfg.grid.ndim
    dirs, dir_info = make_directions(run, model, ndim)
    norms, ignores = per_axis(cfg.directions.norm, ndim, "norm"), per_axis(cfg.directions.ignore, ndim, "ignore")
    evaluation = cfg.evaluation
    if evaluation.bn_recompute and evaluation.bn_data is None:
        evaluation = replace(evaluation, bn_data=cfg.data.load("train")[0] if "train" not in data else data["train"])
    given = dict(cfg.output.provenance or {})
    provenance = {
        "command": given.pop("command", "") or "landscape.jobs.surf.surf", "model": os.path.abspath(cfg.model),
        "model_sha256": ckpts["model"].sha256, "arch": cfg.arch,
        "model2": os.path.abspath(cfg.model2) if cfg.model2 else "",
        "model2_sha256": ckpts["model2"].sha256 if cfg.model2 else "",
        "model3": os.path.abspath(cfg.model3) if cfg.model3 else "",
        "model3_sha256": ckpts["model3"].sha256 if cfg.model3 else "",
        **cfg.data.provenance(), "same_dir": cfg.same_dir,
        **{f"checkpoint_{k}": v for k, v in pruned_summary(ckpts["model"], model, first).items()},
        **dir_info, **given,
    }
    arrays = {**(cfg.output.arrays or {}), **({"sample_indices": indices} if indices is not None else {})}
    output = replace(cfg.output, provenance=provenance, arrays=arrays or None,
                     directions_file="" if cfg.directions_file else cfg.output.directions_file)
    directions = replace(cfg.directions, tensors=dirs, norm=tuple(norms), ignore=tuple(ignores))
    return surface(model, data, cfg.grid, directions=directions, metrics=metric_objects(cfg), evaluation=evaluation,
                   output=output, comm=comm)


def surf(cfg: SurfConfig, comm=None) -> SurfResult:
    """What ``landscape-surf`` does: :func:`resolve` (once), :func:`compute`, then (rank 0, when
    ``cfg.plot`` or for the demo) the standard figures beside the file. Collective under MPI."""
    comm = comm or world()
    run = resolve(cfg, comm)
    result = compute(run, comm)
    paths: list[str] = []
    if run.config.plot and comm.rank == 0 and result.ndim < 3:
        from landscape.plot.render import render  # matplotlib: only on the rank that draws

        paths = render(result, os.path.splitext(run.config.output.path)[0])
    return SurfResult(result, tuple(paths))


__all__ = [
    "DEFAULT_GRID", "DEMO_GRID", "DEMO_OUT", "PATH_GRID_POINTS", "ResolvedSurf", "SurfConfig", "SurfResult", "compute",
    "make_directions", "path_grid", "resolve", "splits_of", "surf",
]
