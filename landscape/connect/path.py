"""A path (the curve, or the straight line) evaluated along t as a 1D grid of the point runner:
MPI-parallel, resumable, BatchNorm statistics re-estimated at every t; its barriers.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from landscape.connect.curve import PATHS, Curve
from landscape.data.batches import as_batches, by_split
from landscape.engine.options import Output
from landscape.engine.points import compute_points
from landscape.errors import LandscapeError
from landscape.evaluation.batchnorm import BatchNormRecompute, has_batchnorm
from landscape.evaluation.evaluator import Evaluator
from landscape.evaluation.options import EvalOptions
from landscape.io.surface_file import write_surface
from landscape.runtime.device import resolve_device
from landscape.runtime.parallel import collective, world
from landscape.runtime.provenance import environment
from landscape.runtime.threads import using_threads

DEFAULT_BATCH_SIZE = 256


def barrier(values: np.ndarray) -> float:
    """The largest value along a path minus the mean of its ends (NaN when any is missing)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2 or not np.isfinite(v).all():
        return float("nan")
    return float(v.max() - (v[0] + v[-1]) / 2)


def value_names(path: str, split: str) -> tuple[str, str]:
    """The arrays of a path's loss and accuracy on ``split`` in a path file: the curve's are the
    plain ``{split}_loss``/``{split}_acc`` (so every view of a 1D surface draws the curve), the
    straight line's ``line_{split}_loss``/``line_{split}_acc``."""
    prefix = "" if path == "curve" else f"{path}_"
    return f"{prefix}{split}_loss", f"{prefix}{split}_acc"


@dataclass(frozen=True)
class PathResult:
    """Loss and accuracy along t of the curve and of the straight line: ``loss[path]``,
    ``acc[path]`` (%) and ``barrier[path]`` (loss) on the first split; every split's in
    ``by_split[split]`` as ``{"loss": {...}, "acc": {...}, "barrier": {...}, "err_barrier": {...}}``;
    the surface file's contents in ``surface``."""

    t: np.ndarray
    loss: dict
    acc: dict
    barrier: dict
    split: str
    by_split: dict = field(default_factory=dict)
    surface: object = None
    path: str | None = None


def path_result(surface) -> PathResult:
    """A :class:`PathResult` from a path surface (computed, or read from its file)."""
    splits = [s for s in str(surface.attrs.get("split", "train")).split(",") if s]
    by_split = {}
    for s in splits:
        entry: dict = {"loss": {}, "acc": {}, "barrier": {}, "err_barrier": {}}
        for p in PATHS:
            lname, aname = value_names(p, s)
            entry["loss"][p] = np.asarray(surface.values[lname])
            entry["acc"][p] = np.asarray(surface.values.get(aname, np.full_like(entry["loss"][p], np.nan)))
            entry["barrier"][p] = barrier(entry["loss"][p])
            entry["err_barrier"][p] = barrier(100.0 - entry["acc"][p])
        by_split[s] = entry
    first = by_split[splits[0]]
    return PathResult(np.asarray(surface.x), first["loss"], first["acc"], first["barrier"], splits[0], by_split,
                      surface, surface.path)


def barrier_attrs(result: PathResult) -> dict:
    """The barriers as file attributes: ``barrier_{path}_{split}_loss`` and ``..._err`` (%)."""
    out = {}
    for s, entry in result.by_split.items():
        for p in PATHS:
            out[f"barrier_{p}_{s}_loss"] = entry["barrier"][p]
            out[f"barrier_{p}_{s}_err"] = entry["err_barrier"][p]
    return out


class _PathValues:
    """One path's loss and accuracy on one split: the unit of work the engine hands out."""

    def __init__(self, path: str, split: str, evaluator):
        self.path, self.split, self.evaluator = path, split, evaluator
        self.names = value_names(path, split)

    def config(self) -> dict:
        ev = self.evaluator
        return {"path": self.path, "split": self.split, "loss": ev.loss_name, "data": ev.batches.fingerprint(),
                "samples": ev.n, "batch_size": ev.batch_size}


def t_values(t: int | Sequence[float] | np.ndarray) -> np.ndarray:
    """``t`` as the points of the path: a count (evenly spaced from 0 to 1) or the values."""
    if isinstance(t, int | np.integer):
        if t < 2:
            raise LandscapeError(f"a path needs at least 2 points, got {t}")
        return np.linspace(0.0, 1.0, int(t))
    values = np.asarray(t, dtype=float).ravel()
    if values.size < 2:
        raise LandscapeError("a path needs at least 2 values of t")
    bad = values[~((values >= 0) & (values <= 1))]
    if bad.size:
        raise LandscapeError(f"t must lie in [0, 1], got {bad[0]:g}")
    if np.any(np.diff(values) <= 0):
        raise LandscapeError("the values of t must increase")
    return values


def evaluate(curve: Curve, data, t: int | Sequence[float] = 41, *, loss_fn: str | Callable = "crossentropy",
             batch_size: int = DEFAULT_BATCH_SIZE, bn_recompute: int | None = None, bn_data=None,
             device: str | torch.device | None = "cpu", out: str | os.PathLike | None = None,
             overwrite: bool = False, comm=None, progress: bool = False, provenance: Mapping | None = None,
             threads: int | None = None) -> PathResult:
    """Loss and accuracy of the curve and of the straight line at the values ``t`` (a count:
    evenly spaced in [0, 1]) on ``data`` (one split, or ``{split: data}``): a 1D grid of the
    surface engine, so MPI-parallel (every rank calls this) and resumable in ``out``.

    BatchNorm statistics are re-estimated at every t and path from ``bn_recompute`` batches of
    ``bn_data`` (default: all batches of the training split, else of the first); a network
    without BatchNorm needs none. The barriers go into the file's attributes.
    """
    comm = comm or world()
    ts = t_values(t)
    splits = by_split(data)
    net = curve.network()
    dev = resolve_device(device)
    with using_threads(threads):
        def setup():
            evaluators = {s: Evaluator(net, d, EvalOptions(loss_fn=loss_fn, batch_size=batch_size, device=dev),
                                       channels_last=False)
                          for s, d in splits.items()}
            bn = None
            n_bn = bn_recompute
            if has_batchnorm(net):
                source = bn_data if bn_data is not None else splits.get("train", next(iter(splits.values())))
                batches = as_batches(source, dev, batch_size)
                if n_bn is None:
                    n_bn = math.ceil(batches.n / batch_size)
                if n_bn < 1:
                    raise LandscapeError("a network with BatchNorm needs its statistics re-estimated along a path: "
                                         "`bn_recompute` must be at least 1")
                bn = BatchNormRecompute(net, batches, n_bn)
            return evaluators, bn

        evaluators, bn = collective(comm, setup)
        metrics = [_PathValues(p, s, ev) for p in PATHS for s, ev in evaluators.items()]
        coords = [ts]
        inputs = {"grid": [f"t: {len(ts)} values"],
                  "coordinates": hashlib.sha256(np.asarray(ts, "<f8").tobytes()).hexdigest(),
                  "model": f"{type(net).__module__}.{type(net).__qualname__}:{curve.checksum()}",
                  "bn_recompute": bn.config() if bn is not None else 0,
                  "metrics": {n: {"class": "path", **m.config()} for m in metrics for n in m.names}}
        attrs = {**environment(), "kind": "connect_path", "curve_kind": curve.kind, "curve_sha256": curve.checksum(),
                 "split": ",".join(splits), "xlabel": "t", "samples": next(iter(evaluators.values())).n,
                 "loss": next(iter(evaluators.values())).loss_name, "batch_size": batch_size,
                 "bn_recompute": bn.num_batches if bn is not None else 0, "mpi_ranks": comm.size,
                 "command": "landscape.connect.evaluate",
                 **{k: v for k, v in curve.meta.items() if isinstance(v, str | int | float | bool)},
                 **dict(provenance or {})}

        def job(p: int, needed: Sequence[int]) -> dict:
            values: dict[str, float] = {}
            for path in PATHS:
                wanted = [metrics[i] for i in needed if metrics[i].path == path]
                if not wanted:
                    continue
                net.load_state_dict(curve.point(path, float(ts[p])))
                if bn is not None:
                    bn()
                for m in wanted:
                    got = m.evaluator()
                    values[m.names[0]] = got["loss"]
                    if len(m.names) > 1:
                        values[m.names[1]] = got.get("acc", float("nan"))
            return values

        out = os.fspath(out) if out is not None else None
        surf = compute_points(coords, metrics, job, inputs=inputs, attrs=attrs, comm=comm,
                              output=Output(out, overwrite=overwrite, progress=progress), what="path")
    result = path_result(surf)
    surf.attrs.update(barrier_attrs(result))
    if out is not None and comm.rank == 0:
        write_surface(out, surf)
    return result
