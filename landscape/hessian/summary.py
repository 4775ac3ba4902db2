"""The spectrum summary of one point: top-k and smallest eigenvalues, trace, density; its HDF5 file.

``summarize(model, data, ...)`` runs the algorithms on one :class:`HessianOperator` and returns a
frozen :class:`HessianSummary`; :func:`write_summary` / :func:`read_summary` store it (what
``landscape-hessian`` writes), plain HDF5 readable by h5py alone:

- ``top_eigenvalues``, ``top_residuals`` (k,): the k largest eigenvalues, descending;
- ``max_eig``, ``min_eig`` (scalars, the surface files' names) and ``eig_ratio = |min/max|``;
- ``trace`` (scalar; attributes ``stderr``, ``samples``, ``tol``, ``converged``), ``trace_samples``;
- ``density/grid``, ``density/density``, ``density/nodes``, ``density/weights`` (attribute ``sigma``);
- ``top_eigenvectors`` (n, k) float32 when asked;
- root attributes: the provenance given to :func:`write_summary` and the summary's own
  configuration (parameters, convention, dtype, tolerances, timings in seconds), and
  ``content_sha256`` over the whole file (:mod:`landscape.io.h5`), verified when it is read.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
from torch import nn

from landscape.errors import LandscapeError
from landscape.hessian.hutchinson import DEFAULT_TRACE_TOL, Trace
from landscape.hessian.hutchinson import trace as hutchinson_trace
from landscape.hessian.lanczos import DEFAULT_TOL, Eigenpairs, eigenpairs
from landscape.hessian.operator import CONVENTIONS, Counting, HessianOperator, ParamSpec
from landscape.hessian.quadrature import Density
from landscape.hessian.quadrature import density as slq_density
from landscape.io.h5 import attr, opened, plain, writing
from landscape.runtime.progress import Work, announce, duration, is_long

FORMAT = "landscape-hessian"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class HessianSummary:
    """What :func:`summarize` found: ``eigen`` (the top-k and the smallest eigenpairs, descending),
    ``trace`` and ``density`` when asked, the operator's configuration and the timings."""

    eigen: Eigenpairs
    top_k: int
    trace: Trace | None = None
    density: Density | None = None
    config: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    @property
    def top_eigenvalues(self) -> np.ndarray:
        return self.eigen.eigenvalues[: self.top_k]

    @property
    def max_eig(self) -> float:
        return float(self.eigen.eigenvalues[0])

    @property
    def min_eig(self) -> float:
        return float(self.eigen.eigenvalues[-1])

    @property
    def eig_ratio(self) -> float:
        """``|lambda_min / lambda_max|``: the original tool's convexity measure."""
        return abs(self.min_eig / self.max_eig) if self.max_eig != 0 else float("nan")


@dataclass(frozen=True)
class SummaryOptions:
    """What :func:`summarize` computes, and how (declared here once; ``landscape-hessian``'s flags
    and :class:`landscape.jobs.hessian.HessianConfig` take their defaults from it).

    One Lanczos run gives the ``top_k`` largest eigenvalues and the smallest one (to ``tol``, at
    most ``max_iter`` products, see :func:`~landscape.hessian.eigenpairs`); ``trace`` adds
    Hutchinson's estimate (``trace_tol``, at most ``trace_max_samples`` products), ``density`` the
    SLQ density (``density_runs * density_iters`` products, broadening ``sigma``). ``params``,
    ``convention``, ``dtype`` and ``batch_size`` set up the :class:`HessianOperator`.
    """

    top_k: int = 5
    trace: bool = False
    density: bool = False
    params: ParamSpec = None
    convention: str = "mean"
    dtype: torch.dtype = torch.float32
    batch_size: int | None = None
    tol: float = DEFAULT_TOL
    max_iter: int | None = None
    trace_tol: float = DEFAULT_TRACE_TOL
    trace_max_samples: int = 200
    density_runs: int = 10
    density_iters: int = 80
    sigma: float | None = None
    seed: int = 0

    def __post_init__(self):
        for name in ("top_k", "trace_max_samples", "density_runs", "density_iters", "batch_size", "max_iter"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise LandscapeError(f"`{name}` must be a positive integer, got {value!r}")
        for name in ("tol", "trace_tol", "sigma"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and 0 < value < float("inf")):
                raise LandscapeError(f"`{name}` must be a positive number, got {value!r}")
        if self.convention not in CONVENTIONS:
            raise LandscapeError(f"`convention` must be one of {', '.join(CONVENTIONS)}, got {self.convention!r}")
        if self.dtype not in (torch.float32, torch.float64):
            raise LandscapeError(f"`dtype` must be torch.float32 or torch.float64, got {self.dtype}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise LandscapeError(f"`seed` must be a non-negative integer, got {self.seed!r}")


def summarize(
    model: nn.Module,
    data,
    loss_fn=None,
    options: SummaryOptions | None = None,
    *,
    device: str | torch.device | None = None,
    log: Callable[[str], None] | None = None,
    progress: bool = False,
    **settings,
) -> HessianSummary:
    """The Hessian spectrum summary of ``model`` at its current parameters on ``data``: what
    ``options`` (a :class:`SummaryOptions`) asks for, with any of its fields given as keywords
    instead (``summarize(model, data, top_k=3, trace=True)``). ``log`` receives one line per
    finished step. ``progress``: each step's progress in Hessian-vector products, and, when the
    products it may take are long (one timed first), that estimate.
    """
    o = options or SummaryOptions()
    if settings:
        unknown = sorted(set(settings) - {f.name for f in fields(SummaryOptions)})
        if unknown:
            raise LandscapeError(f"summarize() has no option {unknown[0]!r}")
        o = replace(o, **settings)
    top_k, params, convention, dtype, batch_size = o.top_k, o.params, o.convention, o.dtype, o.batch_size
    tol, max_iter, seed, sigma = o.tol, o.max_iter, o.seed, o.sigma
    trace, trace_tol, trace_max_samples = o.trace, o.trace_tol, o.trace_max_samples
    density, density_runs, density_iters = o.density, o.density_runs, o.density_iters
    say = log or (lambda _line: None)
    t0 = time.perf_counter()
    op = HessianOperator(model, data, loss_fn, params, dtype, device, batch_size, convention)
    if top_k + 1 > op.size:
        raise LandscapeError(f"top_k={top_k} needs a Hessian larger than its {op.size} parameters")
    timings = {"setup": time.perf_counter() - t0}
    steps = {"eigenvalues": (min(op.size, 500) if max_iter is None else max_iter, True)}  # eigenpairs' default
    if trace:
        steps["trace"] = (trace_max_samples, True)
    if density:
        steps["density"] = (density_runs * density_iters, False)
    if progress:
        _estimate(op, steps)

    @contextmanager
    def stage(name: str):
        """``op`` counting its products into the progress lines of step ``name``."""
        if not progress:
            yield op
            return
        products, bound = steps[name]
        with Work(f"Hessian {name}", [1.0] * products, unit="products", bound=bound, estimate=False) as work:
            yield Counting(op, lambda n: work.finish(n - 1) if n <= products else None)

    t0 = time.perf_counter()
    with stage("eigenvalues") as counted:
        eig = eigenpairs(counted, k=top_k, which="both_ends", k_smallest=1, tol=tol, max_iter=max_iter, seed=seed)
    timings["eigenpairs"] = time.perf_counter() - t0
    say(f"eigenvalues: max {eig.eigenvalues[0]:.6g}, min {eig.eigenvalues[-1]:.6g} "
        f"({eig.matvecs} products, {timings['eigenpairs']:.1f} s)")
    tr = None
    if trace:
        t0 = time.perf_counter()
        with stage("trace") as counted:
            tr = hutchinson_trace(counted, tol=trace_tol, max_samples=trace_max_samples, seed=seed)
        timings["trace"] = time.perf_counter() - t0
        say(f"trace: {tr.estimate:.6g} +- {tr.stderr:.2g} ({tr.samples} samples, {timings['trace']:.1f} s)")
    dens = None
    if density:
        t0 = time.perf_counter()
        with stage("density") as counted:
            dens = slq_density(counted, num_runs=density_runs, num_iters=density_iters, sigma=sigma, seed=seed)
        timings["density"] = time.perf_counter() - t0
        say(f"density: {density_runs} runs x {density_iters} steps ({timings['density']:.1f} s)")
    config = {**op.config(), "tol": tol, "top_k": top_k, "seed": seed}
    if trace:
        config.update(trace_tol=trace_tol, trace_max_samples=trace_max_samples)
    if density:
        config.update(density_runs=density_runs, density_iters=density_iters, sigma=dens.sigma)
    if convention == "batch_sum":
        config["batch_sizes"] = ",".join(map(str, op.batch_sizes))
    return HessianSummary(eig, top_k, tr, dens, config, timings)


def _estimate(op: HessianOperator, steps: dict[str, tuple[int, bool]]) -> None:
    """Say how long the steps may take when that is long: a Hessian-vector product timed (the
    second of two: the first sets things up; on vectors of their own: the steps' results do not
    change), times the products they may take."""
    v = np.random.default_rng(12345).standard_normal(op.size)
    op.matvec(v)
    t0 = time.perf_counter()
    op.matvec(v)
    per_product = time.perf_counter() - t0
    products = sum(n for n, _ in steps.values())
    seconds = per_product * products
    if is_long(seconds):
        parts = ", ".join(f"{name} {'up to ' if bound else ''}{n:,}" for name, (n, bound) in steps.items())
        announce(f"Hessian: up to {products:,} Hessian-vector products ({parts}) at {per_product:.2g} s each: "
                 f"at most {duration(seconds)}")


def write_summary(path: str, summary: HessianSummary, attrs: Mapping | None = None,
                  vectors: bool = False, arrays: Mapping[str, np.ndarray] | None = None) -> str:
    """Write ``summary`` (with the provenance ``attrs``, the top eigenvectors when ``vectors``,
    and the ``arrays``, e.g. ``sample_indices``) to ``path`` atomically; return the path."""
    with writing(path) as f:
        f.attrs["format"] = FORMAT
        f.attrs["format_version"] = FORMAT_VERSION
        for k, v in {**(attrs or {}), **summary.config}.items():
            f.attrs[k] = attr(v)
        for k, v in summary.timings.items():
            f.attrs[f"time_{k}_s"] = float(v)
        eig = summary.eigen
        f["top_eigenvalues"] = summary.top_eigenvalues
        f["top_residuals"] = eig.residuals[: summary.top_k]
        f["max_eig"] = summary.max_eig
        f["min_eig"] = summary.min_eig
        f["min_residual"] = float(eig.residuals[-1])
        f["eig_ratio"] = summary.eig_ratio
        for k, v in {"tol": eig.tol, "matvecs": eig.matvecs, "converged": eig.converged,
                     "method": eig.method}.items():
            f["top_eigenvalues"].attrs[k] = v
        if vectors:
            f.create_dataset("top_eigenvectors", data=eig.eigenvectors[:, : summary.top_k].astype(np.float32),
                             compression="gzip")
        if summary.trace is not None:
            t = summary.trace
            f["trace"] = t.estimate
            for k, v in {"stderr": t.stderr, "samples": t.samples, "tol": t.tol, "converged": t.converged}.items():
                f["trace"].attrs[k] = v
            f["trace_samples"] = t.values
        if summary.density is not None:
            d = summary.density
            g = f.create_group("density")
            g["grid"], g["density"] = d.grid, d.density
            g["nodes"], g["weights"] = d.nodes, d.weights
            g.attrs["sigma"], g.attrs["matvecs"] = d.sigma, d.matvecs
        for k, v in (arrays or {}).items():
            f[k] = np.asarray(v)
    return path


def _is_summary(f) -> bool:
    return plain(f.attrs.get("format", "")) == FORMAT


def read_summary(path: str | os.PathLike) -> tuple[dict, HessianSummary]:
    """``(attributes, summary)`` from a file :func:`write_summary` wrote."""
    with opened(os.fspath(path), "Hessian summary file", _is_summary) as (f, ours):
        if not ours:
            raise LandscapeError(f"{path!r} is not a landscape-hessian file")
        attrs = {k: plain(v) for k, v in f.attrs.items()}
        top = f["top_eigenvalues"]
        values = np.r_[top[()], f["min_eig"][()]]
        residuals = np.r_[f["top_residuals"][()], f["min_residual"][()]]
        vecs = f["top_eigenvectors"][()] if "top_eigenvectors" in f else np.empty((0, 0))
        eig = Eigenpairs(values, vecs, residuals, int(top.attrs["matvecs"]), bool(top.attrs["converged"]),
                         float(top.attrs["tol"]), str(plain(top.attrs["method"])))
        tr = None
        if "trace" in f:
            a = f["trace"].attrs
            tr = Trace(float(f["trace"][()]), float(a["stderr"]), int(a["samples"]), bool(a["converged"]),
                       float(a["tol"]), f["trace_samples"][()])
        dens = None
        if "density" in f:
            g = f["density"]
            dens = Density(g["grid"][()], g["density"][()], g["nodes"][()], g["weights"][()],
                           float(g.attrs["sigma"]), int(g.attrs["matvecs"]))
    timings = {k[5:-2]: v for k, v in attrs.items() if k.startswith("time_") and k.endswith("_s")}
    return attrs, HessianSummary(eig, len(values) - 1, tr, dens, {}, timings)


__all__ = ["HessianSummary", "SummaryOptions", "read_summary", "summarize", "write_summary"]
