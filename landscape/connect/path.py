"""A path (the curve, or the straight line) evaluated along t as a 1D grid of the point runner:
MPI-parallel, resumable, BatchNorm statistics re-estimated at every t (and REPAIR, optionally); its
barriers in both definitions in use.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from landscape.connect.curve import Curve
from landscape.connect.repair import Repair
from landscape.data.batches import as_batches, by_split
from landscape.engine.options import Output
from landscape.engine.points import compute_points
from landscape.errors import LandscapeError
from landscape.evaluation.batchnorm import BatchNormRecompute, has_batchnorm
from landscape.evaluation.evaluator import Evaluator
from landscape.evaluation.options import EvalOptions
from landscape.io.path_file import PATHS, PathResult, path_result, value_names
from landscape.io.surface_file import write_surface
from landscape.runtime.device import resolve_device
from landscape.runtime.parallel import collective, world
from landscape.runtime.provenance import environment
from landscape.runtime.threads import using_threads

DEFAULT_BATCH_SIZE = 256


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
