"""What a quantized training run is: :class:`QuantConfig` (method, bits, scale rule, ...)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from landscape.errors import LandscapeError

METHODS = {"bc": "BinaryConnect", "sr": "stochastic rounding", "r": "deterministic rounding"}
KEEP = ("none", "first", "last", "first,last")
STEPS = ("unit", "raw")


def parse_scale(rule: str | float) -> str | float:
    """``"he"``, ``"std"``, ``"max"``, ``"mean"`` or a positive number (or its string)."""
    if isinstance(rule, str) and rule in ("he", "std", "max", "mean"):
        return rule
    try:
        value = float(rule)
    except (TypeError, ValueError):
        raise LandscapeError(f"`scale` must be he, std, max, mean or a positive number, got {rule!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise LandscapeError(f"`scale` must be he, std, max, mean or a positive number, got {rule!r}")
    return value


@dataclass(frozen=True)
class QuantConfig:
    """How :func:`landscape.quant.quantize_` quantizes a model and trains it.

    - ``method``: ``"bc"`` (BinaryConnect: full-precision weights ``w_r`` are kept, the network
      runs with ``Q_d(w_r)``, the gradient there updates ``w_r``, clipped to the grid's range),
      ``"sr"`` / ``"r"`` (only quantized weights: ``w <- Q(w - step)`` with Q = Q_s / Q_d).
    - ``bits``: 1..8; a symmetric grid of ``2**bits`` levels per layer (1 bit: binary).
    - ``scale``: each layer's outermost level R, set before training, see
      :func:`landscape.quant.quantizer.scale_of`: ``"he"`` (from the layer's fan-in: the grid with
      He's variance; binary ``+-sqrt(2 / fan_in)``), from the initial weights ``"std"`` (the grid
      with their variance), ``"max"`` or ``"mean"`` (of ``|w|``), or a number for every layer.
    - ``keep``: layers left in full precision: ``"none"``, ``"first"``, ``"last"``, ``"first,last"``
      (first and last conv/linear layer in the order the model registers them).
    - ``step``: ``"unit"``: the optimizer works on each layer's weights divided by its scale (so
      binary weights are the paper's +-1, and a learning rate moves every layer by the same share of
      its grid); ``"raw"``: on the weights as they are.
    - ``seed``: seeds the stochastic rounding's own random generator.

    An error names these fields; ``landscape-train`` names its flags (``--quant``, ``--quant-scale``, ...).
    """

    method: str = "bc"
    bits: int = 1
    scale: str | float = "he"
    keep: str = "none"
    step: str = "unit"
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise LandscapeError(f"`method` must be one of {', '.join(METHODS)}, got {self.method!r}")
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= 8:
            raise LandscapeError(f"`bits` must be an integer from 1 to 8, got {self.bits!r}")
        object.__setattr__(self, "scale", parse_scale(self.scale))
        keep = ",".join(sorted(p.strip() for p in str(self.keep).split(",") if p.strip())) or "none"
        if keep not in KEEP:
            raise LandscapeError(f"`keep` must be one of {', '.join(KEEP)}, got {self.keep!r}")
        object.__setattr__(self, "keep", keep)
        if self.step not in STEPS:
            raise LandscapeError(f"`step` must be one of {', '.join(STEPS)}, got {self.step!r}")


__all__ = ["KEEP", "METHODS", "STEPS", "QuantConfig", "parse_scale"]
