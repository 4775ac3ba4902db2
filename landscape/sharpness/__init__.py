"""Sharpness of a minimizer in numbers: how much the loss rises around it.

>>> from landscape import sharpness
>>> avg = sharpness.average_case(model, data, radius=0.05, norm="filter", seed=0)  # .value, .stderr
>>> worst = sharpness.worst_case(model, data, radius=0.05, norm="filter", steps=20)  # .value, .delta
>>> eps = sharpness.epsilon(model, data, eps=1e-3)                                # Keskar et al., in %

Every measure is a loss increase ``L(theta + delta) - L(theta)`` on the given data; they differ in
how ``delta`` is chosen. A perturbation is ``delta = T * u``, ``T`` a per-coordinate scale set by
``norm``:

- ``"none"``: ``T = 1`` (plain parameter space; not invariant to rescaling a layer);
- ``"filter"``: ``T`` is the root-mean-square of each filter of ``theta`` (output channel of a
  conv, row of a linear layer), the scale of :func:`landscape.directions.normalize_`'s filter
  normalization, so a random filter-normalized direction times ``radius`` is exactly what the
  surfaces plot (invariant to rescaling a filter, e.g. one feeding BatchNorm);
- ``"elementwise"``: ``T = |theta|`` (adaptive sharpness, Kwon et al.'s ASAM and Andriushchenko et
  al.; invariant to any element-wise rescaling that leaves the function unchanged).

:func:`average_case` draws ``u`` Gaussian with standard deviation ``radius`` per coordinate
(``"filter"``: a filter-normalized direction times ``radius``, each filter's perturbation of norm
``radius * ||theta_i||``); :func:`worst_case` maximizes over ``||u||_p <= radius`` by projected
gradient ascent; :func:`epsilon` is Keskar et al.'s box ``|delta_i| <= eps (|theta_i| + 1)``.
With ``ignore="biasbn"`` (the default, as for surfaces) 1-D tensors (biases, BatchNorm) are not
perturbed. :func:`lambda_max` and :func:`trace` come from :mod:`landscape.hessian`;
:func:`curvature` fits a quadratic near 0 to a small filter-normalized surface.

The model is used in place, evaluated in eval mode, and put back at its parameters, device,
memory format and mode afterwards, also when a call raises; no model is copied per sample.
``data`` and ``loss_fn(output, batch)`` are taken as :func:`landscape.surface` takes them. Under
``mpirun`` every rank calls the function: Monte Carlo samples (and m-sharpness batches) are spread
over the ranks and every rank gets the same result as a serial run.

Modules: :mod:`.results` (the frozen results), :mod:`.perturbation` (scales, draws, the model
borrowed and put back), :mod:`.average`, :mod:`.worst` (worst case and epsilon), :mod:`.curvature`
(lambda_max, trace, the fitted quadratic), :mod:`.ranking` (Kendall's tau).
"""

from landscape.sharpness.average import average_case
from landscape.sharpness.curvature import check_points, curvature, fit_curvature, lambda_max, trace
from landscape.sharpness.perturbation import NORMS, check_p, check_radius, scale
from landscape.sharpness.ranking import kendall
from landscape.sharpness.results import AverageCase, Correlation, Curvature, Sharpness, WorstCase
from landscape.sharpness.worst import epsilon, worst_case

__all__ = [
    "AverageCase", "Correlation", "Curvature", "NORMS", "Sharpness", "WorstCase", "average_case", "check_p",
    "check_points", "check_radius", "curvature", "epsilon", "fit_curvature", "kendall", "lambda_max", "scale", "trace",
    "worst_case",
]
