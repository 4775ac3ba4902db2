"""Curvature at a minimizer: the Hessian's largest eigenvalue and trace, and a quadratic fitted to a
small filter-normalized surface.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from torch import nn

from landscape.directions.options import Directions
from landscape.engine.options import Output
from landscape.engine.surface import surface
from landscape.errors import LandscapeError
from landscape.evaluation.evaluator import DEFAULT_BATCH_SIZE
from landscape.evaluation.options import EvalOptions
from landscape.hessian import HessianOperator, eigenpairs
from landscape.hessian import trace as hutchinson
from landscape.sharpness.perturbation import (
    CountedForward,
    borrowed,
    check_count,
    check_evaluation,
    check_radius,
    home_device,
    one_split,
    passes,
)
from landscape.sharpness.results import Curvature, Spectral
from landscape.space.grid import Grid


def _hessian_operator(model, ev, forward: CountedForward) -> HessianOperator:
    """The Hessian of the mean loss over every parameter, on the evaluator's batches."""
    return HessianOperator(model, ev.batches, ev.loss_fn, device=ev.device, forward_fn=forward)


def lambda_max(
    model: nn.Module,
    data,
    *,
    tol: float = 1e-3,
    seed: int = 0,
    evaluation: EvalOptions | None = None,
) -> Spectral:
    """The largest eigenvalue of the Hessian of the mean loss over every parameter (Lanczos,
    :mod:`landscape.hessian`, from a start vector of ``seed``), to relative accuracy ``tol``;
    ``converged``: that accuracy was reached. ``evaluation``: the loss, batch size (default 256),
    device (default: where the model is) and forward function. Cost: one pass at the minimizer, and
    per Hessian-vector product a backward pass of the gradient (and, where its graph is not kept, a
    forward and a backward pass to build it); the result states the passes counted."""
    evaluation = check_evaluation(evaluation, "lambda_max", gradients=True)
    t0 = time.perf_counter()
    forward = CountedForward(evaluation.forward_fn)
    with borrowed(model, data, evaluation) as (ev, _):
        base = ev()["loss"]
        op = _hessian_operator(model, ev, forward)
        try:
            e = eigenpairs(op, k=1, which="largest", tol=tol, seed=seed)
        finally:
            op.release()
        built = passes(forward.calls, ev.batches)
    return Spectral(measure="lambda_max", value=e.max, stderr=float("nan"), radius=float("nan"), norm="none",
                    ignore="none", loss=base, forward=1 + built, backward=built + e.matvecs,
                    seconds=time.perf_counter() - t0, converged=bool(e.converged))


def hessian_trace(
    model: nn.Module,
    data,
    *,
    tol: float = 0.05,
    max_samples: int = 200,
    seed: int = 0,
    evaluation: EvalOptions | None = None,
) -> Spectral:
    """The trace of the Hessian of the mean loss over every parameter (Hutchinson,
    :func:`landscape.hessian.trace`), with its standard error; stops at ``stderr <= tol * |trace|``
    (``converged``) or after ``max_samples`` products. ``evaluation`` as for :func:`lambda_max`."""
    evaluation = check_evaluation(evaluation, "hessian_trace", gradients=True)
    max_samples = check_count(max_samples, "max_samples")
    t0 = time.perf_counter()
    forward = CountedForward(evaluation.forward_fn)
    with borrowed(model, data, evaluation) as (ev, _):
        base = ev()["loss"]
        op = _hessian_operator(model, ev, forward)
        try:
            tr = hutchinson(op, tol=tol, max_samples=max_samples, seed=seed)
        finally:
            op.release()
        built = passes(forward.calls, ev.batches)
    return Spectral(measure="hessian_trace", value=tr.estimate, stderr=tr.stderr, radius=float("nan"), norm="none",
                    ignore="none", loss=base, forward=1 + built, backward=built + tr.matvecs,
                    seconds=time.perf_counter() - t0, converged=bool(tr.converged))


def fit_curvature(surface, quantity: str = "loss", window: float | None = None) -> Curvature:
    """The curvature at 0 of a 1D or 2D surface: a quadratic fitted by least squares to the points
    with every coordinate within ``window`` of 0 (default: all), its standard error from the
    residuals. 1D: ``f''(0)``; 2D: the largest eigenvalue of the fitted Hessian."""
    if surface.ndim not in (1, 2):
        raise LandscapeError("a curvature is fitted to a 1D or 2D surface")
    f = np.asarray(surface.quantity(quantity), dtype=float)
    if surface.ndim == 1:
        coords = [np.asarray(surface.x, dtype=float)]
    else:
        xx, yy = np.meshgrid(surface.x, surface.y)  # the file's (ny, nx) order
        coords = [xx, yy]
    keep = np.isfinite(f)
    if window is not None:
        for c in coords:
            keep &= np.abs(c) <= window
    f = f[keep]
    cs = [c[keep] for c in coords]
    if surface.ndim == 1:
        a = cs[0]
        A = np.stack([np.ones_like(a), a, 0.5 * a * a], 1)
    else:
        a, b = cs
        A = np.stack([np.ones_like(a), a, b, 0.5 * a * a, a * b, 0.5 * b * b], 1)
    if len(f) < A.shape[1]:
        raise LandscapeError(f"a quadratic fit needs at least {A.shape[1]} finite points near 0, got {len(f)}")
    coef, *_ = np.linalg.lstsq(A, f, rcond=None)
    dof = len(f) - A.shape[1]
    resid = f - A @ coef
    cov = (np.linalg.pinv(A.T @ A) * (resid @ resid / dof)) if dof > 0 else np.full((A.shape[1],) * 2, np.nan)
    if surface.ndim == 1:
        H = np.array([[coef[2]]])
        value, err = float(coef[2]), float(np.sqrt(cov[2, 2]))
    else:
        H = np.array([[coef[3], coef[4]], [coef[4], coef[5]]])
        w, v = np.linalg.eigh(H)
        g = np.array([v[0, -1] ** 2, 2 * v[0, -1] * v[1, -1], v[1, -1] ** 2])  # d lambda_max / d (hxx, hxy, hyy)
        value, err = float(w[-1]), float(np.sqrt(max(g @ cov[3:, 3:] @ g, 0.0)))
    radius = float(max(np.max(np.abs(c)) for c in cs))
    base = float(np.asarray(surface.quantity(quantity), dtype=float).ravel()[surface_origin(surface)])
    return Curvature(measure="curvature", value=value, stderr=err, radius=radius,
                     norm=str(surface.attrs.get("norm", "")), ignore=str(surface.attrs.get("ignore", "")), loss=base,
                     forward=0, backward=0, seconds=0.0, converged=True, ndim=surface.ndim, hessian=H)


def surface_origin(surface) -> int:
    """The flat index of the grid point nearest to 0."""
    if surface.ndim == 1:
        return int(np.argmin(np.abs(surface.x)))
    iy, ix = int(np.argmin(np.abs(surface.y))), int(np.argmin(np.abs(surface.x)))
    return iy * len(surface.x) + ix


def curvature(
    model: nn.Module,
    data,
    *,
    radius: float = 0.1,
    points: int = 9,
    ndim: int = 1,
    directions: Directions | None = None,
    evaluation: EvalOptions | None = None,
    comm=None,
) -> Curvature:
    """The curvature at the minimizer of its ``ndim``-D surface (:func:`landscape.surface` with
    ``directions``, default the surfaces': filter-normalized, biases and BatchNorm left out, seed 0)
    on ``[-radius, radius]`` with ``points`` per axis: :func:`fit_curvature` of the result.
    ``evaluation``: as for a surface, but the device defaults to where the model is and the batch
    size to 256. Cost: ``points ** ndim`` loss evaluations."""
    radius = check_radius(radius)
    if ndim not in (1, 2):
        raise LandscapeError(f"ndim must be 1 or 2, got {ndim}")
    if isinstance(points, bool) or not isinstance(points, int) or points < 3:
        raise LandscapeError(f"a quadratic fit needs at least 3 points per axis, got {points!r}")
    directions = Directions() if directions is None else directions
    evaluation = check_evaluation(evaluation, "curvature", gradients=False)
    evaluation = replace(evaluation, accuracy_fn=None, batch_size=evaluation.batch_size or DEFAULT_BATCH_SIZE,
                         device=home_device(model) if evaluation.device is None else evaluation.device)
    axis = (-radius, radius, int(points))
    t0 = time.perf_counter()
    surf = surface(model, one_split(data), Grid(axis, axis if ndim == 2 else None), directions=directions,
                   evaluation=evaluation, output=Output(progress=False), comm=comm)
    fit = fit_curvature(surf)
    norms = directions.norm if isinstance(directions.norm, str) else ",".join(directions.norm)
    ignores = directions.ignore if isinstance(directions.ignore, str) else ",".join(directions.ignore)
    return replace(fit, norm="given" if directions.tensors is not None else norms, ignore=ignores,
                   forward=int(points) ** ndim, seconds=time.perf_counter() - t0)
