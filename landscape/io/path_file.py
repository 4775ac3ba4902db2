"""A curve's path file (``landscape-connect --eval``): a 1D surface file along t holding the loss
and accuracy of the curve and of the straight line on each split, read back as a
:class:`PathResult` with the barriers of both definitions in use. No torch: ``landscape-plot``
draws these files without it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PATHS = ("curve", "line")  # the two paths between the ends: the trained curve and the straight line


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


__all__ = ["PATHS", "PathResult", "barrier", "chord_barrier", "path_result", "value_names"]
