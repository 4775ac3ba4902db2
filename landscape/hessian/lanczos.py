"""Lanczos: extreme eigenpairs of a symmetric operator from one Krylov space.

:func:`lanczos` runs the process (float64 numpy, full reorthogonalization) and returns the
tridiagonal matrix with the basis; :func:`eigenpairs` stops it when the wanted Ritz pairs are
accurate, or hands the operator to SciPy's ``eigsh``.

Accuracy: a Ritz pair ``(theta, y)`` with residual ``r = H y - theta y`` has an eigenvalue of ``H``
within ``||r||`` of ``theta`` (and within ``||r||^2 / gap`` when the other eigenvalues are ``gap``
away). :func:`eigenpairs` stops when every wanted pair has
``||r|| <= tol * max(|theta|, floor * scale)``, ``scale`` the largest ``|theta|`` found (``|lambda_max|``
for a Hessian whose largest eigenvalue dominates): each eigenvalue is found to relative accuracy
``tol``, or to ``tol * floor * |lambda_max|`` when it is smaller than ``floor * |lambda_max|``, so
always within ``tol * |lambda_max|``. The floor (default 0.1) matters for the smallest eigenvalue of a
network's Hessian, near a dense bulk of eigenvalues around zero: with ``floor=1`` a Ritz value
still inside the bulk can pass for it before the Krylov space has reached the negative tail.
Like every Krylov method this cannot certify that no larger (or smaller) eigenvalue was missed;
the random component of the start vector makes that improbable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from landscape.errors import LandscapeError
from landscape.hessian.operator import Counting, SymmetricOperator, as_linear_operator, matmat

WHICH = ("largest", "smallest", "both_ends")
METHODS = ("lanczos", "eigsh")
DEFAULT_TOL = 1e-3
DEFAULT_FLOOR = 0.1


@dataclass(frozen=True)
class Krylov:
    """``m`` steps of Lanczos: ``T = tridiag(beta, alpha, beta)`` with ``Q.T @ H @ Q = T``.

    ``basis`` is (m, n) (one row per Lanczos vector); ``beta[j]`` couples vectors ``j`` and
    ``j + 1``; ``residual_norm`` is the norm of the next (unnormalized) vector, so the Ritz pair
    of ``T``'s eigenvector ``s`` has residual ``residual_norm * |s[-1]|``. A ``beta`` of zero
    marks an invariant subspace after which the process went on from a fresh random vector.
    """

    alpha: np.ndarray
    beta: np.ndarray
    basis: np.ndarray | None
    residual_norm: float
    matvecs: int

    @property
    def steps(self) -> int:
        return len(self.alpha)

    def ritz(self) -> tuple[np.ndarray, np.ndarray]:
        """Ritz values (ascending) and the eigenvectors of ``T`` (columns)."""
        return _tridiagonal_eigh(self.alpha, self.beta)


@dataclass(frozen=True)
class Eigenpairs:
    """Eigenvalues (descending), eigenvectors (columns, ``(n, k)``), their residual norms
    ``||H y - theta y||`` (Lanczos' estimates; exact for ``eigsh``), the number of operator
    products spent, and whether the tolerance was met within ``max_iter``."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    residuals: np.ndarray
    matvecs: int
    converged: bool = True
    tol: float = DEFAULT_TOL
    method: str = "lanczos"

    @property
    def max(self) -> float:
        return float(self.eigenvalues[0])

    @property
    def min(self) -> float:
        return float(self.eigenvalues[-1])


def _tridiagonal_eigh(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(alpha) == 1:
        return np.asarray(alpha, dtype=float).copy(), np.ones((1, 1))
    import scipy.linalg as sla  # here: importing scipy costs a surface without eig 0.6 s

    return sla.eigh_tridiagonal(alpha, beta[: len(alpha) - 1], lapack_driver="stemr")


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def start_vector(n: int, v0=None, rng: np.random.Generator | None = None, mix: float = 0.1) -> np.ndarray:
    """A unit start vector: random (Gaussian), or built from warm-start vectors.

    ``v0`` (n,) or (n, m): the columns, each normalized, are summed (so the Krylov space holds
    all of them) and a random unit vector of weight ``mix`` is added, so that no direction of
    the space starts with a zero component."""
    rng = rng if rng is not None else np.random.default_rng(0)
    r = _unit(rng.standard_normal(n))
    if v0 is None:
        return r
    W = np.asarray(v0, dtype=np.float64)
    W = W.reshape(n, -1) if W.size == n or (W.ndim == 2 and W.shape[0] == n) else W.T.reshape(n, -1)
    norms = np.linalg.norm(W, axis=0)
    W = W[:, norms > 0] / norms[norms > 0]
    if W.shape[1] == 0:
        return r
    w = W.sum(axis=1)
    if np.linalg.norm(w) < 1e-8 * np.sqrt(W.shape[1]):
        w = W[:, 0]
    return _unit(_unit(w) + mix * r)


def lanczos(op: SymmetricOperator, num_iters: int, v0=None, seed: int | np.random.Generator = 0,
            keep_basis: bool = True, stop=None) -> Krylov:
    """``num_iters`` steps (at most ``op.size``) of Lanczos with full reorthogonalization.

    ``v0``: a start vector (normalized here); default Gaussian from ``seed``. ``stop(alpha, beta,
    residual_norm) -> bool`` is asked after every step and ends the process early when true.
    After an invariant subspace (``beta`` ~ 0) the process goes on from a random vector orthogonal
    to the basis, so ``num_iters`` steps are always taken (up to ``op.size``).
    """
    n = int(op.size)
    m = max(1, min(int(num_iters), n))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    q = start_vector(n, None, rng) if v0 is None else np.asarray(v0, dtype=np.float64).reshape(n).copy()
    nq = np.linalg.norm(q)
    if not np.isfinite(nq) or nq == 0:
        raise LandscapeError("the Lanczos start vector is zero or not finite")
    Q = np.empty((min(m, 32), n))  # grown by doubling: room for max_iter vectors is not taken up front
    Q[0] = q / nq
    alpha, beta = np.zeros(m), np.zeros(m)
    scale, rnorm, steps = 0.0, 0.0, 0
    for j in range(m):
        w = np.asarray(op.matvec(Q[j]), dtype=np.float64).reshape(n)
        if not np.all(np.isfinite(w)):
            raise LandscapeError("the operator returned a non-finite product (the loss overflows here?)")
        steps = j + 1
        alpha[j] = Q[j] @ w
        w -= alpha[j] * Q[j]
        if j > 0:
            w -= beta[j - 1] * Q[j - 1]
        # Full reorthogonalization, twice ("twice is enough", Parlett): keeps Q orthonormal to
        # rounding, so the Ritz values do not repeat and the residual estimates hold.
        for _ in range(2):
            w -= Q[: j + 1].T @ (Q[: j + 1] @ w)
        rnorm = float(np.linalg.norm(w))
        scale = max(scale, abs(alpha[j]) + (beta[j - 1] if j else 0.0) + rnorm)
        if stop is not None and stop(alpha[: j + 1], beta[: j + 1], rnorm):
            break
        if j + 1 == m:
            break
        if j + 1 == len(Q):
            Q = np.concatenate([Q, np.empty((min(m, 2 * len(Q)) - len(Q), n))])
        if rnorm <= 1e-10 * max(scale, 1e-300):  # invariant subspace: carry on from a fresh direction
            beta[j] = 0.0
            for _ in range(3):
                r = rng.standard_normal(n)
                for _ in range(2):
                    r -= Q[: j + 1].T @ (Q[: j + 1] @ r)
                if np.linalg.norm(r) > 1e-8:
                    break
            Q[j + 1] = _unit(r)
            rnorm = 0.0
        else:
            beta[j] = rnorm
            Q[j + 1] = w / rnorm
    return Krylov(alpha[:steps].copy(), beta[: max(steps - 1, 0)].copy(), Q[:steps] if keep_basis else None,
                  rnorm, steps)


def _wanted(theta: np.ndarray, k: int, which: str, k_smallest: int | None = None) -> np.ndarray:
    """Indices (into ascending ``theta``) of the wanted Ritz values."""
    m = len(theta)
    top = np.arange(max(0, m - k), m) if which in ("largest", "both_ends") else np.arange(0)
    ks = k if k_smallest is None else k_smallest
    bottom = np.arange(0, min(ks, m)) if which in ("smallest", "both_ends") else np.arange(0)
    if which == "smallest":
        bottom = np.arange(0, min(k, m))
    return np.unique(np.concatenate([bottom, top])).astype(int)


def _check_args(op, k: int, which: str, tol: float, method: str, k_smallest: int | None, floor: float) -> int:
    if which not in WHICH:
        raise LandscapeError(f"which must be one of {', '.join(WHICH)}, got {which!r}")
    if method not in METHODS:
        raise LandscapeError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not (tol > 0):
        raise LandscapeError(f"tol must be positive, got {tol}")
    if not (0 < floor <= 1):
        raise LandscapeError(f"floor must be in (0, 1], got {floor}")
    if k_smallest is not None and (which != "both_ends" or k_smallest < 0):
        raise LandscapeError("k_smallest is for which='both_ends' and must be >= 0")
    n = int(op.size)
    wanted = k + ((k if k_smallest is None else k_smallest) if which == "both_ends" else 0)
    if k < 1 or wanted > n:
        raise LandscapeError(f"cannot find {wanted} eigenvalue(s) of an operator of size {n}")
    return n


def eigenpairs(
    op: SymmetricOperator,
    k: int = 1,
    which: str = "largest",
    tol: float = DEFAULT_TOL,
    v0=None,
    method: str = "lanczos",
    max_iter: int | None = None,
    seed: int | Sequence[int] = 0,
    warm_mix: float = 0.1,
    k_smallest: int | None = None,
    floor: float = DEFAULT_FLOOR,
) -> Eigenpairs:
    """The ``k`` largest (algebraically), ``k`` smallest (most negative), or ``k`` of each end
    (``"both_ends"``; ``k_smallest`` of the low end if given) eigenpairs of the symmetric ``op``.

    ``method="lanczos"``: Lanczos with full reorthogonalization from one start vector; both ends
    of the spectrum come from the same Krylov space, so ``"both_ends"`` costs about what the
    slower end alone does. Stops when every wanted Ritz pair has residual
    ``<= tol * max(|theta|, floor * max|theta|)`` (see the module docstring), or after ``max_iter``
    products (default ``min(n, 500)``). ``v0``: warm-start vector(s), (n,) or (n, m), e.g. the eigenvectors of a
    nearby point: they are combined with a random vector of weight ``warm_mix``
    (:func:`start_vector`).

    ``method="eigsh"``: SciPy's ARPACK on :meth:`as_linear_operator` (``which`` "LA", "SA" or
    "BE"); there ``tol`` is ARPACK's relative tolerance, ``||r|| <= tol * |theta|`` for each pair;
    ``v0`` combined as above. Its residuals are computed exactly (``k`` more products, counted).
    """
    n = _check_args(op, k, which, tol, method, k_smallest, floor)
    rng = np.random.default_rng(seed)
    max_iter = int(max_iter) if max_iter is not None else min(n, 500)
    counted = Counting(op)
    if method == "eigsh":
        return _eigsh(counted, n, k, which, tol, v0, rng, max_iter, warm_mix, k_smallest)

    q0 = start_vector(n, v0, rng, warm_mix)
    needed = k + ((k if k_smallest is None else k_smallest) if which == "both_ends" else 0)

    def converged(theta, S, rnorm) -> tuple[np.ndarray, np.ndarray, bool]:
        idx = _wanted(theta, k, which, k_smallest)
        scale = max(float(np.max(np.abs(theta))), np.finfo(float).tiny)
        res = rnorm * np.abs(S[-1, idx])
        return idx, res, bool(np.all(res <= tol * np.maximum(np.abs(theta[idx]), floor * scale)))

    def stop(alpha, beta, rnorm) -> bool:
        if len(alpha) < min(n, needed + 1) and rnorm > 0:
            return False
        theta, S = _tridiagonal_eigh(alpha, beta)
        return converged(theta, S, rnorm)[2]

    kry = lanczos(counted, max_iter, q0, rng, keep_basis=True, stop=stop)
    theta, S = kry.ritz()
    idx, residuals, done = converged(theta, S, kry.residual_norm)
    idx, residuals = idx[::-1], residuals[::-1]  # descending
    vectors = kry.basis.T @ S[:, idx]
    return Eigenpairs(theta[idx].copy(), vectors, residuals, counted.count, done or kry.steps >= n, tol, "lanczos")


def _eigsh(counted: Counting, n: int, k: int, which: str, tol: float, v0, rng, max_iter: int,
           warm_mix: float, k_smallest: int | None) -> Eigenpairs:
    import scipy.sparse.linalg as spla

    start = start_vector(n, v0, rng, warm_mix)
    if which == "both_ends" and k_smallest is not None and k_smallest != k:
        runs = [("LA", k)] + ([("SA", k_smallest)] if k_smallest else [])
    else:
        runs = [({"largest": "LA", "smallest": "SA", "both_ends": "BE"}[which], k * (2 if which == "both_ends" else 1))]
    values, vectors, converged = [], [], True
    for kind, kk in runs:
        if kk >= n - 1:  # ARPACK needs k < n - 1: a small problem, solved densely
            dense = matmat(counted, np.eye(n))
            w, Y = np.linalg.eigh((dense + dense.T) / 2)
            sel = {"LA": np.arange(n - kk, n), "SA": np.arange(kk)}.get(kind)
            if sel is None:
                sel = np.unique(np.r_[np.arange(kk - kk // 2), np.arange(n - kk // 2, n)])
            w, Y = w[sel], Y[:, sel]
        else:
            try:
                w, Y = spla.eigsh(as_linear_operator(counted), k=kk, which=kind, tol=tol, v0=start,
                                  maxiter=max(max_iter, 10))
            except spla.ArpackNoConvergence as exc:
                w, Y, converged = exc.eigenvalues, exc.eigenvectors, False
        values.append(w)
        vectors.append(Y)
    w, Y = np.concatenate(values), np.concatenate(vectors, axis=1)
    order = np.argsort(w)[::-1]
    w, Y = w[order], Y[:, order]
    R = matmat(counted, Y) - Y * w  # exact residuals: k more products, counted
    return Eigenpairs(np.asarray(w, dtype=float), Y, np.linalg.norm(R, axis=0), counted.count, converged, tol,
                      "eigsh")


__all__ = ["DEFAULT_FLOOR", "DEFAULT_TOL", "Eigenpairs", "Krylov", "eigenpairs", "lanczos", "start_vector"]
