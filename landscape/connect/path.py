"""A path (the curve, or the straight line) evaluated along t as a 1D grid of the point runner:
MPI-parallel, resumable, BatchNorm statistics re-estimated at every t (and REPAIR, optionally); its
barriers in both definitions in use.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from landscape.connect.curve import PATHS, Curve
from landscape.connect.repair import Repair
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
    """The largest value along a path minus the mean of its ends (Frankle et al., Garipov et al.;
    NaN when any is missing). A path whose loss runs straight from one end's to the other's has
    half their difference."""
    v = np.asarray(values, dtype=float)
    if v.size < 2 or not np.isfinite(v).all():
        return float("nan")
    return float(v.max() - (v[0] + v[-1]) / 2)


def chord_barrier(values: np.ndarray, t: np.ndarray) -> float:
    """The largest rise of a path above the chord between its ends, ``max_t v(t) - ((1-t) v(0) +
    t v(1))`` over the values of ``t`` (from 0 to 1; Entezari et al., Ainsworth et al.; NaN when
    any value is missing): 0 for a path on or below the chord, whatever the ends' difference."""
    v, t = np.asarray(values, dtype=float), np.asarray(t, dtype=float)
    if v.size < 2 or v.shape != t.shape or not np.isfinite(v).all():
        return float("nan")
    s = (t - t[0]) / (t[-1] - t[0])  # where the path's points lie between its first and last
    return float(np.max(v - ((1 - s) * v[0] + s * v[-1])))


def value_names(path: str, split: str) -> tuple[str, str]:
    """The arrays of a path's loss and accuracy on ``split`` in a path file: the curve's are the
    plain ``{split}_loss``/``{split}_acc`` (so every view of a 1D surface draws the curve), the
    straight line's ``line_{split}_loss``/``line_{split}_acc``."""
    prefix = "" if path == "curve" else f"{path}_"
    return f"{prefix}{split}_loss", f"{prefix}{split}_acc"


@dataclass(frozen=True)
class PathResult:
    """Loss and accuracy along t of the curve and of the straight line: ``loss[path]``,
    ``acc[path]`` (%), ``barrier[path]`` (loss: the largest minus the mean of the ends) and
    ``chord_barrier[path]`` (loss: the largest rise above the chord between the ends) on the first
    split; every split's in ``by_split[split]`` as ``{"loss": {...}, "acc": {...}, "barrier": {...},
    "err_barrier": {...}, "chord_barrier": {...}, "err_chord_barrier": {...}}`` (``err_``: of the
    error in %); the surface file's contents in ``surface``."""

    t: np.ndarray
    loss: dict
    acc: dict
    barrier: dict
    split: str
    by_split: dict = field(default_factory=dict)
    surface: object = None
    path: str | None = None
    chord_barrier: dict = field(default_factory=dict)


def path_result(surface) -> PathResult:
    """A :class:`PathResult` from a path surface (computed, or read from its file)."""
    splits = [s for s in str(surface.attrs.get("split", "train")).split(",") if s]
    t = np.asarray(surface.x)
    by_split = {}
    for s in splits:
        entry: dict = {"loss": {}, "acc": {}, "barrier": {}, "err_barrier": {}, "chord_barrier": {},
                       "err_chord_barrier": {}}
        for p in PATHS:
            lname, aname = value_names(p, s)
            entry["loss"][p] = np.asarray(surface.values[lname])
            entry["acc"][p] = np.asarray(surface.values.get(aname, np.full_like(entry["loss"][p], np.nan)))
            entry["barrier"][p] = barrier(entry["loss"][p])
            entry["err_barrier"][p] = barrier(100.0 - entry["acc"][p])
            entry["chord_barrier"][p] = chord_barrier(entry["loss"][p], t)
            entry["err_chord_barrier"][p] = chord_barrier(100.0 - entry["acc"][p], t)
        by_split[s] = entry
    first = by_split[splits[0]]
    return PathResult(t, first["loss"], first["acc"], first["barrier"], splits[0], by_split, surface, surface.path,
                      first["chord_barrier"])


def barrier_attrs(result: PathResult) -> dict:
    """The barriers as file attributes: ``barrier_{path}_{split}_loss`` and ``..._err`` (%), the
    largest value minus the mean of the ends; ``chord_barrier_{path}_{split}_loss`` and ``..._err``,
    the largest rise above the chord between the ends."""
    out = {}
    for s, entry in result.by_split.items():
        for p in PATHS:
            out[f"barrier_{p}_{s}_loss"] = entry["barrier"][p]
            out[f"barrier_{p}_{s}_err"] = entry["err_barrier"][p]
            out[f"chord_barrier_{p}_{s}_loss"] = entry["chord_barrier"][p]
            out[f"chord_barrier_{p}_{s}_err"] = entry["err_chord_barrier"][p]
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


def evaluate_path(curve: Curve, data, t: int | Sequence[float] = 41, *, evaluation: EvalOptions | None = None,
                  output: Output | None = None, repair_stats: bool = False, comm=None) -> PathResult:
    """Loss and accuracy of the curve and of the straight line at the values ``t`` (a count:
    evenly spaced in [0, 1]) on ``data`` (one split, or ``{split: data}``): a 1D grid of the
    point runner, so MPI-parallel (every rank calls this) and resumable in ``output.path``.

    ``evaluation`` (:class:`landscape.EvalOptions`; default: batches of 256 on the CPU): the loss,
    accuracy, batch size (None: 256), device, precision, forward function and threads; BatchNorm
    statistics are re-estimated at every t and path from ``bn_recompute`` batches (0: all of them)
    of ``bn_data`` (None: the training split, else the first); a network without BatchNorm needs
    none. ``output`` (:class:`landscape.Output`): the path file, resume, overwrite, progress and
    provenance (None: no file). ``repair_stats``: REPAIR (Jordan et al.; :mod:`.repair`) at every
    t of both paths, its statistics from the same batches. The barriers go into the file's
    attributes.
    """
    evaluation = evaluation if evaluation is not None else EvalOptions(batch_size=DEFAULT_BATCH_SIZE, device="cpu")
    if not isinstance(evaluation, EvalOptions):
        raise LandscapeError(f"`evaluation` must be a landscape.EvalOptions, got {type(evaluation).__name__}")
    if output is not None and not isinstance(output, Output):
        raise LandscapeError(f"`output` must be a landscape.Output, got {type(output).__name__}")
    if not isinstance(repair_stats, bool):
        raise LandscapeError(f"`repair_stats` must be True or False, got {repair_stats!r}")
    output = output if output is not None else Output(progress=False)
    batch_size = evaluation.batch_size or DEFAULT_BATCH_SIZE
    comm = comm or world()
    ts = t_values(t)
    splits = by_split(data)
    net = curve.network()
    dev = resolve_device(evaluation.device)
    per_point = replace(evaluation, batch_size=batch_size, device=dev, bn_recompute=0, bn_data=None)
    with using_threads(evaluation.threads):
        def setup():
            evaluators = {s: Evaluator(net, d, per_point, channels_last=False) for s, d in splits.items()}
            bn = fix = None
            n_bn = evaluation.bn_recompute or None
            source = evaluation.bn_data if evaluation.bn_data is not None else \
                splits.get("train", next(iter(splits.values())))
            if has_batchnorm(net) or repair_stats:
                batches = as_batches(source, dev, batch_size)
                if n_bn is None:
                    n_bn = math.ceil(batches.n / batch_size)
                if has_batchnorm(net):
                    bn = BatchNormRecompute(net, batches, n_bn, evaluation.forward_fn)
                if repair_stats:
                    fix = Repair(net, batches, n_bn, evaluation.forward_fn)
                    if fix.names:
                        fix.ends_(curve.a, curve.b, bn)
                    elif bn is not None:  # every layer feeds a BatchNorm: its re-estimation is REPAIR
                        fix.remove()
                        fix = None
                    else:
                        raise LandscapeError(f"REPAIR has nothing to correct in {type(net).__name__}: no conv or "
                                             "linear layer's output is read by another layer")
            return evaluators, bn, fix

        evaluators, bn, fix = collective(comm, setup)
        metrics = [_PathValues(p, s, ev) for p in PATHS for s, ev in evaluators.items()]
        coords = [ts]
        inputs = {"grid": [f"t: {len(ts)} values"],
                  "coordinates": hashlib.sha256(np.asarray(ts, "<f8").tobytes()).hexdigest(),
                  "model": f"{type(net).__module__}.{type(net).__qualname__}:{curve.checksum()}",
                  "bn_recompute": bn.config() if bn is not None else 0,
                  "metrics": {n: {"class": "path", **m.config()} for m in metrics for n in m.names}}
        if fix is not None:  # only then: files of the plain paths resume as before
            inputs["repair_stats"] = fix.config()
        attrs = {**environment(), "kind": "connect_path", "curve_kind": curve.kind, "curve_sha256": curve.checksum(),
                 "split": ",".join(splits), "xlabel": "t", "samples": next(iter(evaluators.values())).n,
                 "loss": next(iter(evaluators.values())).loss_name, "batch_size": batch_size,
                 "bn_recompute": bn.num_batches if bn is not None else 0, "mpi_ranks": comm.size,
                 "repair_stats": int(repair_stats), "repair_layers": len(fix.names) if fix is not None else 0,
                 "command": "landscape.connect.evaluate_path",
                 **{k: v for k, v in curve.meta.items() if isinstance(v, str | int | float | bool)},
                 **dict(output.provenance or {})}

        def job(p: int, needed: Sequence[int]) -> dict:
            values: dict[str, float] = {}
            for path in PATHS:
                wanted = [metrics[i] for i in needed if metrics[i].path == path]
                if not wanted:
                    continue
                tp = float(ts[p])
                net.load_state_dict(curve.point(path, tp))
                if fix is not None and 0.0 < tp < 1.0:
                    fix.prepare_(tp, bn)  # re-estimates the BatchNorm statistics in the same passes
                else:
                    if fix is not None:
                        fix.off_()  # an end: the network itself
                    if bn is not None:
                        bn()
                for m in wanted:
                    got = m.evaluator()
                    values[m.names[0]] = got["loss"]
                    if len(m.names) > 1:
                        values[m.names[1]] = got.get("acc", float("nan"))
            return values

        out = os.fspath(output.path) if output.path is not None else None
        try:
            surf = compute_points(coords, metrics, job, inputs=inputs, attrs=attrs, output=output, comm=comm,
                                  what="path")
        finally:
            if fix is not None:
                fix.remove()
    result = path_result(surf)
    surf.attrs.update(barrier_attrs(result))
    if out is not None and comm.rank == 0:
        write_surface(out, surf)
    return result
