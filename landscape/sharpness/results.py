"""What a sharpness measure returns: frozen results that say what they cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Sharpness:
    """One measure at one minimizer: ``value`` (a loss increase; :func:`epsilon`: in percent of
    ``1 + loss``), its standard error (NaN where it is not an estimate), the ``radius`` and
    normalization it was taken with, the loss at the minimizer, and what it cost: ``forward`` and
    ``backward`` passes over the data (every batch once), and seconds."""

    measure: str
    value: float
    stderr: float
    radius: float
    norm: str
    loss: float
    forward: int
    backward: int
    seconds: float


@dataclass(frozen=True)
class AverageCase(Sharpness):
    """:func:`average_case`'s result; ``values`` holds every sample's loss increase."""

    samples: int = 0
    converged: bool = False
    values: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)


@dataclass(frozen=True)
class WorstCase(Sharpness):
    """:func:`worst_case`'s result: ``delta`` is the maximizer (tensors named like the model's
    parameters, on the CPU; None for m-sharpness, where every batch has its own)."""

    p: int | str = 2
    steps: int = 0
    m: int | None = None
    delta: dict | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Curvature(Sharpness):
    """:func:`curvature`'s result: ``value`` is the second derivative of the loss along the
    direction (1D) or the largest eigenvalue of the fitted 2x2 Hessian (2D, in ``hessian``)."""

    ndim: int = 1
    hessian: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)), repr=False, compare=False)


@dataclass(frozen=True)
class Correlation:
    """Kendall's tau of one measure against the generalization gap over K minima, its two-sided
    p-value, and a warning when K is too small for the number to mean much."""

    measure: str
    tau: float
    p_value: float
    values: tuple[float, ...]
    gaps: tuple[float, ...]
    stderrs: tuple[float, ...] = ()
    labels: tuple[str, ...] = ()
    warning: str = ""
