"""The spectral density by stochastic Lanczos quadrature (Ghorbani, Krishnan and Xiao, 2019).

For a unit Gaussian vector ``v``, ``m`` Lanczos steps from ``v`` give a Gauss quadrature rule:
nodes ``theta_j`` (the Ritz values) and weights ``tau_j`` (the squared first components of the
eigenvectors of the tridiagonal matrix), exact for ``v^T p(H) v`` with ``p`` of degree ``< 2m``.
Since ``E[v v^T] = I / n``, averaging the rules of ``num_runs`` vectors estimates the spectral
measure ``(1/n) sum_i delta(t - lambda_i)``; each node is broadened into a Gaussian of width
``sigma`` to draw a density.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landscape.errors import LandscapeError
from landscape.hessian.lanczos import lanczos
from landscape.hessian.operator import SymmetricOperator

RELATIVE_SIGMA = 5e-3  # default broadening: this fraction of the spectrum's width
MAX_GRID = 100_000


@dataclass(frozen=True)
class Density:
    """The broadened density on ``grid`` (it integrates to 1 over an automatic grid), and the
    quadrature it comes from: ``nodes`` and ``weights`` (num_runs, num_iters), each run's
    weights summing to 1."""

    grid: np.ndarray
    density: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    sigma: float
    matvecs: int

    def moment(self, p: int) -> float:
        """The quadrature's estimate of ``tr(H^p) / n`` (no broadening)."""
        return float(np.mean(np.sum(self.weights * self.nodes**p, axis=1)))

    def moment_stderr(self, p: int) -> float:
        """The standard error of :meth:`moment` over the runs."""
        per_run = np.sum(self.weights * self.nodes**p, axis=1)
        return float(per_run.std(ddof=1) / np.sqrt(len(per_run))) if len(per_run) > 1 else float("inf")


def broaden(grid: np.ndarray, nodes: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """``mean over runs of sum_j weights[r, j] * N(grid; nodes[r, j], sigma^2)``."""
    grid = np.asarray(grid, dtype=np.float64)
    out = np.zeros_like(grid)
    norm = 1.0 / (np.sqrt(2 * np.pi) * sigma)
    for theta, tau in zip(np.atleast_2d(nodes), np.atleast_2d(weights), strict=True):
        keep = tau > 0
        z = (grid[:, None] - theta[None, keep]) / sigma
        out += np.exp(-0.5 * z * z) @ tau[keep]
    return out * norm / len(np.atleast_2d(nodes))


def density(
    op: SymmetricOperator,
    num_runs: int = 10,
    num_iters: int = 80,
    sigma: float | None = None,
    grid: int | np.ndarray | None = None,
    seed: int = 0,
) -> Density:
    """The spectral density of ``op`` by stochastic Lanczos quadrature.

    ``num_runs`` Gaussian start vectors, ``num_iters`` Lanczos steps each (full
    reorthogonalization; ``num_runs * num_iters`` products). ``sigma``: the Gaussian broadening
    (default: 5e-3 of the nodes' span). ``grid``: the points to evaluate the density at, or
    their number over the nodes' span widened by 6 sigma on each side (default: fine enough that
    steps are at most sigma / 4, at least 1000 points).
    """
    if num_runs < 1 or num_iters < 1:
        raise LandscapeError("density needs num_runs >= 1 and num_iters >= 1")
    if sigma is not None and not (sigma > 0):
        raise LandscapeError(f"sigma must be positive, got {sigma}")
    rng = np.random.default_rng(seed)
    n = int(op.size)
    m = min(int(num_iters), n)
    nodes = np.zeros((num_runs, m))
    weights = np.zeros((num_runs, m))
    matvecs = 0
    for r in range(num_runs):
        kry = lanczos(op, m, rng.standard_normal(n), rng, keep_basis=False)
        theta, S = kry.ritz()
        nodes[r, : len(theta)] = theta
        weights[r, : len(theta)] = S[0] ** 2
        matvecs += kry.matvecs
    used = weights > 0
    lo, hi = float(nodes[used].min()), float(nodes[used].max())
    span = hi - lo
    if sigma is None:
        sigma = RELATIVE_SIGMA * span if span > 0 else max(abs(hi), 1.0) * RELATIVE_SIGMA
    if grid is None or np.ndim(grid) == 0:
        a, b = lo - 6 * sigma, hi + 6 * sigma
        points = int(grid) if grid is not None else int(min(MAX_GRID, max(1000, np.ceil((b - a) / (sigma / 4)))))
        if points < 2:
            raise LandscapeError(f"a density grid needs at least 2 points, got {points}")
        grid = np.linspace(a, b, points)
    grid = np.asarray(grid, dtype=np.float64)
    return Density(grid, broaden(grid, nodes, weights, sigma), nodes, weights, float(sigma), matvecs)


__all__ = ["Density", "broaden", "density"]
