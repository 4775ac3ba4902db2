"""Truncated-SVD factorization of a network's layers (Denton et al., NeurIPS'14; Jaderberg et al.,
BMVC'14): ``factorize(model, rank_ratio=R)`` or ``factorize(model, energy=E)``.

A ``Linear(in, out)`` of weight ``W = U S V^T`` becomes ``Linear(in, r, bias=False)`` with weight
``sqrt(S_r) V_r^T`` followed by ``Linear(r, out)`` with weight ``U_r sqrt(S_r)`` and the bias.
A ``Conv2d(in, out, k x k)`` is factorized through its kernel reshaped to ``out x (in k k)``: a
``k x k`` conv with ``r`` filters (its stride, padding, dilation and padding mode kept, no bias),
then a 1x1 conv to ``out`` with the bias. Both compute the layer with its weight replaced by the
best rank-``r`` approximation (Eckart-Young). ``r = ceil(R * min(out, in k k))``, or the smallest
rank keeping a share ``E`` of the squared singular values; a layer is factorized only where that
saves weights, ``r (out + in k k) < out in k k``, and kept as it is otherwise, as are grouped and
transposed convolutions. Each factorized layer is a :class:`LowRank` (``name.0`` and ``name.1``
in the state dict); :func:`apply_ranks_` shapes a fresh network so a factorized state dict loads.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from fractions import Fraction

import torch
from torch import nn

from landscape.errors import LandscapeError


class LowRank(nn.Sequential):
    """A layer factorized to rank :attr:`rank`: ``[0]`` maps to ``rank`` features or channels
    (no bias), ``[1]`` maps them to the layer's outputs (with its bias)."""

    @property
    def rank(self) -> int:
        first = self[0]
        return first.out_features if isinstance(first, nn.Linear) else first.out_channels


def _eligible(module: nn.Module) -> bool:
    if type(module) is nn.Linear:
        return True
    return type(module) is nn.Conv2d and module.groups == 1


def _matrix_shape(module: nn.Module) -> tuple[int, int]:
    """``(out, in k k)``: the shape of the weight as the matrix that is factorized."""
    w = module.weight
    return w.shape[0], w[0].numel()


def saves_weights(module: nn.Module, rank: int) -> bool:
    """Whether rank ``rank`` has fewer weights than the layer: ``r (out + in k k) < out in k k``."""
    out, fan = _matrix_shape(module)
    return rank * (out + fan) < out * fan


def choose_rank(singular: torch.Tensor, shape: tuple[int, int], rank_ratio: float | None = None,
                energy: float | None = None) -> int:
    """``ceil(rank_ratio * min(shape))``, or the smallest rank whose singular values keep a share
    ``energy`` of the sum of their squares (at least 1)."""
    if rank_ratio is not None:  # exactly: 0.3 * 10 is 3, not 3.0000000000000004
        return max(1, math.ceil(Fraction(str(rank_ratio)) * min(shape)))
    squares = singular.double() ** 2
    total = float(squares.sum())
    if total == 0.0:
        return 1
    kept = torch.cumsum(squares, 0) / total
    first = int(torch.searchsorted(kept, torch.tensor(float(energy), dtype=kept.dtype)).item())
    return min(len(singular), first + 1)  # energy 1 may sit a rounding error above the last share


def _empty_pair(module: nn.Module, rank: int) -> LowRank:
    """The two layers of rank ``rank`` that replace ``module`` (weights not set)."""
    dtype, device = module.weight.dtype, module.weight.device
    bias = module.bias is not None
    if isinstance(module, nn.Linear):
        first = nn.Linear(module.in_features, rank, bias=False, device=device, dtype=dtype)
        second = nn.Linear(rank, module.out_features, bias=bias, device=device, dtype=dtype)
    else:
        first = nn.Conv2d(module.in_channels, rank, module.kernel_size, stride=module.stride, padding=module.padding,
                          dilation=module.dilation, bias=False, padding_mode=module.padding_mode, device=device,
                          dtype=dtype)
        second = nn.Conv2d(rank, module.out_channels, 1, bias=bias, device=device, dtype=dtype)
    return LowRank(first, second)


def check_ratio(rank_ratio: float | None, energy: float | None) -> None:
    """Refuse anything but one of ``rank_ratio`` and ``energy``, in (0, 1]."""
    if (rank_ratio is None) == (energy is None):
        raise LandscapeError("give one of `rank_ratio` and `energy`")
    for name, value in (("rank_ratio", rank_ratio), ("energy", energy)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or not 0 < value <= 1):
            raise LandscapeError(f"`{name}` must be in (0, 1], got {value!r}")


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Linear and Conv2d layers (by name, each module once) outside any :class:`LowRank`."""
    if any(isinstance(m, LowRank) for m in model.modules()):
        raise LandscapeError("the network is factorized already: factorize the original network instead")
    return [(name, m) for name, m in model.named_modules() if name and _eligible(m)]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def factorize_layer(module: nn.Module, rank: int) -> LowRank:
    """The :class:`LowRank` pair of rank ``rank`` that computes ``module`` (a Linear or an
    ungrouped Conv2d) with its weight replaced by its best rank-``rank`` approximation (the SVD in
    float64, ``sqrt`` of the singular values on each side); at full rank, the layer itself."""
    if not _eligible(module):
        raise LandscapeError(f"only Linear and ungrouped Conv2d layers are factorized, not {type(module).__name__}")
    rows, cols = _matrix_shape(module)
    if not 1 <= rank <= min(rows, cols):
        raise LandscapeError(f"rank {rank} does not fit a {rows}x{cols} weight")
    w = module.weight.detach()
    u, s, vh = torch.linalg.svd(w.reshape(rows, cols).double(), full_matrices=False)
    root = s[:rank].sqrt()
    pair = _empty_pair(module, rank)
    with torch.no_grad():
        pair[0].weight.copy_((root[:, None] * vh[:rank]).reshape(pair[0].weight.shape))
        pair[1].weight.copy_((u[:, :rank] * root).reshape(pair[1].weight.shape))
        if module.bias is not None:
            pair[1].bias.copy_(module.bias)
    return pair


def factorize(model: nn.Module, rank_ratio: float | None = None, energy: float | None = None) -> nn.Module:
    """A copy of ``model`` with every Linear and (ungrouped) Conv2d layer replaced by its truncated
    SVD where that saves weights (see the module docstring); ``model`` is left as it is."""
    check_ratio(rank_ratio, energy)
    out = copy.deepcopy(model)
    for name, module in _layers(out):
        rows, cols = _matrix_shape(module)
        singular = torch.linalg.svdvals(module.weight.detach().reshape(rows, cols).double())
        r = choose_rank(singular, (rows, cols), rank_ratio, energy)
        if saves_weights(module, r):
            _set(out, name, factorize_layer(module, r))
    return out


def ranks(model: nn.Module) -> dict[str, int]:
    """``{layer name: rank}`` of the factorized layers of ``model``."""
    return {name: m.rank for name, m in model.named_modules() if isinstance(m, LowRank)}


def unfactorized_names(model: nn.Module) -> set[str]:
    """The state-dict names ``model`` would have with its :class:`LowRank` layers whole
    (``layer.0.weight``, ``layer.1.weight``, ``layer.1.bias`` -> ``layer.weight``, ``layer.bias``):
    what a factorized network shares with the network it was made from."""
    pairs = {name for name, m in model.named_modules() if isinstance(m, LowRank)}
    out = set()
    for key in model.state_dict():
        layer, _, rest = key.rpartition(".")
        parent, _, index = layer.rpartition(".")
        out.add(f"{parent}.{rest}" if parent in pairs and index in ("0", "1") else key)
    return out


def apply_ranks_(model: nn.Module, layer_ranks: Mapping[str, int]) -> nn.Module:
    """Replace the named layers of ``model`` by :class:`LowRank` pairs of the given ranks (their
    weights are to be loaded: a factorized checkpoint's state dict fits afterwards); returns
    ``model``."""
    for name, rank in layer_ranks.items():
        try:
            module = model.get_submodule(name)
        except AttributeError:
            module = None
        if module is None or not _eligible(module):
            raise LandscapeError(f"the checkpoint's low-rank layer {name!r} is not a Linear or Conv2d layer of "
                                 "the architecture")
        if not 1 <= rank <= min(_matrix_shape(module)):
            raise LandscapeError(f"the checkpoint's rank {rank} of {name!r} does not fit its "
                                 f"{'x'.join(map(str, _matrix_shape(module)))} weight")
        _set(model, name, _empty_pair(module, int(rank)))
    return model


__all__ = ["LowRank", "apply_ranks_", "check_ratio", "choose_rank", "factorize", "factorize_layer", "ranks",
           "saves_weights", "unfactorized_names"]
