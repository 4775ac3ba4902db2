"""The surface file: one HDF5 file per surface, readable by plain h5py and by xarray.

Datasets keep the original tool's names: ``xcoordinates``, ``ycoordinates`` (1-D dimension
scales), ``{split}_loss`` and ``{split}_acc`` shaped (nx,) or (nx, ny), NaN until computed, and
a ``completed`` mask (1 where a point is done). Attributes hold the provenance; those in
:data:`CONFIG_KEYS` must match for a run to resume into the file.

The file is always rewritten whole to a temporary file that then replaces it, so a run killed at
any moment leaves the old file or the new one, never a damaged one. (Surface files are small:
the directions live in their own file, referenced by path and SHA-256.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import h5py
import numpy as np

from landscape.errors import LandscapeError
from landscape.files import replacing
from landscape.grid import Grid

# Attributes that define what a surface is; a resumed run must agree on all of them.
CONFIG_KEYS = (
    "arch", "model_sha256", "model2_sha256", "dataset", "split", "samples", "sample_seed",
    "loss", "dir_type", "norm", "ignore", "seed", "directions_sha256", "xspec", "yspec",
    "precision", "raw_data", "num_classes", "synthetic",
)
EXTRAS = ("sample_indices",)


@dataclass
class Surface:
    """A surface in memory: coordinates, value arrays, the completion mask and attributes."""

    x: np.ndarray
    y: np.ndarray | None
    values: dict[str, np.ndarray]
    completed: np.ndarray
    attrs: dict = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # e.g. sample_indices

    @property
    def shape(self) -> tuple[int, ...]:
        return self.completed.shape

    @property
    def ndim(self) -> int:
        return self.completed.ndim

    @property
    def split(self) -> str:
        return str(self.attrs.get("split", next(iter(self.values)).rsplit("_", 1)[0]))

    @property
    def loss(self) -> np.ndarray:
        return self.values[f"{self.split}_loss"]

    @property
    def acc(self) -> np.ndarray:
        return self.values[f"{self.split}_acc"]

    def title(self) -> str:
        """A one-line description from the attributes: ``arch | dataset | split | norm=...``."""
        a = self.attrs
        bits = [str(a.get(k, "")) for k in ("arch", "dataset", "split")]
        if a.get("model2"):
            bits.append("interpolation model -> model2")
        elif a.get("norm"):
            bits.append(f"norm={a['norm']}")
        return " | ".join(b for b in bits if b)

    def pending(self) -> np.ndarray:
        """Flat indices of the points not yet computed, in order."""
        return np.flatnonzero(~self.completed.ravel())

    def record(self, k: int, values: Mapping[str, float]) -> None:
        """Store the values of flat point ``k`` and mark it done."""
        idx = np.unravel_index(int(k), self.shape)
        for name, v in values.items():
            self.values[name][idx] = v
        self.completed[idx] = True


def new_surface(grid: Grid, split: str = "train", attrs: Mapping | None = None) -> Surface:
    """An empty surface on ``grid``: every value NaN, nothing completed."""
    values = {f"{split}_{q}": np.full(grid.shape, np.nan) for q in ("loss", "acc")}
    a = dict(attrs or {})
    a.setdefault("split", split)
    a["xspec"] = str(grid.x)
    a["yspec"] = str(grid.y) if grid.y is not None else ""
    return Surface(
        grid.x.coordinates, None if grid.y is None else grid.y.coordinates, values,
        np.zeros(grid.shape, dtype=bool), a,
    )


def _attr(v):
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if v is None:
        return ""
    if isinstance(v, str):
        return str(v)
    arr = np.asarray(v)
    if arr.dtype.kind in "UO":
        return arr.astype(h5py.string_dtype())
    return arr if arr.ndim else v


def write_surface(path: str | os.PathLike, surface: Surface) -> None:
    """Write ``surface`` to ``path`` atomically (temporary file, fsync, rename)."""
    with replacing(path) as tmp, h5py.File(tmp, "w") as f:
        xs = f.create_dataset("xcoordinates", data=surface.x)
        xs.make_scale("xcoordinates")
        scales = [xs]
        if surface.y is not None:
            ys = f.create_dataset("ycoordinates", data=surface.y)
            ys.make_scale("ycoordinates")
            scales.append(ys)
        arrays = dict(surface.values, completed=surface.completed.astype(np.uint8))
        for name, arr in arrays.items():
            ds = f.create_dataset(name, data=arr)
            for dim, scale in zip(ds.dims, scales, strict=True):
                dim.attach_scale(scale)
        for name, arr in surface.extras.items():
            f.create_dataset(name, data=arr)
        for k, v in surface.attrs.items():
            f.attrs[k] = _attr(v)
        f.flush()
        os.fsync(f.id.get_vfd_handle())


def _plain(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


def read_surface(path: str | os.PathLike) -> Surface:
    """Read a surface file (ours, or one written by the original tool)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise LandscapeError(f"surface file {path!r} does not exist")
    try:
        with h5py.File(path, "r") as f:
            if "xcoordinates" not in f:
                raise LandscapeError(f"{path!r} is not a surface file (no xcoordinates)")
            x = f["xcoordinates"][()]
            y = f["ycoordinates"][()] if "ycoordinates" in f else None
            shape = (len(x),) if y is None else (len(x), len(y))
            values = {
                k: np.asarray(f[k][()], dtype=float)
                for k in f
                if k.endswith(("_loss", "_acc")) and f[k].shape == shape
            }
            if not values:
                raise LandscapeError(f"{path!r} holds no loss or accuracy of shape {shape}")
            if "completed" in f:
                completed = f["completed"][()].astype(bool)
            else:  # the original tool's file: every loss starts at -1, and its 2D arrays hold
                # point (x[i], y[j]) at flat index j*nx + i (meshgrid order) in an (nx, ny) array
                if y is not None:
                    values = {k: v.ravel().reshape(len(y), len(x)).T.copy() for k, v in values.items()}
                first = next(iter(values.values()))
                completed = np.isfinite(first) & (first != -1)
            attrs = {k: _plain(v) for k, v in f.attrs.items()}
            extras = {k: f[k][()] for k in EXTRAS if k in f}
    except OSError as exc:
        raise LandscapeError(f"{path!r} is not a readable HDF5 file ({exc})") from None
    return Surface(x, y, values, completed, attrs, extras)


def config_mismatch(surface: Surface, config: Mapping) -> str | None:
    """A sentence naming the first configuration key that differs, or None when they agree."""
    for key in CONFIG_KEYS:
        if key not in config:
            continue
        old, new = surface.attrs.get(key, ""), _plain(_attr(config[key]))
        if str(old) != str(new):
            return f"{key} is {old!r} in the file but {new!r} now"
    return None
