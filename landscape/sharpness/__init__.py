"""Sharpness of a minimizer in numbers: how much the loss rises around it.

>>> import landscape as ls
>>> from landscape import sharpness
>>> avg = sharpness.average_case(model, data, radius=0.05)                  # .value, .stderr, .converged
>>> ada = sharpness.average_case(model, data, radius=0.05, directions=ls.Directions(norm="elementwise"))
>>> worst = sharpness.worst_case(model, data, radius=0.05, p="inf")        # .value, .delta, .converged
>>> eps = sharpness.epsilon(model, data, eps=1e-3)                          # Keskar et al., in %
>>> lam = sharpness.lambda_max(model, data, evaluation=ls.EvalOptions(batch_size=128))

Every measure is a loss increase ``L(theta + delta) - L(theta)`` on the given data; they differ in
how ``delta`` is chosen. A perturbation is ``delta = T * u``, ``T`` a per-coordinate scale set by the
normalization of the measure's ``directions`` (a :class:`landscape.Directions`, the surfaces'
options object: its ``norm``, ``ignore`` and ``seed``):

- ``"none"``: ``T = 1`` (plain parameter space; not invariant to rescaling a layer);
- ``"filter"``: ``T`` is the root-mean-square of each filter of ``theta`` (output channel of a
  conv, row of a linear layer), the scale of the surfaces' filter normalization, so a random
  filter-normalized direction times ``radius`` is exactly what the surfaces plot (invariant to
  rescaling a filter, e.g. one feeding BatchNorm);
- ``"elementwise"``: ``T = |theta|`` (adaptive sharpness, Kwon et al.'s ASAM and Andriushchenko et
  al.; invariant to any element-wise rescaling that leaves the function unchanged).

Each measure's defaults are those of the paper it cites (``result.paper``; docs/sharpness.md has
the table): the default ``directions`` is the surfaces' (filter normalization, biases and
BatchNorm left out, as the original tool's ``--xignore biasbn``), and ``Directions(norm=
"elementwise")`` perturbs every parameter, as Andriushchenko et al. do (each normalization's own
``ignore`` default). :func:`epsilon` is Keskar et al.'s box over every parameter.

:func:`average_case` draws ``u`` Gaussian with standard deviation ``radius`` per coordinate;
:func:`worst_case` maximizes over ``||u||_p <= radius`` (starting points from the scaled Hessian's
Lanczos vectors, then restarted projected gradient ascent; :mod:`.worst`); :func:`epsilon` is
Keskar et al.'s box ``|delta_i| <= eps (|theta_i| + 1)``. :func:`lambda_max` and
:func:`hessian_trace` come from :mod:`landscape.hessian`; :func:`curvature` fits a quadratic near
0 to a small surface. Every result says whether it ``converged``, and what it cost.

``evaluation`` (a :class:`landscape.EvalOptions`) gives the loss, batch size (default 256),
device (default: where the model is) and forward function. The model is used in place,
evaluated in eval mode, and put back at its parameters, device, memory format and mode
afterwards, also when a call raises; no model is copied per sample. Under ``mpirun`` every rank
calls the function: Monte Carlo samples (and m-sharpness batches) are spread over the ranks and
every rank gets the same result as a serial run.

Modules: :mod:`.results` (the frozen results), :mod:`.perturbation` (options, scales, draws, the
model borrowed and put back), :mod:`.average`, :mod:`.worst` (worst case and epsilon),
:mod:`.curvature` (lambda_max, the Hessian's trace, the fitted quadratic), :mod:`.ranking`
(Kendall's tau).
"""

from landscape.sharpness.average import average_case
from landscape.sharpness.curvature import curvature, fit_curvature, hessian_trace, lambda_max
from landscape.sharpness.perturbation import NORMS, check_count, check_p, check_radius, scale
from landscape.sharpness.ranking import kendall
from landscape.sharpness.results import (
    AverageCase,
    Correlation,
    Curvature,
    Sharpness,
    Spectral,
    WorstCase,
    definition,
)
from landscape.sharpness.worst import epsilon, worst_case

__all__ = [
    "NORMS", "AverageCase", "Correlation", "Curvature", "Sharpness", "Spectral", "WorstCase", "average_case",
    "check_count", "check_p", "check_radius", "curvature", "definition", "epsilon", "fit_curvature", "hessian_trace",
    "kendall", "lambda_max", "scale", "worst_case",
]
