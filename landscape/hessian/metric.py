"""The convexity map: the Hessian's extreme eigenvalues at every grid point, as a surface metric.

:class:`EigMetric` follows :mod:`landscape.evaluation.metrics`: it writes ``max_eig`` and ``min_eig`` (the
original tool's dataset names, so its ``plot_2d_eig_ratio`` reads our files), and the engine
handles files, MPI, resume and progress. At each point one Lanczos run gives both ends of the
spectrum, started from the eigenvectors of a finished neighbouring point of the same rank.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import torch
from torch import nn

from landscape.data.batches import forward
from landscape.errors import LandscapeError
from landscape.hessian.lanczos import DEFAULT_FLOOR, DEFAULT_TOL, Eigenpairs, eigenpairs
from landscape.hessian.operator import ORIGINAL_BATCH_SIZE, HessianOperator, ParamSpec, describe_params


class EigMetric:
    """``max_eig`` and ``min_eig``: the largest and the smallest (most negative) eigenvalue of the
    Hessian of the mean loss at the model's current parameters.

    Accuracy: each value is within ``tol * |lambda_max|`` of an eigenvalue of the Hessian (the
    Lanczos residual bound, see :mod:`landscape.hessian.lanczos`); default ``tol = 1e-3``. In
    practice the error is far smaller, about ``residual^2 / gap``. A cold start (no finished
    neighbour) stops at residuals ``<= tol * max(|theta|, floor * |lambda_max|)`` (``floor`` 0.1:
    a random start vector has almost no weight on the negative tail of the spectrum, and a Ritz
    value still inside the bulk around zero must not pass for ``lambda_min``); a warm start at
    ``<= tol * max(|theta|, warm_floor * |lambda_max|)`` (``warm_floor`` 0.2: its start vector holds
    the neighbour's bottom eigenvector, so the smallest Ritz value starts near the tail; but where
    the two lowest eigenvalues cross between neighbours, that vector leads Lanczos to the second
    one first. On ResNet-20 (128 images, x = 0.4 in ``benchmarks/bench_hessian.py``) a warm start
    with a floor of 0.3 stopped at -613 where ``lambda_min`` is -668 (error 5e-3 ``|lambda_max|``);
    with 0.2 it went on to -668, as a cold start does).

    Warm start: the eigenvectors of up to ``cache_size`` finished points are kept (float32); a
    point starts from those of its nearest finished neighbour in grid index space (indices that
    differ by at most 1 on every axis), mixed with a random vector of weight ``warm_mix``.
    Without a grid (called outside the engine), the previous call's point is used. So a point's
    start vector depends on which neighbours were finished before it: a run resumed after a kill
    (or the same grid on another number of ranks) gives eigenvalues that may differ from an
    uninterrupted run's by up to the tolerance above (3.6e-5 relative in ``min_eig`` was measured),
    unlike loss and accuracy, which are identical.

    ``data`` and ``loss_fn`` are for use outside the engine; :meth:`setup` takes the engine's
    data, and its loss unless ``loss_fn`` is given.
    ``params``, ``convention``, ``dtype``, ``batch_size``: see :class:`HessianOperator` (with
    ``convention="batch_sum"`` the batches are of 128 unless ``batch_size`` says otherwise, not the
    engine's evaluation batches, so that the scale is the original tool's).
    """

    names = ("max_eig", "min_eig")

    def __init__(
        self,
        tol: float = DEFAULT_TOL,
        params: ParamSpec = None,
        convention: str = "mean",
        dtype: torch.dtype = torch.float32,
        batch_size: int | None = None,
        method: str = "lanczos",
        max_iter: int = 300,
        warm_start: bool = True,
        warm_mix: float = 0.1,
        floor: float = DEFAULT_FLOOR,
        warm_floor: float = 0.2,
        cache_size: int = 32,
        seed: int = 0,
        data=None,
        loss_fn=None,
    ):
        if not (tol > 0):
            raise LandscapeError(f"the eigenvalue tolerance must be positive, got {tol}")
        self.tol, self.params, self.convention, self.dtype = float(tol), params, convention, dtype
        self.batch_size, self.method, self.max_iter = batch_size, method, int(max_iter)
        self.warm_start, self.warm_mix, self.cache_size, self.seed = warm_start, float(warm_mix), int(cache_size), seed
        self.floor, self.warm_floor = float(floor), float(warm_floor)
        self.data, self.loss_fn = data, loss_fn
        self.context = None
        self.op: HessianOperator | None = None
        self.shape: tuple[int, ...] | None = None
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._calls = 0
        self.history: list[dict] = []  # per call: index, matvecs, warm-started from, converged
        self.last: Eigenpairs | None = None

    def setup(self, context) -> None:
        """Build the operator on the engine's data, loss and device (once per run and rank)."""
        self.context = context
        grid = getattr(context, "grid", None)
        self.shape = tuple(grid.shape) if grid is not None and hasattr(grid, "shape") else None
        forward_fn = getattr(context, "forward_fn", None) or forward
        loss = self.loss_fn if self.loss_fn is not None else context.loss_fn
        data = context.data if context.data is not None else self.data
        if data is None:
            raise LandscapeError("EigMetric has no data: the engine gives none and no data= was given")
        self.op = HessianOperator(context.model, data, loss, self.params,
                                  self.dtype, context.device, self.batch_size, self.convention, forward_fn)
        self._cache.clear()

    def _operator(self, model: nn.Module) -> HessianOperator:
        if self.op is None or self.op.model is not model:
            if self.op is None and self.data is None:
                raise LandscapeError("EigMetric needs data: run it through the engine (setup) or give data=")
            data = self.data if self.data is not None else self.op.batches
            loss = self.loss_fn if self.loss_fn is not None or self.op is None else self.op.loss_fn
            self.op = HessianOperator(model, data, loss, self.params, self.dtype, None, self.batch_size,
                                      self.convention)
            self._cache.clear()
        return self.op

    def _where(self) -> int:
        point = getattr(self.context, "point", None)
        index = getattr(point, "index", -1) if point is not None else -1
        return int(index) if index is not None and index >= 0 else -1

    def _neighbour(self, index: int) -> int | None:
        """The cached point to start from: the nearest neighbour of ``index`` in grid index space."""
        if not self._cache:
            return None
        if index < 0 or self.shape is None:
            return next(reversed(self._cache))  # no grid: the previous point
        here = np.array(np.unravel_index(index, self.shape))
        best, best_d = None, None
        for k in reversed(self._cache):  # most recent first: ties go to it
            there = np.array(np.unravel_index(k, self.shape))
            if k == index or np.max(np.abs(there - here)) > 1:
                continue
            d = float(np.sum((there - here) ** 2))
            if best_d is None or d < best_d:
                best, best_d = k, d
        return best

    def __call__(self, model: nn.Module) -> dict[str, float]:
        op = self._operator(model)
        index = self._where()
        key = index if index >= 0 else -(self._calls + 1)
        self._calls += 1
        start = self._neighbour(index) if self.warm_start else None
        v0 = self._cache[start].astype(np.float64) if start is not None else None
        seed = [int(self.seed), int(index if index >= 0 else self._calls)]  # the same at a point on any rank
        result = eigenpairs(op, k=1, which="both_ends", tol=self.tol, v0=v0, method=self.method,
                            max_iter=min(self.max_iter, op.size), seed=seed, warm_mix=self.warm_mix,
                            floor=self.floor if v0 is None else self.warm_floor)
        if not result.converged:
            warnings.warn(f"the Hessian's extreme eigenvalues at point {index} did not reach the tolerance "
                          f"{self.tol:g} in {result.matvecs} products (residuals {result.residuals})", stacklevel=2)
        self.last = result
        self.history.append({"index": index, "matvecs": result.matvecs, "warm_from": start,
                             "converged": result.converged})
        if self.warm_start and self.cache_size > 0:
            self._cache[key] = result.eigenvectors.astype(np.float32)
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return {"max_eig": result.max, "min_eig": result.min}

    def config(self) -> dict:
        """What the values depend on besides the model, data and loss (checked on resume)."""
        cfg = {"tol": self.tol, "params": describe_params(self.params), "convention": self.convention,
               "dtype": str(self.dtype).replace("torch.", ""), "method": self.method, "floor": self.floor,
               "warm_floor": self.warm_floor}
        if self.convention == "batch_sum":  # the original tool's scale depends on the batching
            cfg["batch_size"] = self.op.batch_sizes[0] if self.op is not None else (self.batch_size or
                                                                                   ORIGINAL_BATCH_SIZE)
        return cfg


__all__ = ["EigMetric"]
