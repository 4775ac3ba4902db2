"""The surface file: one HDF5 file per surface, readable by plain h5py, xarray and the original
loss-landscape tool's scripts.

Layout (``format_version`` 2):

- ``xcoordinates`` (and ``ycoordinates``, ``zcoordinates``): 1-D dimension scales;
- one float64 array per quantity (``train_loss``, ``train_acc``, ``test_loss``, ``max_eig``, a
  metric's own name, ...), NaN until computed, in meshgrid order: shape ``(nx,)``, ``(ny, nx)`` or
  ``(nz, ny, nx)``, so a 2D array holds the point ``(x[i], y[j])`` at ``[j, i]``, row j for y[j],
  as the original tool's ``plot_2D.py``, ``h52vtp.py``, ``np.meshgrid`` and matplotlib expect;
  the scales are attached in that order, so xarray labels the dimensions;
- ``completed``: 1 where every quantity is computed; ``done/NAME``: 1 where quantity NAME is
  (a rerun that adds a metric computes only that one);
- ``point_checksums``: a 64-bit checksum of each point's coordinates, values and what they depend
  on, so that a damaged file can be repaired keeping exactly the points that verify;
- ``sample_indices`` when the data was a subset; ``evaluated`` (uint8, 1 where the network was
  evaluated) for an adaptive grid, whose other points hold interpolated values (attribute
  ``adaptive_tol``: the relative tolerance; ``done/NAME`` is 1 at the evaluated points only);
- attributes: the provenance, ``inputs`` (JSON of everything the values depend on: checked on
  resume), ``format_version`` and ``content_sha256``, a checksum of every dataset and attribute.

Every dataset carries HDF5's ``fletcher32`` checksum too. A file failing either check, or missing a
part, is :class:`DamagedFile`. Files of format 1 (landscape 0.1, 2D arrays ``[i, j]``) and the
original tool's files are read in their own layouts and returned in this one.

The file is always rewritten whole to a temporary file that then replaces it, so a run killed at
any moment leaves the old file or the new one. (Surface files are small: the directions live in
their own file, referenced by path and SHA-256.)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import h5py
import numpy as np

from landscape.errors import LandscapeError
from landscape.io.h5 import DamagedFile, attr, dataset, opened, plain, probe, writing

FORMAT_VERSION = 2
AXES = ("xcoordinates", "ycoordinates", "zcoordinates")
ARRAYS = ("sample_indices", "evaluated")
STRUCTURE = set(AXES) | {"completed", "done", "point_checksums"} | set(ARRAYS)
# Quantities computed from stored ones: name -> (the arrays it needs, how)
DERIVED = {
    "eig_ratio": (("min_eig", "max_eig"), lambda mn, mx: np.abs(mn / np.where(mx == 0, np.nan, mx))),
    "eig_ratio_signed": (("min_eig", "max_eig"), lambda mn, mx: mn / np.where(mx == 0, np.nan, mx)),
}
LABELS = {"loss": "loss", "acc": "accuracy (%)", "max_eig": "largest Hessian eigenvalue",
          "min_eig": "smallest Hessian eigenvalue", "eig_ratio": "|min eig / max eig|",
          "eig_ratio_signed": "min eig / max eig"}


class ConfigMismatch(LandscapeError):
    """A file that holds a surface of another configuration than the run's."""


@dataclass
class Surface:
    """A surface in memory: coordinates (x first), value arrays in meshgrid order, per-quantity
    completion masks and attributes; :attr:`directions` when computed in this process."""

    coords: list[np.ndarray]
    values: dict[str, np.ndarray]
    done: dict[str, np.ndarray]
    attrs: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)  # other arrays stored with it: sample_indices
    directions: list | None = None
    path: str | None = None  # the file it was read from or written to

    @property
    def x(self) -> np.ndarray:
        return self.coords[0]

    @property
    def y(self) -> np.ndarray | None:
        return self.coords[1] if len(self.coords) > 1 else None

    @property
    def z(self) -> np.ndarray | None:
        return self.coords[2] if len(self.coords) > 2 else None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(c) for c in reversed(self.coords))

    @property
    def ndim(self) -> int:
        return len(self.coords)

    @property
    def names(self) -> list[str]:
        """The stored quantities."""
        return list(self.values)

    @property
    def completed(self) -> np.ndarray:
        """Where every stored quantity is computed."""
        if not self.done:
            return np.zeros(self.shape, dtype=bool)
        return np.logical_and.reduce([d for d in self.done.values()])

    @property
    def split(self) -> str:
        """The split that ``loss``/``acc`` name: the first one evaluated (one the surface holds)."""
        split = str(self.attrs.get("split") or "").split(",")[0]
        if split and any(f"{split}_{q}" in self.values for q in ("loss", "acc")):
            return split
        first = next((n for n in self.values if n.endswith("_loss")), "train_loss")
        return first.rsplit("_", 1)[0]

    @property
    def loss(self) -> np.ndarray:
        return self.quantity("loss")

    @property
    def acc(self) -> np.ndarray:
        return self.quantity("acc")

    def key(self, name: str) -> str:
        """The stored array that ``name`` means: ``loss``/``acc`` are the first split's."""
        if name in self.values or name in DERIVED:
            return name
        if name in ("loss", "acc", "err"):
            return f"{self.split}_{name}"
        return name

    def quantity(self, name: str) -> np.ndarray:
        """The array of quantity ``name`` (stored, ``loss``/``acc`` of the first split, or derived
        such as ``eig_ratio``); a :class:`LandscapeError` lists what the surface has."""
        key = self.key(name)
        if key in self.values:
            return self.values[key]
        if key in DERIVED:
            needs, fn = DERIVED[key]
            if all(n in self.values for n in needs):
                with np.errstate(divide="ignore", invalid="ignore"):
                    return fn(*(self.values[n] for n in needs))
        have = ", ".join(self.available()) or "nothing"
        raise LandscapeError(f"the surface has no {name!r} (it has {have})")

    def available(self) -> list[str]:
        """Every name :meth:`quantity` accepts."""
        out = list(self.values)
        out += [n for n, (needs, _) in DERIVED.items() if all(k in self.values for k in needs)]
        return out

    def label(self, name: str) -> str:
        """A human label for a quantity: ``loss``, ``accuracy (%)``, ``test loss``, ..."""
        key = self.key(name)
        for suffix in ("loss", "acc"):
            if key.endswith("_" + suffix):
                split = key[: -len(suffix) - 1]
                base = LABELS[suffix]
                return base if split == self.split else f"{split} {base}"
        return LABELS.get(key, key)

    def pending(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Flat indices of the points where any of ``names`` (default: all) is not computed."""
        names = list(names) if names is not None else list(self.done)
        if not names:
            return np.arange(int(np.prod(self.shape)))
        todo = np.logical_or.reduce([~self.done[n] for n in names])
        return np.flatnonzero(todo.ravel())

    def add(self, name: str) -> None:
        """Add an empty quantity (NaN, nothing computed)."""
        if name not in self.values:
            self.values[name] = np.full(self.shape, np.nan)
            self.done[name] = np.zeros(self.shape, dtype=bool)

    def record(self, p: int, values: Mapping[str, float]) -> None:
        """Store the values of flat point ``p`` and mark them done."""
        idx = np.unravel_index(int(p), self.shape)
        for name, v in values.items():
            self.add(name)
            self.values[name][idx] = v
            self.done[name][idx] = True

    def title(self) -> str:
        """A one-line description from the attributes: ``arch | dataset | split | norm=...``."""
        a = self.attrs
        bits = [str(a.get(k, "")) for k in ("arch", "dataset", "split")]
        if a.get("model2"):
            bits.append("interpolation model -> model2")
        elif a.get("norm"):
            bits.append(f"norm={a['norm']}")
        return " | ".join(b for b in bits if b)

    def inputs(self) -> dict:
        """What the values depend on, as recorded (``{}`` for files that do not record it)."""
        text = self.attrs.get("inputs", "")
        try:
            return json.loads(text) if text else {}
        except (TypeError, ValueError):
            return {}


def new_surface(coords: Sequence[np.ndarray], names: Sequence[str] = (), attrs: Mapping | None = None) -> Surface:
    """An empty surface over ``coords`` (x first) with the quantities ``names``."""
    s = Surface([np.asarray(c, dtype=float) for c in coords], {}, {}, dict(attrs or {}))
    for n in names:
        s.add(n)
    return s


# --------------------------------------------------------------------------------- checksums

_M1, _M2, _GOLD = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64, element-wise on uint64 arrays (wrapping arithmetic)."""
    z = x + _GOLD
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _seed(text: str) -> np.uint64:
    return np.frombuffer(hashlib.sha256(text.encode()).digest()[:8], dtype="<u8")[0]


def point_checksums(coords: Sequence[np.ndarray], values: Mapping[str, np.ndarray], done: Mapping[str, np.ndarray],
                    inputs: Mapping) -> np.ndarray:
    """One uint64 per point over its coordinates and, for each quantity, its value, whether it is
    done and the configuration it was computed under (``inputs``)."""
    shape = tuple(len(c) for c in reversed(coords))
    core = {k: v for k, v in inputs.items() if k != "metrics"}
    h = np.full(shape, _seed(json.dumps(core, sort_keys=True)), dtype=np.uint64)
    mesh = np.meshgrid(*[np.asarray(c, dtype="<f8") for c in reversed(coords)], indexing="ij")
    with np.errstate(over="ignore"):
        for m in mesh:
            h = _mix(h ^ _mix(m.view("<u8")))
        metrics = inputs.get("metrics", {})
        for name in sorted(values):
            tag = _seed(name + json.dumps(metrics.get(name, {}), sort_keys=True))
            v = np.ascontiguousarray(values[name], dtype="<f8").view("<u8")
            h = _mix(h ^ _mix(v ^ tag))
            h = _mix(h ^ done[name].astype(np.uint64))
    return h


# ----------------------------------------------------------------------------------- writing


def write_surface(path: str | os.PathLike, surface: Surface) -> None:
    """Write ``surface`` to ``path`` atomically (temporary file, fsync, rename), with checksums."""
    inputs = surface.inputs()
    with writing(path) as f:
        scales = []
        for name, c in zip(AXES, surface.coords, strict=False):
            ds = dataset(f, name, np.asarray(c, dtype=float))
            ds.make_scale(name)
            scales.append(ds)
        scales = scales[::-1]  # an array's dimensions are (z, y, x)
        arrays = dict(surface.values)
        arrays["completed"] = surface.completed.astype(np.uint8)
        for name, arr in arrays.items():
            ds = dataset(f, name, np.asarray(arr, dtype=np.uint8 if name == "completed" else float))
            for dim, scale in zip(ds.dims, scales, strict=True):
                dim.attach_scale(scale)
        g = f.create_group("done")
        for name, mask in surface.done.items():
            dataset(g, name, mask.astype(np.uint8))
        dataset(f, "point_checksums", point_checksums(surface.coords, surface.values, surface.done, inputs))
        for name, arr in surface.arrays.items():
            dataset(f, name, arr)
        attrs = dict(surface.attrs)
        attrs["format_version"] = FORMAT_VERSION
        attrs["layout"] = "meshgrid: 2D arrays [j, i] = (x[i], y[j]); 3D [k, j, i]"
        for k, v in attrs.items():
            if k != "content_sha256":
                f.attrs[k] = attr(v)


# ----------------------------------------------------------------------------------- reading


V2_MARKS = ("format_version", "content_sha256", "inputs")


def is_ours(f: h5py.File) -> bool:
    return any(k in f.attrs for k in (*V2_MARKS, "landscape_version")) or "done" in f or "point_checksums" in f


def _version(f: h5py.File, path: str) -> int:
    """2 for files of this format (any of its marks), 1 for landscape 0.1's, 0 for the original's."""
    if any(k in f.attrs for k in V2_MARKS) or "done" in f or "point_checksums" in f:
        missing = [k for k in ("format_version", "content_sha256") if k not in f.attrs]
        if missing:
            raise DamagedFile(path, f"its {missing[0]} attribute is missing")
        try:
            return int(plain(f.attrs["format_version"]))
        except (TypeError, ValueError):
            raise DamagedFile(path, "its format_version attribute is not a number") from None
    return 1 if "landscape_version" in f.attrs else 0


def _float_array(f, name: str, shape: tuple[int, ...], path: str, ours: bool) -> np.ndarray:
    obj = f[name]
    if not isinstance(obj, h5py.Dataset) or obj.dtype.kind not in "fiub":
        raise (DamagedFile(path, f"{name} is not a numeric array") if ours
               else LandscapeError(f"{path!r}: {name} is not a numeric array"))
    if obj.shape != shape and int(np.prod(obj.shape)) != int(np.prod(shape)):
        raise (DamagedFile(path, f"{name} has shape {obj.shape}, the grid {shape}") if ours
               else LandscapeError(f"{path!r}: {name} has shape {obj.shape}, the grid {shape}"))
    return np.asarray(obj[()], dtype=float)


def read_surface(path: str | os.PathLike) -> Surface:
    """Read a surface file: ours (verified against its checksums), format 1, or the original's."""
    path = os.fspath(path)
    with opened(path, "surface file", is_ours) as (f, _):
        version = _version(f, path)
        if version > FORMAT_VERSION:
            raise LandscapeError(f"{path!r} was written by a newer landscape (format {version})")
        surface = _read(f, path, version)
    surface.path = path
    return surface


def _verify_points(surface: Surface, path: str, stored: np.ndarray) -> None:
    """Every point against its own checksum and the coordinates against the recorded inputs, on
    every read: an edited file whose file checksum was recomputed is still caught."""
    inputs = surface.inputs()
    recorded = inputs.get("coordinates")
    if recorded:
        digest = hashlib.sha256(b"".join(np.asarray(c, dtype="<f8").tobytes() for c in surface.coords))
        if digest.hexdigest() != recorded:
            raise DamagedFile(path, "its coordinates are not those its inputs record")
    expected = point_checksums(surface.coords, surface.values, surface.done, inputs)
    stored = np.asarray(stored)
    if stored.shape != expected.shape or stored.dtype.kind not in "ui":
        raise DamagedFile(path, "its point checksums do not fit the grid")
    bad = int((stored.astype(np.uint64) != expected).sum())
    if bad:
        raise DamagedFile(path, f"{bad} point(s) do not match their checksums")


def _read(f: h5py.File, path: str, version: int) -> Surface:
    ours = version > 0
    if "xcoordinates" not in f:
        if ours:
            raise DamagedFile(path, "xcoordinates is missing")
        raise LandscapeError(f"{path!r} is not a surface file (no xcoordinates)")
    coords = []
    for name in AXES:
        if name not in f:
            break
        c = np.asarray(f[name][()], dtype=float)
        if c.ndim != 1 or not len(c) or not np.isfinite(c).all():
            raise (DamagedFile(path, f"{name} is not a 1-D array of finite numbers") if ours
                   else LandscapeError(f"{path!r}: {name} is not a 1-D array of finite numbers"))
        coords.append(c)
    shape = tuple(len(c) for c in reversed(coords))
    attrs = {k: plain(v) for k, v in f.attrs.items()}
    if version >= 2:
        names = [n for n in f if n not in STRUCTURE and isinstance(f[n], h5py.Dataset)]
        values = {n: _float_array(f, n, shape, path, True) for n in names}
        not_float = [n for n in names if f[n].dtype.kind != "f"]
        if not_float:
            raise DamagedFile(path, f"{not_float[0]} is not a float array")
        for n, v in values.items():
            if v.shape != shape:
                raise DamagedFile(path, f"{n} has shape {v.shape}, the grid {shape}")
        if "done" not in f or "completed" not in f or "point_checksums" not in f:
            raise DamagedFile(path, "its completion masks or point checksums are missing")
        done = {}
        for n in names:
            if n not in f["done"]:
                raise DamagedFile(path, f"done/{n} is missing")
            mask = f["done"][n][()]
            if mask.shape != shape:
                raise DamagedFile(path, f"done/{n} has shape {mask.shape}, the grid {shape}")
            done[n] = mask.astype(bool)
        if not values:
            raise DamagedFile(path, "it holds no quantity")
    else:
        if ours:  # format 1 stored losses and accuracies only
            names = [n for n in f if n.endswith(("_loss", "_acc")) and isinstance(f[n], h5py.Dataset)]
        else:  # the original's: losses, accuracies, and its convexity scripts' max_eig, min_eig
            size = int(np.prod(shape))
            names = [n for n in f if n not in STRUCTURE and isinstance(f[n], h5py.Dataset)
                     and f[n].dtype.kind in "fiu" and f[n].size == size]
        if ours and "completed" not in f:
            raise DamagedFile(path, "its completion mask is missing")
        values = {n: _float_array(f, n, shape, path, ours) for n in names}
        if not values:
            if ours:
                raise DamagedFile(path, "it holds no loss or accuracy")
            raise LandscapeError(f"{path!r} holds no loss, accuracy or eigenvalues of shape {shape[::-1]}")
        if ours:  # format 1: [i, j] arrays
            values = {n: v.reshape(shape[::-1]).T.copy() if len(shape) == 2 else v.reshape(shape)
                      for n, v in values.items()}
            completed = np.asarray(f["completed"][()]).astype(bool)
            completed = completed.T.copy() if len(shape) == 2 else completed.reshape(shape)
        else:  # the original tool: every loss starts at -1; point (x[i], y[j]) at flat j*nx + i
            values = {n: v.ravel().reshape(shape) for n, v in values.items()}
            losses = [v for n, v in values.items() if n.endswith(("_loss", "_acc"))]
            first = losses[0] if losses else next(iter(values.values()))
            completed = np.isfinite(first) & (first != -1)
        done = {n: completed.copy() for n in values}
        if not ours and "max_eig" in values and "min_eig" in values:
            # its plot_hessian_eigen.py starts max_eig at -1 and min_eig at 1: a point not yet computed
            unset = (values["max_eig"] == -1) & (values["min_eig"] == 1)
            for n in ("max_eig", "min_eig"):
                done[n] = np.isfinite(values[n]) & ~unset
                values[n] = np.where(done[n], values[n], np.nan)
    arrays = {k: f[k][()] for k in ARRAYS if k in f}
    surface = Surface(coords, values, done, attrs, arrays)
    if version >= 2:
        _verify_points(surface, path, f["point_checksums"][()])
    return surface


def repair_surface(path: str | os.PathLike, coords: Sequence[np.ndarray], inputs: Mapping) -> tuple[Surface, int]:
    """What can be saved from a damaged file of ours for a run over ``coords`` with ``inputs``:
    every point whose checksum verifies keeps its values; the rest are to be computed again.

    Reads around unreadable parts (each row is its own HDF5 chunk). Returns the surface and the
    number of points kept.
    """
    path = os.fspath(path)
    shape = tuple(len(c) for c in reversed(coords))
    def fresh() -> tuple[Surface, int]:  # nothing can be read from it: start again, for this run's inputs
        s = new_surface(coords, (), {})
        s.attrs["inputs"] = json.dumps({**inputs, "metrics": {}}, sort_keys=True)
        return s, 0

    if probe(path).status in ("crashed", "hung", "unopenable"):
        return fresh()
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError):
        return fresh()

    def rows(obj, dtype, fill):
        out = np.full(shape, fill, dtype=dtype)
        if not isinstance(obj, h5py.Dataset) or obj.shape != shape:
            return out, False
        flat_out = out.reshape(-1, shape[-1])
        for r in range(flat_out.shape[0]):
            idx = np.unravel_index(r, shape[:-1]) if len(shape) > 1 else ()
            try:
                flat_out[r] = obj[idx] if len(shape) > 1 else obj[()]
            except (OSError, ValueError, TypeError):
                pass
        return out, True

    with f:
        names = [n for n in f if n not in STRUCTURE and isinstance(f[n], h5py.Dataset)]
        values, done = {}, {}
        for n in names:
            v, ok = rows(f[n], float, np.nan)
            d, ok2 = rows(f["done"][n] if "done" in f and n in f["done"] else None, np.uint8, 0)
            if ok and ok2:
                values[n], done[n] = v, d.astype(bool)
        stored, _ = rows(f["point_checksums"] if "point_checksums" in f else None, np.uint64, 0)
        attrs = {}
        for k in f.attrs:
            try:
                attrs[k] = plain(f.attrs[k])
            except (OSError, ValueError, TypeError):
                pass
        arrays = {}
        for k in ARRAYS:
            try:
                if k in f:
                    arrays[k] = f[k][()]
            except (OSError, ValueError, TypeError):
                pass
    metrics = {n: inputs.get("metrics", {}).get(n, {}) for n in values}
    ok = point_checksums(coords, values, done, {**inputs, "metrics": metrics}) == stored
    for n in values:
        done[n] &= ok
        values[n][~done[n]] = np.nan
    attrs["inputs"] = json.dumps({**inputs, "metrics": metrics}, sort_keys=True)
    surface = Surface([np.asarray(c, dtype=float) for c in coords], values, done, attrs, arrays)
    return surface, int(ok.sum()) if values else 0


def peek_attrs(path: str | os.PathLike) -> dict:
    """The attributes of a file, or {} when it cannot be read (no verification; a file that
    crashes the HDF5 library is read in a child process only, see :func:`landscape.io.h5.probe`)."""
    if probe(os.fspath(path)).status != "ok":
        return {}
    try:
        with h5py.File(os.fspath(path), "r") as f:
            return {k: plain(v) for k, v in f.attrs.items()}
    except Exception:  # noqa: BLE001 - a peek never fails
        return {}


__all__ = [
    "DERIVED", "ConfigMismatch", "Surface", "new_surface", "peek_attrs", "point_checksums", "read_surface",
    "repair_surface", "write_surface",
]
