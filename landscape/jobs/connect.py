"""What ``landscape-connect`` does, file in -> file out: train a curve between two checkpoints
(:func:`train`), evaluate a curve file along t into a path file (:func:`write_path`), and read a
curve file as the path drawn on its plane (:func:`plane_path_of`).

The curve file records the architecture, the data, the training settings and the ends' files
with their SHA-256, so that evaluating it needs only the file; checkpoints given beside a curve
file must be the ends it was trained between.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace

from landscape import connect
from landscape.data.datasets import SPLITS, DataSpec
from landscape.engine.options import Output
from landscape.errors import LandscapeError
from landscape.evaluation.batchnorm import has_batchnorm
from landscape.evaluation.options import EvalOptions
from landscape.io.checkpoint import Checkpoint, read_checkpoint, sha256
from landscape.io.files import check_output
from landscape.jobs.network import network
from landscape.runtime.parallel import local_rank_and_size, world
from landscape.runtime.threads import choose_threads, using_threads
from landscape.space.grid import Grid, parse_axis

# What a curve file records about its data, filled in when a command leaves it open.
DATA_FIELDS = tuple(f.name for f in fields(DataSpec) if f.name not in ("split", "samples", "sample_seed"))


@dataclass(frozen=True)
class CurveConfig(DataSpec):
    """Training a curve between the checkpoints ``a`` and ``b`` (the fields of ``landscape-connect``):
    the data (:class:`landscape.data.datasets.DataSpec`; the bend trains on the training split), the
    architecture, the curve's kind and its training settings (:class:`landscape.connect.CurveTraining`,
    checked when it is made)."""

    a: str = ""
    b: str = ""
    arch: str | None = None
    out: str = "curve.pt"
    kind: str = "bezier"
    training: connect.CurveTraining = field(default_factory=connect.CurveTraining)
    device: str | None = "cpu"
    threads: int | None = None  # torch threads; None: landscape.runtime.threads' policy
    folder: str | None = None  # the run folder (checkpoints, log.csv); default: OUT without .pt, + ".run"
    resume: bool = False
    overwrite: bool = False
    unsafe_pickle: bool = False
    progress: bool = True
    command: str = ""


def run_folder(cfg: CurveConfig) -> str:
    """Where a curve's training run keeps its checkpoints and log: ``ab_curve.pt`` -> ``ab_curve.run``."""
    return cfg.folder or os.path.splitext(cfg.out)[0] + ".run"


def train(cfg: CurveConfig) -> tuple[connect.Curve, str]:
    """Train the bend between ``cfg.a`` and ``cfg.b`` and write the curve to ``cfg.out`` (never
    over an existing file unless ``overwrite``). The training run's folder (:func:`run_folder`)
    holds its checkpoints and log; ``resume`` continues an interrupted run there. Returns the
    curve and the path written."""
    if not cfg.a or not cfg.b:
        raise LandscapeError("two checkpoints are needed: the ends a and b of the curve")
    if not cfg.arch:
        raise LandscapeError("an architecture is needed (a zoo name or package.module:callable)")
    if cfg.kind not in connect.KINDS:
        raise LandscapeError(f"the curve kind must be one of {', '.join(connect.KINDS)}, got {cfg.kind!r}")
    settings = cfg.training
    check_output(cfg.out, overwrite=cfg.overwrite or cfg.resume)  # a resumed run writes its curve again
    ckpt_a, ckpt_b = read_checkpoint(cfg.a, cfg.unsafe_pickle), read_checkpoint(cfg.b, cfg.unsafe_pickle)  # once
    connect.check_distinct(ckpt_a, ckpt_b, f"the ends {cfg.a!r} and {cfg.b!r}")
    spec = replace(DataSpec.of(cfg), split="train")
    data, _ = spec.load("train")
    test, _ = spec.load("test")
    model_a, model_b = (network(c, cfg.arch, cfg.num_classes, data=data) for c in (ckpt_a, ckpt_b))
    connect.check_ends(model_a.state_dict(), model_b.state_dict(), f"{cfg.a!r} and {cfg.b!r}")
    in_channels = int(data.x.shape[1]) if data.x.dim() == 4 else 1
    meta = {"arch": cfg.arch, "num_classes": cfg.num_classes or data.num_classes, "in_channels": in_channels,
            "ends": [os.path.abspath(cfg.a), os.path.abspath(cfg.b)], "ends_sha256": [ckpt_a.sha256, ckpt_b.sha256],
            "data": {f: getattr(spec, f) for f in DATA_FIELDS},
            "command": cfg.command or "landscape.jobs.connect.train"}
    if meta["data"]["data_root"]:
        meta["data"]["data_root"] = os.path.abspath(meta["data"]["data_root"])
    with using_threads(choose_threads(cfg.threads)):
        curve = connect.train_curve(model_a, model_b, data, kind=cfg.kind, training=settings, device=cfg.device,
                                    test_data=test, folder=run_folder(cfg), resume=cfg.resume, overwrite=cfg.overwrite,
                                    progress=cfg.progress, meta=meta)
    check_output(cfg.out, overwrite=cfg.overwrite or cfg.resume)  # nothing appeared there while it trained
    return curve, curve.save(cfg.out)


@dataclass(frozen=True)
class PathConfig(DataSpec):
    """Evaluating a curve file along t (the fields of ``landscape-connect --eval``). Data fields left
    ``None`` are the curve file's; ``ends``: checkpoints that must be the curve's ends;
    ``repair_stats``: REPAIR at every t (:func:`landscape.connect.evaluate_path`)."""

    curve: str = ""
    ends: tuple[str, ...] = ()
    points: int = 41
    t: str | None = None  # MIN:MAX:NUM within [0, 1], instead of `points` from 0 to 1
    out: str = "path.h5"
    dataset: str | None = None  # type: ignore[assignment]  (None: the curve's)
    split: str = "train,test"
    bn_recompute: int | None = None
    repair_stats: bool = False
    batch_size: int = connect.DEFAULT_BATCH_SIZE
    device: str | None = "cpu"
    threads: int | None = None
    overwrite: bool = False
    progress: bool = True
    command: str = ""


def read_curve(path: str, ends: tuple[str, ...] = (), checkpoint: Checkpoint | None = None) -> connect.Curve:
    """The curve in ``path`` (``checkpoint``: the file, read already), with the network of the
    architecture it records (built here, :func:`landscape.jobs.network.network`); ``ends`` (zero
    or two checkpoints) must be its ends' files."""
    if checkpoint is None:
        if not os.path.isfile(path):
            raise LandscapeError(f"curve file {path!r} does not exist")
        checkpoint = read_checkpoint(path)
    curve = connect.load_curve(checkpoint)
    if curve.meta.get("arch"):
        curve.model = network(checkpoint, str(curve.meta["arch"]))  # the curve's a, in its architecture
    if ends:
        if len(ends) != 2:
            raise LandscapeError(f"a curve has two ends; {len(ends)} checkpoint(s) given")
        connect.check_ends_files(curve, ends, f"the curve {path!r}")
    return curve


def _data_spec(cfg: PathConfig, curve: connect.Curve) -> DataSpec:
    recorded = curve.meta.get("data") or {}
    spec = DataSpec.of(cfg)
    if cfg.dataset is None:  # the curve's data, all of it
        spec = replace(spec, **{k: v for k, v in recorded.items() if k in DATA_FIELDS})
    if spec.dataset is None:
        raise LandscapeError(f"{cfg.curve!r} records no dataset; give one")
    return spec


def splits_of(text: str) -> list[str]:
    splits = [s for s in text.replace(" ", "").split(",") if s]
    if not splits or any(s not in SPLITS for s in splits) or len(set(splits)) != len(splits):
        raise LandscapeError(f"split must be train, test or train,test; got {text!r}")
    return splits


def write_path(cfg: PathConfig, comm=None) -> connect.PathResult:
    """Loss and accuracy of the curve in ``cfg.curve`` and of the straight line at ``cfg.points``
    values of t on every split, into the path file ``cfg.out`` (resumed when it exists and
    matches). Collective under MPI: every rank calls it."""
    comm = comm or world()
    if cfg.t is not None:
        ts = connect.t_values(parse_axis(cfg.t).coordinates)
    elif cfg.points < 2:
        raise LandscapeError(f"`points` must be at least 2, got {cfg.points}")
    else:
        ts = cfg.points
    splits = splits_of(cfg.split)
    check_output(cfg.out)
    curve = read_curve(cfg.curve, tuple(cfg.ends))
    spec = _data_spec(cfg, curve)
    data, indices = {}, None
    for s in splits:
        data[s], idx = spec.load(s)
        indices = idx if indices is None else indices
    bn_data = data["train"] if "train" in data else None
    if bn_data is None and (cfg.repair_stats or curve.model is not None and has_batchnorm(curve.model)):
        bn_data = spec.load("train")[0]
    provenance = {"command": cfg.command or "landscape.jobs.connect.write_path",
                  "curve": os.path.abspath(cfg.curve), "curve_file_sha256": sha256(cfg.curve),
                  "arch": str(curve.meta.get("arch", "")), **spec.provenance()}
    evaluation = EvalOptions(batch_size=cfg.batch_size, device=cfg.device,
                             threads=choose_threads(cfg.threads, local_rank_and_size(comm)[1]),
                             bn_recompute=cfg.bn_recompute or 0, bn_data=bn_data)
    output = Output(cfg.out, overwrite=cfg.overwrite, progress=cfg.progress, provenance=provenance)
    return connect.evaluate_path(curve, data, ts, evaluation=evaluation, output=output,
                                 repair_stats=cfg.repair_stats, comm=comm)


def plane_path_of(curve_file: str) -> connect.PlanePath:
    """The curve of ``curve_file`` in its plane (x along b - a, y the bend's orthogonal part), for
    drawing on the plane's surface (``landscape-surf --curve``)."""
    return connect.plane_path(read_curve(curve_file))


PLANE_POINTS = 29
PLANE_BN_BATCHES = 10  # a BatchNorm network's statistics are re-estimated at every point of its plane
PLANE_GRID = f"-0.2:1.2:{PLANE_POINTS}"


def plane_options(cfg, curve: connect.Curve, bend: tuple[float, float]) -> dict:
    """What ``landscape-surf --curve`` changes in its configuration (a
    :class:`landscape.jobs.surf.SurfConfig`), given the curve of ``cfg.curve`` and the bend's
    coordinates in its plane: the curve file is the model (its ``state_dict`` is the end a, the
    plane's origin), the architecture is the curve's unless given, the grid covers a (0, 0), b
    (1, 0) and the bend with a margin of 0.2 |b - a|, its points equally spaced on both axes; a
    BatchNorm network's statistics are re-estimated at every point (from ``PLANE_BN_BATCHES``
    batches unless ``bn_recompute`` says), and the surface records the curve's checksum (for
    ``landscape-plot --path``)."""
    _, yb = bend
    ny = max(9, round(PLANE_POINTS * (yb + 0.4) / 1.4))
    ev = cfg.evaluation
    bn = ev.bn_recompute or (PLANE_BN_BATCHES if curve.model is not None and has_batchnorm(curve.model) else 0)
    y = f"-0.2:{yb + 0.2:.3g}:{ny}"  # covers the bend, as many points per unit as x
    grid = Grid(PLANE_GRID, y) if cfg.grid is None else Grid(cfg.grid.x, y) if cfg.grid.y is None else cfg.grid
    provenance = {**(cfg.output.provenance or {}), "curve": os.path.abspath(cfg.curve),
                  "curve_sha256": curve.checksum(), "curve_kind": curve.kind,
                  "directions_from": "curve plane (a, b, bend)"}
    data = cfg.data  # the data options left at their defaults: the curve's own data, as it records them
    recorded = curve.meta.get("data") or {}
    if recorded and all(getattr(data, f) == getattr(DataSpec(), f) for f in DATA_FIELDS):
        data = replace(data, **{k: v for k, v in recorded.items() if k in DATA_FIELDS})
    return {"model": cfg.curve, "arch": cfg.arch or str(curve.meta.get("arch") or "") or None, "grid": grid,
            "evaluation": replace(ev, bn_recompute=bn), "output": replace(cfg.output, provenance=provenance),
            "data": data}


def plane_of(dirs: list[dict], bend: tuple[float, float], ndim: int) -> tuple[list[dict], dict]:
    """The directions of a curve's plane (:func:`landscape.connect.plane_directions`, with the
    bend's coordinates) and what the surface file records about them."""
    if ndim != 2:
        raise LandscapeError("the plane of a curve is 2D: give --x and --y (or neither), and no --z")
    xb, yb = bend
    return dirs, {"norm": "", "ignore": "", "curve_bend_x": xb, "curve_bend_y": yb}


__all__ = ["CurveConfig", "PathConfig", "plane_of", "plane_options", "plane_path_of", "read_curve", "run_folder",
           "train", "write_path"]
