"""What a sharpness measure returns: frozen results that say what they measured, how sure they are
and what they cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PAPERS = {
    "average_case/filter": "Li et al., NeurIPS'18: the filter-normalized directions of the surfaces",
    "average_case/elementwise": "Andriushchenko et al., ICML'23: adaptive average-case sharpness",
    "average_case/none": "Li et al., NeurIPS'18: unnormalized directions",
    "worst_case/filter": "Li et al., NeurIPS'18 (filter normalization) with the worst case of Foret et al., ICLR'21",
    "worst_case/elementwise": "Kwon et al., ICML'21 (ASAM): adaptive worst-case sharpness, p = 2; Andriushchenko "
                              "et al., ICML'23 take it with p = inf and m = 128",
    "worst_case/none": "Foret et al., ICLR'21: the worst case in parameter space (SAM's m-sharpness)",
    "epsilon": "Keskar et al., ICLR'17: epsilon-sharpness",
    "lambda_max": "Keskar et al., ICLR'17; Yao et al., PyHessian (2020): the Hessian's largest eigenvalue",
    "hessian_trace": "Yao et al., PyHessian (2020): the Hessian's trace, Hutchinson",
    "curvature": "Li et al., NeurIPS'18: the curvature of the filter-normalized 1D curve (our fit)",
}
SCALES = {"filter": "T = each filter's root-mean-square", "elementwise": "T = |theta|", "none": "T = 1",
          "box": "T = |theta| + 1"}
PERTURBED = {"biasbn": "weights (biases and BatchNorm left out)", "none": "every parameter"}


def definition(measure: str, norm: str, ignore: str, radius: float, p: int | str = 2,
               m: int | None = None) -> dict[str, str]:
    """What a measure's number is, in words: the paper it follows, the parameters perturbed, the
    scale ``T`` of ``delta = T u``, the radius and the units (docs/sharpness.md's table, and each
    column of landscape-compare's)."""
    if measure == "average_case":
        shape = f"u ~ N(0, {radius:g}^2 I)" + (" (a filter-normalized Gaussian direction times the radius)"
                                               if norm == "filter" else "")
    elif measure == "worst_case":
        shape = f"max over ||u||_{'2' if p == 2 else 'inf'} <= {radius:g}" + (f", each batch of {m}" if m else "")
    elif measure == "epsilon":
        shape = f"max over |delta_i| <= {radius:g} (|theta_i| + 1)"
    elif measure == "curvature":
        shape = f"quadratic fit on [-{radius:g}, {radius:g}]"
    else:
        shape = ""
    units = {"epsilon": "% of 1 + L(theta)", "lambda_max": "largest eigenvalue of the Hessian of the mean loss",
             "hessian_trace": "trace of the Hessian of the mean loss",
             "curvature": "second derivative along the direction"}.get(measure, "loss rise")
    scale = f"the surfaces' {norm}-normalized random direction" if measure == "curvature" else \
        SCALES.get(norm, "") if shape else ""
    return {"paper": PAPERS.get(f"{measure}/{norm}", PAPERS.get(measure, "")),
            "perturbed": PERTURBED.get(ignore, ignore), "scale": scale,
            "radius": shape, "units": units}


@dataclass(frozen=True)
class Sharpness:
    """One measure at one minimizer: ``value`` (a loss increase; :func:`~landscape.sharpness.epsilon`:
    in percent of ``1 + loss``), its standard error (NaN where it is not an estimate), the
    ``radius``, normalization and ``ignore`` rule it was taken with, the loss at the minimizer,
    whether the estimate ``converged`` (each measure's criterion: see its docstring), and what it
    cost: ``forward`` and ``backward`` passes over the data (every batch once), and seconds."""

    measure: str
    value: float
    stderr: float
    radius: float
    norm: str
    ignore: str
    loss: float
    forward: int
    backward: int
    seconds: float
    converged: bool

    @property
    def paper(self) -> str:
        """The paper whose definition the measure follows, as its defaults do."""
        return self.definition()["paper"]

    def definition(self) -> dict[str, str]:
        """:func:`definition` of this result."""
        return definition(self.measure, self.norm, self.ignore, self.radius, getattr(self, "p", 2),
                          getattr(self, "m", None))

    def setting(self) -> str:
        """:meth:`definition` on one line."""
        d = self.definition()
        return "; ".join(v for v in (d["scale"], d["perturbed"], d["radius"], d["units"], d["paper"]) if v)


@dataclass(frozen=True)
class AverageCase(Sharpness):
    """:func:`~landscape.sharpness.average_case`'s result; ``values`` holds every sample's loss
    increase; ``converged``: the standard error is at most ``tol`` times the value."""

    samples: int = 0
    tol: float = 0.0
    values: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)


@dataclass(frozen=True)
class WorstCase(Sharpness):
    """:func:`~landscape.sharpness.worst_case`'s (and :func:`~landscape.sharpness.epsilon`'s)
    result: the largest rise found by ``restarts`` ascents of at most ``steps`` steps each from the
    starting points of ``hvps`` Hessian-vector products; ``converged``: see
    :mod:`landscape.sharpness.worst`. ``delta`` is the maximizer (tensors named like the model's
    parameters, on the CPU; None for m-sharpness, where every batch has its own)."""

    p: int | str = 2
    steps: int = 0
    restarts: int = 0
    hvps: int = 0
    m: int | None = None
    delta: dict | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Curvature(Sharpness):
    """:func:`~landscape.sharpness.curvature`'s result: ``value`` is the second derivative of the
    loss along the direction (1D) or the largest eigenvalue of the fitted 2x2 Hessian (2D, in
    ``hessian``); ``converged`` is True (a least-squares fit, no iteration)."""

    ndim: int = 1
    hessian: np.ndarray = field(default_factory=lambda: np.zeros((1, 1)), repr=False, compare=False)


@dataclass(frozen=True)
class Spectral(Sharpness):
    """:func:`~landscape.sharpness.lambda_max`'s and :func:`~landscape.sharpness.hessian_trace`'s
    result: a property of the Hessian of the mean loss over every parameter; ``converged``: the
    algorithm met its tolerance."""


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
