"""The directions file: directions in the original tool's layout (groups ``xdirection``,
``ydirection``, ``zdirection`` of datasets ``"0"``, ``"1"``, ... in parameter order) with the
tensor names, every dataset with HDF5's fletcher32 checksum and the whole file with a SHA-256 of
its contents, verified on reading (:class:`landscape.io.h5.DamagedFile`)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import h5py
import numpy as np
import torch

from landscape.errors import LandscapeError
from landscape.io.h5 import attr, dataset, empty_dataset, opened, plain, writing
from landscape.space.params import LazyDirection, block_numel, row_blocks, scratch

Direction = dict[str, torch.Tensor]

AXES = ("xdirection", "ydirection", "zdirection")


def write_directions(f: h5py.File, directions: Sequence[Direction], attrs: Mapping | None = None) -> None:
    """Write directions into an open file (see :func:`save_directions`); no checksum yet."""
    for axis, d in zip(AXES, directions, strict=False):
        g = f.create_group(axis)
        g.attrs["names"] = np.array(list(d), dtype=h5py.string_dtype())
        buffer = scratch([d])
        for i, name in enumerate(d):
            if not isinstance(d, LazyDirection):
                dataset(g, str(i), d[name].detach().cpu().float().numpy())
                continue
            parts = list(d.blocks(name, buffer)) if row_blocks(d.shape_of(name)) is None else None
            if parts is not None:  # made at once
                dataset(g, str(i), parts[0][1].numpy())
                continue
            ds = empty_dataset(g, str(i), d.shape_of(name))  # a large tensor, written block by block
            for rows, block in d.blocks(name, buffer):
                ds[rows] = block.numpy()
    for k, v in (attrs or {}).items():
        f.attrs[k] = attr(v)

def save_directions(path: str | os.PathLike, directions: Sequence[Direction], attrs: Mapping | None = None) -> None:
    """Write directions to HDF5, atomically (a temporary file, then rename).

    Layout as in the original tool: group ``xdirection`` (``ydirection``, ``zdirection``) holding
    datasets ``"0"``, ``"1"``, ... in parameter order, plus a ``names`` attribute with the tensor
    names; fletcher32 on every dataset and ``content_sha256`` over the file.
    """
    size = sum(4 * math.prod(d.shape_of(k) if isinstance(d, LazyDirection) else d[k].shape) for d in directions
               for k in d)
    with writing(path, size) as f:
        write_directions(f, directions, attrs)


def _axis(f: h5py.File, axis: str, path: str, names: Sequence[str] | None) -> tuple[h5py.Group, list, list]:
    """The group of ``axis``, its tensor names (the file's, else ``names``) and dataset keys, in order."""
    g = f[axis]
    if not isinstance(g, h5py.Group) or not all(k.isdigit() for k in g.keys()):
        raise LandscapeError(f"{path!r}: {axis} is not a group of numbered tensors")
    keys = sorted(g.keys(), key=int)
    file_names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("names", [])]
    labels = file_names or list(names or [])
    if len(labels) != len(keys):
        raise LandscapeError(f"{path!r}: {axis} has {len(keys)} tensors but the model has {len(labels)}")
    return g, labels, keys


def _read_axis(f: h5py.File, axis: str, path: str, names: Sequence[str] | None) -> Direction:
    g, labels, keys = _axis(f, axis, path, names)
    tensors = {}
    for n, k in zip(labels, keys, strict=True):
        arr = np.asarray(g[k][()])
        if arr.dtype.kind != "f":
            raise LandscapeError(f"{path!r}: {axis}/{k} is not a float array")
        tensors[n] = torch.from_numpy(arr.astype(np.float32, copy=False))
    return tensors


class FileDirection(LazyDirection):
    """One direction of a directions file, read tensor by tensor when asked (the file verified
    once when opened by :func:`load_directions`; every read checked by HDF5's fletcher32)."""

    def __init__(self, path: str, axis: str, keys: Mapping[str, str], shapes: Mapping[str, tuple[int, ...]]):
        self.path, self.axis, self._keys, self._shapes = path, axis, dict(keys), dict(shapes)
        self._f: h5py.File | None = None

    def _group(self) -> h5py.Group:
        if self._f is None:
            self._f = h5py.File(self.path, "r")
        return self._f[self.axis]

    def read_(self, name: str, out: torch.Tensor) -> torch.Tensor:
        shape = self._shapes[name]
        view = out[:int(np.prod(shape, dtype=np.int64))].view(shape)
        try:
            self._group()[self._keys[name]].read_direct(view.numpy())
        except (OSError, ValueError, KeyError) as exc:
            raise LandscapeError(f"{self.path!r}: {self.axis}/{self._keys[name]} cannot be read ({exc})") from None
        return view

    def __getitem__(self, name: str) -> torch.Tensor:
        return self.read_(name, torch.empty(int(np.prod(self._shapes[name], dtype=np.int64)), dtype=torch.float32))

    def scratch_numel(self, name: str) -> int:
        return block_numel(self._shapes[name])

    def blocks(self, name: str, out: torch.Tensor):
        shape = self._shapes[name]
        plan = row_blocks(shape)
        if plan is None:
            yield slice(None), self.read_(name, out)
            return
        row = int(np.prod(shape)) // shape[0]
        for start, stop in plan:
            view = out[:(stop - start) * row].view(stop - start, *shape[1:])
            try:
                self._group()[self._keys[name]].read_direct(view.numpy(), source_sel=np.s_[start:stop])
            except (OSError, ValueError, KeyError) as exc:
                raise LandscapeError(f"{self.path!r}: {self.axis}/{self._keys[name]} cannot be read ({exc})") from None
            yield slice(start, stop), view

    def shape_of(self, name: str) -> tuple[int, ...]:
        return self._shapes[name]

    def __contains__(self, name) -> bool:
        return name in self._shapes

    def __iter__(self):
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)

    def __getstate__(self):  # an open file does not travel
        return {**self.__dict__, "_f": None}


def _stream_axis(f: h5py.File, axis: str, path: str, names: Sequence[str] | None) -> FileDirection:
    g, labels, keys = _axis(f, axis, path, names)
    for k in keys:
        if g[k].dtype.kind != "f":
            raise LandscapeError(f"{path!r}: {axis}/{k} is not a float array")
    return FileDirection(path, axis, dict(zip(labels, keys, strict=True)),
                         {n: tuple(g[k].shape) for n, k in zip(labels, keys, strict=True)})


def load_directions(path: str | os.PathLike, names: Sequence[str] | None = None,
                    stream: bool = False) -> tuple[list[Direction], dict]:
    """Read the directions in ``path`` (and its attributes).

    ``names`` (the model's tensor names, in order) is used when the file has no ``names``
    attribute, as in files written by the original tool. ``stream``: :class:`FileDirection`
    objects that read each tensor when asked, instead of the tensors.
    """
    path = os.fspath(path)

    def ours(f) -> bool:
        return any(k in f.attrs for k in ("content_sha256", "landscape_version", "dir_type"))

    read = _stream_axis if stream else _read_axis
    with opened(path, "directions file", ours) as (f, _):
        out = [read(f, axis, path, names) for axis in AXES if axis in f]
        attrs = {k: plain(v) for k, v in f.attrs.items()}
    if not out:
        raise LandscapeError(f"{path!r} holds no xdirection group")
    return out, attrs
