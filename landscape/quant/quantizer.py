"""Uniform grids and the two roundings onto them: deterministic Q_d and stochastic Q_s.

A :class:`Levels` is the set of levels ``(i + offset) * delta`` for the integers ``i`` (the *codes*)
from ``low`` to ``high``. A k-bit weight grid (:meth:`Levels.symmetric`) has ``2**k`` levels placed
symmetrically about zero, ``offset = 1/2``: ``+-delta/2, +-3 delta/2, ...``, the outermost at
``+-scale`` with ``delta = 2 scale / (2**k - 1)``. It uses every one of the ``2**k`` codes and has
no zero level; with one bit it is binary, ``{-scale, +scale}``, and Q_d is ``scale * sign(w)``
(``sign(0) = +1``).

- Q_d (:func:`round_nearest`): the nearest level; a value half-way between two levels goes up.
- Q_s (:func:`round_stochastic`): one of the two levels around ``w``, the upper one with
  probability equal to ``w``'s fractional position between them, so ``E[Q_s(w)] = w`` inside the
  grid's range. For binary weights that is ``+scale`` with probability
  ``clip((w / scale + 1) / 2, 0, 1)``, BinaryConnect's stochastic binarization.

Both round only onto levels: a value outside the grid's range is first clipped to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCALE_RULES = ("he", "std", "max", "mean")


@dataclass(frozen=True)
class Levels:
    """The levels ``(i + offset) * delta`` for integer codes ``low <= i <= high``."""

    delta: float
    low: int
    high: int
    offset: float = 0.5

    def __post_init__(self):
        if not (self.delta > 0 and math.isfinite(self.delta)):
            raise ValueError(f"grid spacing must be positive and finite, got {self.delta}")
        if self.high < self.low:
            raise ValueError(f"empty grid: codes {self.low}..{self.high}")

    @classmethod
    def symmetric(cls, bits: int, scale: float) -> Levels:
        """``2**bits`` levels symmetric about 0, the outermost at ``+-scale``."""
        if not 1 <= bits <= 16:
            raise ValueError(f"bits must be 1..16, got {bits}")
        half = 2 ** (bits - 1)
        return cls(delta=2.0 * scale / (2 * half - 1), low=-half, high=half - 1, offset=0.5)

    @property
    def size(self) -> int:
        """Number of levels."""
        return self.high - self.low + 1

    @property
    def lo(self) -> float:
        """The lowest level."""
        return (self.low + self.offset) * self.delta

    @property
    def hi(self) -> float:
        """The highest level."""
        return (self.high + self.offset) * self.delta

    def levels(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """All levels, ascending."""
        return (torch.arange(self.low, self.high + 1, dtype=dtype) + self.offset) * self.delta


def matched_scale(std: float, bits: int) -> float:
    """The outermost level ``R`` of the symmetric ``2**bits``-level grid whose levels, used equally
    often, have standard deviation ``std``: ``R = std * sqrt(3 (2^k - 1) / (2^k + 1))``. Binary:
    ``R = std``; many bits: ``R -> sqrt(3) std``, the bound of the uniform distribution of that
    std (BinaryConnect's ``H`` for its U(-H, H) initialization)."""
    n = 2**bits
    return std * math.sqrt(3.0 * (n - 1) / (n + 1))


def scale_of(weight: torch.Tensor, rule: str | float = "he", bits: int = 1) -> float:
    """A layer's grid scale ``R`` (its outermost level), set once, before training.

    ``"he"`` (the default): from the layer's shape, the grid matched (:func:`matched_scale`) to
    He's standard deviation ``sqrt(2 / fan_in)``: a quantized layer then passes on the variance of
    its input as a He-initialized one does (binary: ``+-sqrt(2 / fan_in)``). It equals ``"std"``
    (in expectation) for the He-normal convs that ``landscape-train`` initializes, and stays sound
    for layers initialized tiny (the original tool's N(0, 1e-3) linear layers, whose binary copy
    at that scale would leave BatchNorm's epsilon and its initial running variance dominant, and a
    final classifier's logits near 0). Like BinaryConnect's ``H``, which its code computes from the
    layer's fan-in and fan-out. ``"std"``: the grid matched to the initial weights' standard
    deviation. ``"max"``: ``max |w|``, every initial weight inside the grid. ``"mean"``:
    ``mean |w|``, the binary scale closest to the initial weights in least squares (XNOR-Net's BWN),
    kept fixed. A number: that ``R`` for every layer (``1.0``: the paper's +-1 binary weights).
    """
    w = weight.detach().double()
    if isinstance(rule, int | float):
        value = float(rule)
    elif rule == "he":
        fan_in = w[0].numel() if w.ndim > 1 else w.numel()
        value = matched_scale(math.sqrt(2.0 / fan_in), bits)
    elif rule == "std":
        value = matched_scale(float(w.std(unbiased=False)), bits) if w.numel() > 1 else float(w.abs().max())
    elif rule == "max":
        value = float(w.abs().max())
    elif rule == "mean":
        value = float(w.abs().mean())
    else:
        raise ValueError(f"unknown scale rule {rule!r}: {', '.join(SCALE_RULES)} or a positive number")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"the scale rule {rule!r} gives {value} for a weight of shape {tuple(weight.shape)} "
                         "(all zero?)")
    return value


def codes(w: torch.Tensor, grid: Levels) -> torch.Tensor:
    """Codes (as floats) of Q_d(w): the index of the nearest level."""
    return torch.floor(w / grid.delta - grid.offset + 0.5).clamp_(grid.low, grid.high)


def round_nearest(w: torch.Tensor, grid: Levels) -> torch.Tensor:
    """Q_d: the nearest level of ``grid`` to each element of ``w`` (clipped to the grid's range)."""
    return (codes(w, grid) + grid.offset) * grid.delta


def round_stochastic(w: torch.Tensor, grid: Levels, generator: torch.Generator | None = None) -> torch.Tensor:
    """Q_s: the level below or above each element of ``w`` (clipped to the grid's range), the upper
    one with probability equal to the fractional position of ``w`` between them (unbiased)."""
    u = (w / grid.delta - grid.offset).clamp_(grid.low, grid.high)
    draw = torch.rand(w.shape, generator=generator, device=w.device, dtype=u.dtype)
    # floor(u + U), U ~ U[0, 1), is floor(u) + 1 with probability u - floor(u), else floor(u)
    return (torch.floor(u + draw).clamp_(grid.low, grid.high) + grid.offset) * grid.delta


def clip(w: torch.Tensor, grid: Levels) -> torch.Tensor:
    """``w`` clipped to the grid's range ``[lo, hi]``."""
    return w.clamp(grid.lo, grid.hi)


__all__ = ["SCALE_RULES", "Levels", "clip", "codes", "matched_scale", "round_nearest", "round_stochastic", "scale_of"]
