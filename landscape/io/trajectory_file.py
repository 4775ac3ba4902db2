"""The optimization-path file: a :class:`Trajectory` (two directions and where each checkpoint
lies in their plane) and its HDF5 file. No torch needed to read a path for plotting.

Our file is a directions file (``xdirection``, ``ydirection``) that also holds ``proj_xcoord``,
``proj_ycoord`` (the original tool's names), ``explained_variance_ratio``, ``explained_variance``,
``residual``, ``epochs`` and ``checkpoints``. The original tool keeps the projection in a file of
its own, ``DIRS.h5_proj_cos.h5`` (or ``_proj_lstsq.h5``), beside its PCA directions file
``DIRS.h5`` (``explained_variance_ratio_``): :func:`read_trajectory` reads both layouts.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import h5py
import numpy as np

from landscape.errors import LandscapeError
from landscape.io.h5 import DamagedFile, dataset, opened, plain, probe, writing


@dataclass(frozen=True)
class Trajectory:
    """Two PCA directions of a run and where each checkpoint lies in their plane (``attrs``: its
    provenance, completed by the command that writes it)."""

    directions: list  # of dicts name -> torch.Tensor (empty when read without them)
    xcoord: np.ndarray
    ycoord: np.ndarray
    explained_variance_ratio: np.ndarray
    residual: np.ndarray
    checkpoints: list[str]
    epochs: np.ndarray  # the last number in each checkpoint's file name, -1 where there is none
    explained_variance: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))
    attrs: dict = field(default_factory=dict)


def pc_labels(traj: Trajectory) -> tuple[str, str]:
    """Axis labels with the explained variance ratios, e.g. ``("1st PC: 83.5 %", ...)``; for a path
    projected onto given directions, ``("direction 1: 60.2 % of the path's variance", ...)``."""
    if traj.attrs.get("method") == "directions":
        r = np.asarray(traj.explained_variance_ratio, dtype=float)
        return tuple(f"direction {k + 1}: {100 * v:.1f} % of the path's variance" if np.isfinite(v)
                     else f"direction {k + 1}" for k, v in enumerate(r[:2]))
    names = ("1st PC", "2nd PC")
    r = np.asarray(traj.explained_variance_ratio, dtype=float)
    return tuple(f"{n}: {100 * v:.1f} %" if np.isfinite(v) else n
                 for n, v in zip(names, r, strict=True))


def path_extent(traj: Trajectory, margin: float = 0.2) -> tuple[float, float, float, float]:
    """``(xmin, xmax, ymin, ymax)`` covering the path and the origin, widened by ``margin``.

    Each side grows by ``margin`` times the larger of the two spans, so a path that is nearly a
    line still gets a usable second axis.
    """
    xs = np.append(traj.xcoord, 0.0)
    ys = np.append(traj.ycoord, 0.0)
    pad = margin * max(float(np.ptp(xs)), float(np.ptp(ys)), 1e-12)
    xmin, xmax, ymin, ymax = xs.min() - pad, xs.max() + pad, ys.min() - pad, ys.max() + pad
    return float(xmin), float(xmax), float(ymin), float(ymax)


DATASETS = ("proj_xcoord", "proj_ycoord", "explained_variance_ratio", "explained_variance",
            "residual", "epochs", "checkpoints")


def write_trajectory(path: str | os.PathLike, traj: Trajectory) -> None:
    """Write a trajectory file atomically: a directions file (``xdirection``, ``ydirection``)
    that :func:`landscape.directions.sampling.load_directions` reads, plus the projection datasets
    ``proj_xcoord``, ``proj_ycoord`` (the original tool's names), ``explained_variance_ratio``,
    ``explained_variance``, ``residual``, ``epochs`` and ``checkpoints`` (the paths)."""
    arrays = dict(zip(DATASETS, (
        traj.xcoord, traj.ycoord, traj.explained_variance_ratio, traj.explained_variance,
        traj.residual, traj.epochs, np.array(traj.checkpoints, dtype=h5py.string_dtype()),
    ), strict=True))

    from landscape.io.directions_file import write_directions  # torch: landscape-plot reads trajectory files without it

    with writing(path) as f:
        write_directions(f, traj.directions, traj.attrs)
        for name, arr in arrays.items():
            dataset(f, name, arr)


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


ORIGINAL_PROJECTION = re.compile(r"^(?P<dirs>.+)_proj_(cos|lstsq)\.h5$")


def _variance_in(dirs: str) -> np.ndarray | None:
    """The explained variance ratios in a PCA directions file, or None when it holds none."""
    with h5py.File(dirs, "r") as f:
        for key in ("explained_variance_ratio_", "explained_variance_ratio"):
            if key in f:
                r = np.asarray(f[key][()], dtype=float).ravel()
                return r[:2] if r.size >= 2 else None
    return None


def variance_of(dirs: str | os.PathLike) -> np.ndarray | None:
    """The explained variance ratios of a PCA directions file (a landscape-traj file or the original
    tool's), or None when it is gone, unreadable or holds none (for labels only: never an error)."""
    dirs = os.fspath(dirs)
    if not os.path.isfile(dirs) or probe(dirs).status != "ok":
        return None
    try:
        return _variance_in(dirs)
    except (OSError, ValueError):
        return None


def _original_variance(path: str) -> np.ndarray:
    """The explained variance ratios in the original tool's PCA directions file beside a
    projection file, or NaN when it is not there."""
    m = ORIGINAL_PROJECTION.match(path)
    if not m or not os.path.isfile(m.group("dirs")) or probe(m.group("dirs")).status != "ok":
        return np.full(2, np.nan)
    try:
        r = _variance_in(m.group("dirs"))
    except (OSError, ValueError):
        r = None
    return np.full(2, np.nan) if r is None else r


def _named_variance(dirs: str) -> np.ndarray:
    """The explained variance ratios of a directions file named explicitly: refused when absent."""
    dirs = os.fspath(dirs)
    if not os.path.isfile(dirs):
        raise LandscapeError(f"the directions file {dirs!r} does not exist")
    try:
        r = _variance_in(dirs)
    except (OSError, ValueError) as exc:
        raise LandscapeError(f"{dirs!r} is not a readable HDF5 directions file ({exc})") from None
    if r is None:
        raise LandscapeError(f"{dirs!r} holds no explained_variance_ratio_ (not a PCA directions file)")
    return r


def read_trajectory(path: str | os.PathLike, directions: bool = True,
                    directions_file: str | os.PathLike | None = None) -> Trajectory:
    """Read a path file: ours (verified against its checksum), or the original tool's projection
    file (``*_proj_cos.h5``, with the explained variance from its directions file beside it, or
    from ``directions_file`` when named: the original's ``plot_2D.py --dir_file``).
    ``directions=False`` skips loading the direction tensors (plotting needs only the path)."""
    path = os.fspath(path)
    named = _named_variance(directions_file) if directions_file else None

    def is_ours(f) -> bool:
        return "content_sha256" in f.attrs or "landscape_version" in f.attrs

    with opened(path, "trajectory file", is_ours) as (f, ours):
        missing = [k for k in ("proj_xcoord", "proj_ycoord") if k not in f]
        if missing:
            if ours:
                raise DamagedFile(path, f"{missing[0]} is missing")
            raise LandscapeError(f"{path!r} holds no optimization path (proj_xcoord, proj_ycoord)")
        arr = {k: f[k][()] for k in DATASETS if k in f}
        attrs = {k: plain(v) for k, v in f.attrs.items()}
        has_dirs = "xdirection" in f and "ydirection" in f
    x = np.asarray(arr["proj_xcoord"], dtype=float).ravel()
    y = np.asarray(arr["proj_ycoord"], dtype=float).ravel()
    if len(x) != len(y) or not len(x) or not (np.isfinite(x).all() and np.isfinite(y).all()):
        problem = f"its path coordinates do not match ({len(x)} x, {len(y)} y, or not finite)"
        if ours:
            raise DamagedFile(path, problem)
        raise LandscapeError(f"{path!r}: {problem}")
    n = len(x)
    ratio = arr.get("explained_variance_ratio")
    if named is not None:
        ratio = named
    ratio = np.asarray(ratio, dtype=float) if ratio is not None else _original_variance(path)
    dirs: list = []
    if directions and has_dirs:
        from landscape.io.directions_file import load_directions  # torch: see write_trajectory

        dirs = load_directions(path)[0][:2]
    epochs = np.asarray(arr.get("epochs", np.full(n, -1))).ravel()
    return Trajectory(
        directions=dirs, xcoord=x, ycoord=y, explained_variance_ratio=ratio,
        residual=np.asarray(arr.get("residual", np.full(n, np.nan)), dtype=float),
        checkpoints=[_text(c) for c in arr.get("checkpoints", [])],
        epochs=epochs if len(epochs) == n else np.full(n, -1),
        explained_variance=np.asarray(arr.get("explained_variance", np.full(2, np.nan)), dtype=float),
        attrs=attrs,
    )




__all__ = ["Trajectory", "path_extent", "pc_labels", "read_trajectory", "write_trajectory"]
