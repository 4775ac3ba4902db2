"""The directions file: directions in the original tool's layout (groups ``xdirection``,
``ydirection``, ``zdirection`` of datasets ``"0"``, ``"1"``, ... in parameter order) with the
tensor names, every dataset with HDF5's fletcher32 checksum and the whole file with a SHA-256 of
its contents, verified on reading (:class:`landscape.h5.DamagedFile`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import h5py
import numpy as np
import torch

from landscape.errors import LandscapeError
from landscape.h5 import attr, dataset, opened, plain, writing
from landscape.params import LazyDirection, scratch

Direction = dict[str, torch.Tensor]

AXES = ("xdirection", "ydirection", "zdirection")


def write_directions(f: h5py.File, directions: Sequence[Direction], attrs: Mapping | None = None) -> None:
    """Write directions into an open file (see :func:`save_directions`); no checksum yet."""
    for axis, d in zip(AXES, directions, strict=False):
        g = f.create_group(axis)
        g.attrs["names"] = np.array(list(d), dtype=h5py.string_dtype())
        buffer = scratch([d])
        for i, name in enumerate(d):
            t = d.read_(name, buffer) if isinstance(d, LazyDirection) else d[name]
            dataset(g, str(i), t.detach().cpu().float().numpy())
            del t  # before the next one is made (a lazy direction makes them one at a time)
    for k, v in (attrs or {}).items():
        f.attrs[k] = attr(v)

def save_directions(path: str | os.PathLike, directions: Sequence[Direction], attrs: Mapping | None = None) -> None:
    """Write directions to HDF5, atomically (a temporary file, then rename).

    Layout as in the original tool: group ``xdirection`` (``ydirection``, ``zdirection``) holding
    datasets ``"0"``, ``"1"``, ... in parameter order, plus a ``names`` attribute with the tensor
    names; fletcher32 on every dataset and ``content_sha256`` over the file.
    """
    with writing(path) as f:
        write_directions(f, directions, attrs)


def _read_axis(f: h5py.File, axis: str, path: str, names: Sequence[str] | None) -> Direction:
    g = f[axis]
    if not isinstance(g, h5py.Group) or not all(k.isdigit() for k in g.keys()):
        raise LandscapeError(f"{path!r}: {axis} is not a group of numbered tensors")
    keys = sorted(g.keys(), key=int)
    file_names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("names", [])]
    labels = file_names or list(names or [])
    if len(labels) != len(keys):
        raise LandscapeError(f"{path!r}: {axis} has {len(keys)} tensors but the model has {len(labels)}")
    tensors = {}
    for n, k in zip(labels, keys, strict=True):
        arr = np.asarray(g[k][()])
        if arr.dtype.kind != "f":
            raise LandscapeError(f"{path!r}: {axis}/{k} is not a float array")
        tensors[n] = torch.from_numpy(arr.astype(np.float32, copy=False))
    return tensors


def load_directions(path: str | os.PathLike, names: Sequence[str] | None = None) -> tuple[list[Direction], dict]:
    """Read the directions in ``path`` (and its attributes).

    ``names`` (the model's tensor names, in order) is used when the file has no ``names``
    attribute, as in files written by the original tool.
    """
    path = os.fspath(path)

    def ours(f) -> bool:
        return any(k in f.attrs for k in ("content_sha256", "landscape_version", "dir_type"))

    with opened(path, "directions file", ours) as (f, _):
        out = [_read_axis(f, axis, path, names) for axis in AXES if axis in f]
        attrs = {k: plain(v) for k, v in f.attrs.items()}
    if not out:
        raise LandscapeError(f"{path!r} holds no xdirection group")
    return out, attrs
