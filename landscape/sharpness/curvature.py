"""Curvature at a minimizer: the Hessian's largest eigenvalue and trace, and a quadratic fitted to a
small filter-normalized surface.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from landscape.data.batches import forward
from landscape.directions.options import Directions
from landscape.engine.options import Output
from landscape.engine.surface import surface
from landscape.errors import LandscapeError
from landscape.evaluation.evaluator import DEFAULT_BATCH_SIZE
from landscape.evaluation.options import EvalOptions
from landscape.hessian import HessianOperator, eigenpairs
from landscape.hessian import trace as hutchinson
from landscape.sharpness.perturbation import borrowed, check_radius, one_split
from landscape.sharpness.results import Curvature, Sharpness
from landscape.space.grid import Grid


def _hessian_operator(model, data, loss_fn, batch_size, device, forward_fn):
    return HessianOperator(model, one_split(data), loss_fn, device=device, batch_size=batch_size,
                           forward_fn=forward_fn)


def lambda_max(
    model: nn.Module,
    data,
    *,
    loss_fn: str | Callable | None = None,
    tol: float = 1e-3,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    forward_fn: Callable = forward,
) -> Sharpness:
    """The largest eigenvalue of the Hessian of the mean loss (Lanczos, :mod:`landscape.hessian`).
    Cost: each Hessian-vector product is one forward and two backward passes of every batch
    (fewer forward passes while its graphs are kept)."""
    t0 = time.perf_counter()
    with borrowed(model, data, loss_fn, batch_size, device, forward_fn) as (ev, _):
        base = ev()["loss"]
        op = _hessian_operator(model, data, loss_fn, batch_size, ev.device, forward_fn)
        try:
            e = eigenpairs(op, k=1, which="largest", tol=tol, seed=seed)
        finally:
            op.release()
    return Sharpness("lambda_max", e.max, float("nan"), float("nan"), "none", base, e.matvecs + 1,
                     2 * e.matvecs, time.perf_counter() - t0)


def trace(
    model: nn.Module,
    data,
    *,
    loss_fn: str | Callable | None = None,
    tol: float = 0.05,
    max_samples: int = 200,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    forward_fn: Callable = forward,
) -> Sharpness:
    """The trace of the Hessian of the mean loss (Hutchinson, :mod:`landscape.hessian`), with its
    standard error; stops at ``stderr <= tol * |trace|`` or ``max_samples`` products."""
    t0 = time.perf_counter()
    with borrowed(model, data, loss_fn, batch_size, device, forward_fn) as (ev, _):
        base = ev()["loss"]
        op = _hessian_operator(model, data, loss_fn, batch_size, ev.device, forward_fn)
        try:
            tr = hutchinson(op, tol=tol, max_samples=max_samples, seed=seed)
        finally:
            op.release()
    return Sharpness("trace", tr.estimate, tr.stderr, float("nan"), "none", base, tr.samples + 1,
                     2 * tr.samples, time.perf_counter() - t0)


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
    return Curvature("curvature", value, err, radius, str(surface.attrs.get("norm", "")), base, 0, 0, 0.0,
                     surface.ndim, H)


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
    norm: str = "filter",
    ignore: str = "biasbn",
    loss_fn: str | Callable | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    forward_fn: Callable = forward,
    comm=None,
) -> Curvature:
    """The curvature at the minimizer of its ``ndim``-D surface along random directions of the
    surfaces (``norm`` as :func:`landscape.surface` takes it, filter by default) on
    ``[-radius, radius]`` with ``points`` per axis: :func:`fit_curvature` of
    :func:`landscape.surface`'s result. Cost: ``points ** ndim`` loss evaluations."""
    from dataclasses import replace

    radius = check_radius(radius)
    if ndim not in (1, 2):
        raise LandscapeError(f"ndim must be 1 or 2, got {ndim}")
    if int(points) < 3:
        raise LandscapeError(f"a quadratic fit needs at least 3 points per axis, got {points}")
    axis = (-radius, radius, int(points))
    dev = device if device is not None else next((t.device for t in model.parameters()), "cpu")
    t0 = time.perf_counter()
    surf = surface(model, one_split(data), Grid(axis, axis if ndim == 2 else None),
                   directions=Directions(norm=norm, ignore=ignore, seed=seed),
                   evaluation=EvalOptions(loss_fn=loss_fn, accuracy_fn=None, device=dev, forward_fn=forward_fn,
                                          batch_size=batch_size or DEFAULT_BATCH_SIZE),
                   output=Output(progress=False), comm=comm)
    fit = fit_curvature(surf)
    return replace(fit, norm=norm, forward=int(points) ** ndim, seconds=time.perf_counter() - t0)
