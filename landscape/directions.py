"""Directions in parameter space: random (normalized), interpolation, and their files.

Normalization (Li et al., "Visualizing the Loss Landscape of Neural Nets"):

- ``filter``: each filter ``d_i`` (output channel of a conv, row of a linear layer) is rescaled to
  the norm of the matching filter of the model, ``d_i <- d_i / ||d_i|| * ||theta_i||``;
- ``layer``: the same per tensor; ``weight``: the same over the whole model; ``none``: raw Gaussian;
- ``dfilter``/``dlayer``: each filter/tensor of the direction scaled to unit norm.

With ``ignore="biasbn"`` every 1-D tensor (biases, BatchNorm weights and statistics) gets a zero
direction; otherwise a 1-D tensor is normalized as one filter.

``semantics="original"`` reproduces the original loss-landscape tool's rules exactly where they
differ from ours: a 1-D tensor that is not ignored gets a direction *equal to the weights
themselves*, ``weight`` multiplies element-wise (``d * w``, per tensor) and ``layer`` divides
without a guard against zero. Files: the directions of a run are written in the original tool's
layout (groups ``xdirection``, ``ydirection``, ``zdirection`` of datasets ``"0"``, ``"1"``, ...)
with the tensor names, every dataset with HDF5's fletcher32 checksum and the whole file with a
SHA-256 of its contents, verified on reading (:class:`landscape.surface_file.DamagedFile`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence

import h5py
import numpy as np
import torch

from landscape.errors import LandscapeError
from landscape.h5 import attr, dataset, opened, plain, writing
from landscape.params import IGNORES, ignored, is_float

Direction = dict[str, torch.Tensor]
NORMS = ("filter", "layer", "weight", "dfilter", "dlayer", "none")
SEMANTICS = ("landscape", "original")
EPS = 1e-10


def _check(norm: str, ignore: str, semantics: str = "landscape") -> None:
    if norm not in NORMS:
        raise LandscapeError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if ignore not in IGNORES:
        raise LandscapeError(f"ignore must be one of {', '.join(IGNORES)}, got {ignore!r}")
    if semantics not in SEMANTICS:
        raise LandscapeError(f"semantics must be one of {', '.join(SEMANTICS)}, got {semantics!r}")


def _per_filter(d: torch.Tensor, target: torch.Tensor | None) -> None:
    """Scale each filter (first-dimension slice) of ``d`` to the norm of ``target``'s, or to 1."""
    if d.dim() <= 1:
        d.mul_((target.norm() if target is not None else 1.0) / (d.norm() + EPS))
        return
    dn = d.flatten(1).norm(dim=1)
    tn = target.flatten(1).norm(dim=1) if target is not None else torch.ones_like(dn)
    d.mul_((tn / (dn + EPS)).view(-1, *([1] * (d.dim() - 1))))


def normalize_(
    direction: Direction, origin: Mapping[str, torch.Tensor], norm: str = "filter", ignore: str = "biasbn",
    semantics: str = "landscape",
) -> Direction:
    """Rescale ``direction`` in place against ``origin`` (see the module docstring)."""
    _check(norm, ignore, semantics)
    original = semantics == "original"
    active = []
    for name, d in direction.items():
        w = origin[name]
        if not is_float(d) or ignored(d, ignore):
            d.zero_()
            continue
        if original and d.dim() <= 1:  # the original tool: a kept bias/BN direction is the weights
            d.copy_(w)
            continue
        active.append(name)
        if norm == "filter":
            _per_filter(d, w)
        elif norm == "dfilter":
            _per_filter(d, None)
        elif norm == "layer":
            d.mul_(w.norm() / (d.norm() if original else d.norm() + EPS))
        elif norm == "dlayer":
            d.div_(d.norm() if original else d.norm() + EPS)
        elif norm == "weight" and original:
            d.mul_(w)
    if norm == "weight" and not original and active:
        dn = torch.sqrt(sum(direction[k].double().pow(2).sum() for k in active))
        wn = torch.sqrt(sum(origin[k].double().pow(2).sum() for k in active))
        scale = float(wn / (dn + EPS))
        for k in active:
            direction[k].mul_(scale)
    return direction


def random_direction(
    origin: Mapping[str, torch.Tensor],
    norm: str = "filter",
    ignore: str = "biasbn",
    generator: torch.Generator | None = None,
    semantics: str = "landscape",
) -> Direction:
    """A Gaussian direction shaped like ``origin``, normalized by :func:`normalize_`.

    Drawn on the CPU in float32 in the order of ``origin``, so a seed gives the same direction
    on every machine and every MPI rank.
    """
    _check(norm, ignore, semantics)
    d = {
        k: (torch.randn(v.shape, generator=generator, dtype=torch.float32) if is_float(v) else torch.zeros(v.shape))
        for k, v in origin.items()
    }
    cpu_origin = {k: v.detach().cpu().float() for k, v in origin.items()}
    return normalize_(d, cpu_origin, norm, ignore, semantics)


def per_axis(value: str | Sequence[str], count: int, what: str) -> list[str]:
    """One setting per axis: a single value for all, or exactly ``count`` of them."""
    if isinstance(value, str):
        return [value] * count
    values = list(value)
    if len(values) < count:
        raise LandscapeError(f"{count} directions need {count} {what} settings, got {len(values)}")
    return values[:count]


def random_directions(
    origin: Mapping[str, torch.Tensor], count: int, norm: str | Sequence[str] = "filter",
    ignore: str | Sequence[str] = "biasbn", seed: int = 0, semantics: str = "landscape",
) -> list[Direction]:
    """``count`` independent normalized directions from one seeded generator; ``norm`` and
    ``ignore`` may be given per direction (x, y, z)."""
    g = torch.Generator().manual_seed(seed)
    norms, ignores = per_axis(norm, count, "norm"), per_axis(ignore, count, "ignore")
    return [random_direction(origin, n, i, g, semantics) for n, i in zip(norms, ignores, strict=True)]


def directions_checksum(directions: Sequence[Mapping[str, torch.Tensor]]) -> str:
    """SHA-256 of the directions' names and float32 bytes: equal on every rank or not at all."""
    h = hashlib.sha256()
    for d in directions:
        for name, t in d.items():
            h.update(name.encode())
            h.update(t.detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()


def interpolation_direction(origin: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]) -> Direction:
    """``target - origin``: a = 0 is the first model, a = 1 the second. Not normalized."""
    missing = [k for k in origin if k not in target]
    if missing:
        raise LandscapeError(f"the second model lacks {', '.join(missing[:3])}: it is not the same architecture")
    bad = [k for k in origin if tuple(origin[k].shape) != tuple(target[k].shape)]
    if bad:
        raise LandscapeError(f"the second model differs in shape at {', '.join(bad[:3])}")
    return {
        k: (target[k].detach().cpu().float() - v.detach().cpu().float()) if is_float(v) else torch.zeros(v.shape)
        for k, v in origin.items()
    }


AXES = ("xdirection", "ydirection", "zdirection")


def write_directions(f: h5py.File, directions: Sequence[Direction], attrs: Mapping | None = None) -> None:
    """Write directions into an open file (see :func:`save_directions`); no checksum yet."""
    for axis, d in zip(AXES, directions, strict=False):
        g = f.create_group(axis)
        g.attrs["names"] = np.array(list(d), dtype=h5py.string_dtype())
        for i, t in enumerate(d.values()):
            dataset(g, str(i), t.detach().cpu().float().numpy())
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
