"""Directions in parameter space: random (normalized), interpolation, and their files.

Normalization (Li et al., "Visualizing the Loss Landscape of Neural Nets"):

- ``filter``: each filter ``d_i`` (output channel of a conv, row of a linear layer) is rescaled to
  the norm of the matching filter of the model, ``d_i <- d_i / ||d_i|| * ||theta_i||``;
- ``layer``: the same per tensor; ``weight``: the same over the whole model; ``none``: raw Gaussian.

With ``ignore="biasbn"`` every 1-D tensor (biases, BatchNorm weights and statistics) gets a zero
direction; otherwise a 1-D tensor is normalized as one filter.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import h5py
import numpy as np
import torch

from landscape.errors import LandscapeError
from landscape.files import replacing
from landscape.params import is_float

Direction = dict[str, torch.Tensor]
NORMS = ("filter", "layer", "weight", "none")
IGNORES = ("biasbn", "none")
EPS = 1e-10


def _check(norm: str, ignore: str) -> None:
    if norm not in NORMS:
        raise LandscapeError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if ignore not in IGNORES:
        raise LandscapeError(f"ignore must be one of {', '.join(IGNORES)}, got {ignore!r}")


def normalize_(
    direction: Direction, origin: Mapping[str, torch.Tensor], norm: str = "filter", ignore: str = "biasbn"
) -> Direction:
    """Rescale ``direction`` in place against ``origin`` (see the module docstring)."""
    _check(norm, ignore)
    active = []
    for name, d in direction.items():
        w = origin[name]
        if not is_float(d) or (d.dim() <= 1 and ignore == "biasbn"):
            d.zero_()
            continue
        active.append(name)
        if norm == "filter":
            if d.dim() <= 1:
                d.mul_(w.norm() / (d.norm() + EPS))
            else:
                dn = d.flatten(1).norm(dim=1)
                wn = w.flatten(1).norm(dim=1)
                d.mul_((wn / (dn + EPS)).view(-1, *([1] * (d.dim() - 1))))
        elif norm == "layer":
            d.mul_(w.norm() / (d.norm() + EPS))
    if norm == "weight" and active:
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
) -> Direction:
    """A Gaussian direction shaped like ``origin``, normalized by :func:`normalize_`.

    Drawn on the CPU in float32 in the order of ``origin``, so a seed gives the same direction
    on every machine and every MPI rank.
    """
    _check(norm, ignore)
    d = {
        k: (torch.randn(v.shape, generator=generator, dtype=torch.float32) if is_float(v) else torch.zeros(v.shape))
        for k, v in origin.items()
    }
    cpu_origin = {k: v.detach().cpu().float() for k, v in origin.items()}
    return normalize_(d, cpu_origin, norm, ignore)


def random_directions(
    origin: Mapping[str, torch.Tensor], count: int, norm: str = "filter", ignore: str = "biasbn", seed: int = 0
) -> list[Direction]:
    """``count`` independent normalized directions from one seeded generator."""
    g = torch.Generator().manual_seed(seed)
    return [random_direction(origin, norm, ignore, g) for _ in range(count)]


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


AXES = ("xdirection", "ydirection")


def save_directions(path: str | os.PathLike, directions: Sequence[Direction], attrs: Mapping | None = None) -> None:
    """Write directions to HDF5, atomically (a temporary file, then rename).

    Layout as in the original tool: group ``xdirection`` (``ydirection``) holding datasets
    ``"0"``, ``"1"``, ... in parameter order, plus a ``names`` attribute with the tensor names.
    """
    with replacing(path) as tmp, h5py.File(tmp, "w") as f:
        for axis, d in zip(AXES, directions, strict=False):
            g = f.create_group(axis)
            g.attrs["names"] = np.array(list(d), dtype=h5py.string_dtype())
            for i, t in enumerate(d.values()):
                g.create_dataset(str(i), data=t.detach().cpu().float().numpy())
        for k, v in (attrs or {}).items():
            f.attrs[k] = v


def load_directions(path: str | os.PathLike, names: Sequence[str] | None = None) -> tuple[list[Direction], dict]:
    """Read the directions in ``path`` (and its attributes).

    ``names`` (the model's tensor names, in order) is used when the file has no ``names``
    attribute, as in files written by the original tool.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise LandscapeError(f"directions file {path!r} does not exist")
    try:
        with h5py.File(path, "r") as f:
            out = []
            for axis in AXES:
                if axis not in f:
                    continue
                g = f[axis]
                keys = sorted(g.keys(), key=int)
                file_names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("names", [])]
                labels = file_names or list(names or [])
                if len(labels) != len(keys):
                    raise LandscapeError(
                        f"{path!r}: {axis} has {len(keys)} tensors but the model has {len(labels)}"
                    )
                out.append({n: torch.from_numpy(np.asarray(g[k][()])) for n, k in zip(labels, keys, strict=True)})
            attrs = {k: v for k, v in f.attrs.items()}
    except OSError as exc:
        raise LandscapeError(f"{path!r} is not a readable HDF5 directions file ({exc})") from None
    if not out:
        raise LandscapeError(f"{path!r} holds no xdirection group")
    return out, attrs
