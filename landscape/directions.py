"""Directions in parameter space: random (normalized) and interpolation.

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
without a guard against zero. Their files: :mod:`landscape.directions_file`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import torch

from landscape.directions_file import Direction, load_directions, save_directions  # the files: re-exported
from landscape.errors import LandscapeError
from landscape.params import IGNORES, ignored, is_float

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


__all__ = ["NORMS", "SEMANTICS", "Direction", "directions_checksum", "interpolation_direction", "load_directions",
           "normalize_", "random_direction", "random_directions", "save_directions"]
