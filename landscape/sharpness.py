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
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from landscape.batches import TensorBatches, forward
from landscape.directions import normalize_, random_direction
from landscape.errors import LandscapeError
from landscape.evaluate import DEFAULT_BATCH_SIZE, Evaluator, evaluate, resolve_device
from landscape.params import IGNORES, Mover, ignored, is_float, snapshot

NORMS = ("filter", "elementwise", "none")
MAX_SAMPLES = 100  # average_case's Monte Carlo samples at most, unless `samples` says otherwise
BLOCK = 10  # samples between two checks of the standard error (fixed: the same stop serially and under MPI)
FEW_MINIMA = 10  # below this many minima a rank correlation gets a warning


# ----------------------------------------------------------------------------- results


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


# ----------------------------------------------------------------------------- checks and set-up


def _check_norm(norm: str, ignore: str) -> None:
    if norm not in NORMS:
        raise LandscapeError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if ignore not in IGNORES:
        raise LandscapeError(f"ignore must be one of {', '.join(IGNORES)}, got {ignore!r}")


def check_radius(radius: float, what: str = "radius") -> float:
    try:
        r = float(radius)
    except (TypeError, ValueError):
        raise LandscapeError(f"{what} must be a positive number, got {radius!r}") from None
    if not (r > 0) or math.isinf(r):
        raise LandscapeError(f"{what} must be a positive number, got {radius!r}")
    return r


def check_p(p) -> int | str:
    if p in (2, "2"):
        return 2
    if p in ("inf", float("inf")):
        return "inf"
    raise LandscapeError(f"p must be 2 or 'inf', got {p!r}")


def _one_split(data):
    """A mapping of splits gives its ``train`` split (or its only one); anything else is the data."""
    if isinstance(data, Mapping) and data and all(isinstance(k, str) for k in data) and \
            not any(torch.is_tensor(v) for v in data.values()):
        if "train" in data:
            return data["train"]
        if len(data) == 1:
            return next(iter(data.values()))
        raise LandscapeError(f"give one split of the data (or a 'train' entry), got {', '.join(data)}")
    return data


def _comm(comm):
    if comm is None:
        from landscape.parallel import world

        return world()
    return comm


@contextmanager
def _borrowed(model: nn.Module, data, loss_fn, batch_size, device, forward_fn):
    """The model on ``device`` in eval mode with an :class:`Evaluator` of the loss; afterwards the
    model as it came: at its parameters, on its device, in its memory format and mode."""
    was_training = model.training
    home = next((t.device for t in model.state_dict().values()), torch.device("cpu"))
    contiguous = all(p.is_contiguous() for p in model.parameters())
    grads = {k: p.requires_grad for k, p in model.named_parameters()}
    origin = snapshot(model)
    dev = home if device is None else resolve_device(device)
    try:
        ev = Evaluator(model, _one_split(data), loss_fn, None, batch_size or DEFAULT_BATCH_SIZE, dev,
                       forward_fn=forward_fn)
        yield ev, origin
    finally:
        Mover(model, origin, []).restore_()
        for k, p in model.named_parameters():
            p.requires_grad_(grads[k])
        model.to(home)
        if contiguous:
            model.to(memory_format=torch.contiguous_format)
        model.train(was_training)


def _generator(seed: int, k: int) -> torch.Generator:
    """Sample ``k``'s own generator: the same draw whichever rank computes it."""
    state = np.random.SeedSequence([int(seed), int(k)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def _cpu(origin: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().float() for k, v in origin.items()}


def scale(origin: Mapping[str, torch.Tensor], norm: str, ignore: str = "biasbn") -> dict[str, torch.Tensor]:
    """The per-coordinate scale ``T`` of a normalization (see the module docstring): ones, each
    filter's root-mean-square (filter normalization of a direction of ones), or ``|theta|``;
    zero where ``ignore`` leaves a tensor out."""
    _check_norm(norm, ignore)
    cpu = _cpu(origin)
    if norm == "filter":
        return normalize_({k: torch.ones_like(v) for k, v in cpu.items()}, cpu, "filter", ignore)
    out = {}
    for k, v in cpu.items():
        if not is_float(v) or ignored(v, ignore):
            out[k] = torch.zeros_like(v)
        else:
            out[k] = v.abs() if norm == "elementwise" else torch.ones_like(v)
    return out


def _sample(origin_cpu: Mapping[str, torch.Tensor], norm: str, ignore: str, radius: float,
            generator: torch.Generator) -> dict[str, torch.Tensor]:
    """One average-case perturbation: a Gaussian direction of the surfaces (``filter``, ``none``),
    or ``|theta|`` times a plain one (``elementwise``), times ``radius``."""
    d = random_direction(origin_cpu, "none" if norm == "elementwise" else norm, ignore, generator)
    if norm == "elementwise":
        for k in d:
            d[k].mul_(origin_cpu[k].abs())
    for k in d:
        d[k].mul_(radius)
    return d


def _move(model: nn.Module, origin: Mapping[str, torch.Tensor], delta: Mapping[str, torch.Tensor] | None) -> None:
    """The model's parameters set to ``origin + delta`` in place (the surfaces' :class:`Mover`)."""
    Mover(model, origin, [delta] if delta is not None else []).move_((1.0,) if delta is not None else ())


# ----------------------------------------------------------------------------- average case


def average_case(
    model: nn.Module,
    data,
    *,
    radius: float,
    norm: str = "filter",
    ignore: str = "biasbn",
    loss_fn: str | Callable | None = None,
    seed: int = 0,
    samples: int | None = None,
    tol: float = 0.05,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    forward_fn: Callable = forward,
    comm=None,
) -> AverageCase:
    """``E[L(theta + delta)] - L(theta)`` over random ``delta`` (see the module docstring for
    ``norm``): ``"none"``: ``delta ~ N(0, radius^2 I)``; ``"filter"``: a filter-normalized Gaussian
    direction times ``radius``; ``"elementwise"``: ``delta ~ N(0, radius^2 diag(theta^2))``.

    Monte Carlo, ``BLOCK`` (10) samples at a time: stops once the standard error is at most
    ``tol`` times the value (``tol=0``: never early), or after ``samples`` (default 100). Sample k
    is drawn from its own generator of ``(seed, k)``. Cost: one evaluation of the loss per sample,
    and one at the minimizer.
    """
    from landscape.parallel import map_points, share

    radius = check_radius(radius)
    _check_norm(norm, ignore)
    if samples is not None and int(samples) < 1:
        raise LandscapeError(f"samples must be at least 1, got {samples}")
    if not (tol >= 0):
        raise LandscapeError(f"tol must be >= 0, got {tol}")
    max_samples = int(samples) if samples is not None else MAX_SAMPLES
    comm = _comm(comm)
    t0 = time.perf_counter()
    with _borrowed(model, data, loss_fn, batch_size, device, forward_fn) as (ev, origin):
        base = ev()["loss"]
        origin_cpu = _cpu(origin)

        def job(k: int) -> dict:
            _move(model, origin, _sample(origin_cpu, norm, ignore, radius, _generator(seed, k)))
            return {"loss": ev()["loss"]}

        values: list[float] = []
        converged = False
        while len(values) < max_samples:
            todo = range(len(values), min(max_samples, len(values) + BLOCK))
            got: dict[int, float] = {}
            map_points(job, todo, lambda k, r, got=got: got.__setitem__(k, r["loss"] - base), comm)
            values += share(comm, [got[k] for k in todo] if comm.rank == 0 else None)
            mean, err = _mean_stderr(values)
            if tol > 0 and len(values) >= min(BLOCK, max_samples) and err <= tol * abs(mean):
                converged = True
                break
    mean, err = _mean_stderr(values)
    return AverageCase("average_case", mean, err, radius, norm, base, len(values) + 1, 0,
                       time.perf_counter() - t0, len(values), converged, np.asarray(values))


def _mean_stderr(values: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    err = float(arr.std(ddof=1) / np.sqrt(arr.size)) if arr.size > 1 else float("nan")
    return float(arr.mean()), err


# ----------------------------------------------------------------------------- worst case


def _loss_and_grad(model: nn.Module, batches, loss_fn, forward_fn, names: Sequence[str]):
    """Mean loss over ``batches`` and its gradient for the parameters ``names`` (one forward and
    one backward pass of every batch; eval mode, as the model stands)."""
    params = dict(model.named_parameters())
    ps = [params[k] for k in names]
    for p in ps:
        p.requires_grad_(True)
    grads = [torch.zeros_like(p) for p in ps]
    total, n = 0.0, 0
    with torch.enable_grad():
        for batch, size in batches:
            out = forward_fn(model, batch)
            loss = loss_fn(out.float() if torch.is_tensor(out) else out, batch)
            for acc, g in zip(grads, torch.autograd.grad(loss, ps, allow_unused=True), strict=True):
                if g is not None:
                    acc.add_(g, alpha=float(size))
            total += float(loss.detach().double()) * size
            n += size
    return total / n, [g.div_(n) for g in grads]


def _ascend(model, origin, batches, loss_fn, forward_fn, T: dict, radius: float, p, steps: int,
            generator: torch.Generator):
    """Projected gradient ascent of ``L(origin + T * u)`` over ``||u||_p <= radius``, from ``u = 0``.

    The step starts at ``2 * radius`` and is halved whenever a step does not raise the loss (the
    iterate then goes back to the best one so far), as APGD adapts its step. The first step follows
    the gradient at the minimizer (a random direction where it vanishes). ``steps`` forward and
    backward passes, and one forward pass for the last iterate; the loss at the minimizer is the
    first pass's. Returns ``(loss at origin, best loss, best u)``.
    """
    names = list(T)
    dev = next(iter(origin.values())).device
    Ts = [T[k].to(dev) for k in names]
    u = [torch.zeros_like(t) for t in Ts]
    best_u, best_g, best = u, None, -math.inf
    base = None
    eta = 2.0 * radius
    for t in range(steps + 1):
        _move(model, origin, {k: tk * uk for k, tk, uk in zip(names, Ts, u, strict=True)})
        if t < steps:
            loss, g = _loss_and_grad(model, batches, loss_fn, forward_fn, names)
        else:
            loss, g = evaluate(model, batches, loss_fn, None, forward_fn)["loss"], None
        if base is None:
            base = loss
        if loss > best or t == 0:
            best, best_u, best_g = loss, u, g
        else:  # no gain: a smaller step from the best point
            eta /= 2.0
        if t == steps:
            break
        gu = [tk * gk for tk, gk in zip(Ts, best_g, strict=True)]
        if p == 2:
            gnorm = math.sqrt(sum(float(x.double().pow(2).sum()) for x in gu))
            if not gnorm > 0:
                gu = [torch.randn(x.shape, generator=generator).to(x) * (tk != 0) for x, tk in zip(gu, Ts, strict=True)]
                gnorm = math.sqrt(sum(float(x.double().pow(2).sum()) for x in gu)) or 1.0
            u = [uk + (eta / gnorm) * gk for uk, gk in zip(best_u, gu, strict=True)]
            unorm = math.sqrt(sum(float(x.double().pow(2).sum()) for x in u))
            if unorm > radius:
                u = [x.mul_(radius / unorm) for x in u]
        else:
            signs = [torch.sign(x) for x in gu]
            if all(not bool(s.any()) for s in signs):
                signs = [torch.sign(torch.randn(x.shape, generator=generator)).to(x) for x in gu]
            u = [torch.clamp(uk + eta * s * (tk != 0), -radius, radius)
                 for uk, s, tk in zip(best_u, signs, Ts, strict=True)]
    return base, best, {k: (tk * uk).detach().cpu() for k, tk, uk in zip(names, Ts, best_u, strict=True)}


def _worst(model, data, *, measure, T_of, radius, norm, p, steps, m, loss_fn, seed, batch_size, device,
           forward_fn, comm) -> WorstCase:
    from landscape.parallel import map_points, on_root, share

    if int(steps) < 1:
        raise LandscapeError(f"steps must be at least 1, got {steps}")
    if m is not None and int(m) < 1:
        raise LandscapeError(f"m must be at least 1, got {m}")
    comm = _comm(comm)
    t0 = time.perf_counter()
    with _borrowed(model, data, loss_fn, batch_size, device, forward_fn) as (ev, origin):
        T = T_of(origin)
        lf, ff = ev.loss_fn, forward_fn
        if m is None:
            def whole():
                base, best, delta = _ascend(model, origin, ev.batches, lf, ff, T, radius, p, steps,
                                            _generator(seed, 0))
                return base, best, delta

            base, best, delta = on_root(comm, whole)
            value = best - base
        else:
            tb = ev.batches
            if not isinstance(tb, TensorBatches):
                raise LandscapeError("m-sharpness needs in-memory data (a Dataset or tensors), not a loader")
            starts = list(range(0, tb.n, int(m)))

            def job(j: int) -> dict:
                lo, hi = starts[j], min(tb.n, starts[j] + int(m))
                base_j, best_j, _ = _ascend(model, origin, [(tb.slice(lo, hi), hi - lo)], lf, ff, T, radius, p,
                                            steps, _generator(seed, j))
                return {"base": base_j, "rise": best_j - base_j, "n": hi - lo}

            got: dict[int, dict] = {}
            map_points(job, range(len(starts)), got.__setitem__, comm)
            rows = share(comm, [got[j] for j in range(len(starts))] if comm.rank == 0 else None)
            total = sum(r["n"] for r in rows)
            value = sum(r["rise"] * r["n"] for r in rows) / total
            base = sum(r["base"] * r["n"] for r in rows) / total
            delta = None
    return WorstCase(measure, float(value), float("nan"), radius, norm, float(base), int(steps) + 1, int(steps),
                     time.perf_counter() - t0, p, int(steps), None if m is None else int(m), delta)


def worst_case(
    model: nn.Module,
    data,
    *,
    radius: float,
    norm: str = "filter",
    ignore: str = "biasbn",
    loss_fn: str | Callable | None = None,
    steps: int = 20,
    p: int | str = 2,
    m: int | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    forward_fn: Callable = forward,
    comm=None,
) -> WorstCase:
    """``max L(theta + delta) - L(theta)`` over ``delta = T * u``, ``||u||_p <= radius`` (``p`` 2
    or ``"inf"``; ``T`` by ``norm``, see the module docstring), by projected gradient ascent with
    an adaptive step. ``m``: m-sharpness, the mean over consecutive batches of ``m`` samples of each
    batch's own maximum (SAM's and Andriushchenko et al.'s definition; batches spread over MPI
    ranks). ``.delta`` is the maximizer (None with ``m``). Cost per batch: ``steps + 1`` forward
    and ``steps`` backward passes (the first forward pass gives the loss at the minimizer).
    """
    radius = check_radius(radius)
    _check_norm(norm, ignore)
    p = check_p(p)
    return _worst(model, data, measure="worst_case", T_of=lambda o: scale(o, norm, ignore), radius=radius,
                  norm=norm, p=p, steps=steps, m=m, loss_fn=loss_fn, seed=seed, batch_size=batch_size,
                  device=device, forward_fn=forward_fn, comm=comm)


def epsilon(
    model: nn.Module,
    data,
    *,
    eps: float,
    ignore: str = "none",
    loss_fn: str | Callable | None = None,
    steps: int = 20,
    seed: int = 0,
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    forward_fn: Callable = forward,
    comm=None,
) -> WorstCase:
    """Keskar et al.'s epsilon-sharpness: ``max L(theta + delta) - L(theta)`` over the box
    ``|delta_i| <= eps (|theta_i| + 1)``, reported as they do: ``100 * rise / (1 + L(theta))``
    (percent). Every parameter is in the box (``ignore="none"``, as they had no BatchNorm); the
    maximum is found by the projected (sign) gradient ascent of :func:`worst_case` with ``p="inf"``
    where they used L-BFGS-B, so it is a lower bound of the true maximum, like theirs.
    """
    eps = check_radius(eps, "eps")
    if ignore not in IGNORES:
        raise LandscapeError(f"ignore must be one of {', '.join(IGNORES)}, got {ignore!r}")

    def box(origin):
        cpu = _cpu(origin)
        return {k: (torch.zeros_like(v) if not is_float(v) or ignored(v, ignore) else v.abs() + 1.0)
                for k, v in cpu.items()}

    r = _worst(model, data, measure="epsilon", T_of=box, radius=eps, norm="box", p="inf", steps=steps, m=None,
               loss_fn=loss_fn, seed=seed, batch_size=batch_size, device=device, forward_fn=forward_fn, comm=comm)
    from dataclasses import replace

    return replace(r, value=100.0 * r.value / (1.0 + r.loss))


# ----------------------------------------------------------------------------- curvature


def _hessian_operator(model, data, loss_fn, batch_size, device, forward_fn):
    from landscape.hessian import HessianOperator

    return HessianOperator(model, _one_split(data), loss_fn, device=device, batch_size=batch_size,
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
    from landscape.hessian import eigenpairs

    t0 = time.perf_counter()
    with _borrowed(model, data, loss_fn, batch_size, device, forward_fn) as (ev, _):
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
    from landscape.hessian import trace as hutchinson

    t0 = time.perf_counter()
    with _borrowed(model, data, loss_fn, batch_size, device, forward_fn) as (ev, _):
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

    from landscape.engine import Directions, EvalOptions, Output, surface
    from landscape.grid import Grid

    radius = check_radius(radius)
    if ndim not in (1, 2):
        raise LandscapeError(f"ndim must be 1 or 2, got {ndim}")
    if int(points) < 3:
        raise LandscapeError(f"a quadratic fit needs at least 3 points per axis, got {points}")
    axis = (-radius, radius, int(points))
    dev = device if device is not None else next((t.device for t in model.parameters()), "cpu")
    t0 = time.perf_counter()
    surf = surface(model, _one_split(data), Grid(axis, axis if ndim == 2 else None),
                   directions=Directions(norm=norm, ignore=ignore, seed=seed),
                   evaluation=EvalOptions(loss_fn=loss_fn, accuracy_fn=None, device=dev, forward_fn=forward_fn,
                                          batch_size=batch_size or DEFAULT_BATCH_SIZE),
                   output=Output(progress=False), comm=comm)
    fit = fit_curvature(surf)
    return replace(fit, norm=norm, forward=int(points) ** ndim, seconds=time.perf_counter() - t0)


# ----------------------------------------------------------------------------- ranking


def kendall(measure: str, values: Sequence[float], gaps: Sequence[float], stderrs: Sequence[float] = (),
            labels: Sequence[str] = ()) -> Correlation:
    """Kendall's tau (``scipy.stats.kendalltau``, tau-b) of ``values`` against the generalization
    ``gaps`` of the same minima, its two-sided p-value, and a warning for few minima."""
    from scipy.stats import kendalltau

    v, g = np.asarray(values, dtype=float), np.asarray(gaps, dtype=float)
    if v.shape != g.shape or v.ndim != 1:
        raise LandscapeError("a rank correlation needs one value and one gap per minimum")
    ok = np.isfinite(v) & np.isfinite(g)
    k = int(ok.sum())
    if k < 2:
        raise LandscapeError(f"a rank correlation needs at least 2 minima with finite values, got {k}")
    res = kendalltau(v[ok], g[ok])
    tau, p = float(res.statistic), float(res.pvalue)
    warning = ""
    if k < FEW_MINIMA:
        warning = (f"only {k} minima: a rank correlation over so few proves little "
                   f"(tau = {tau:.2f}, p = {p:.2g}; Jiang et al. rank over thousands of networks)")
    return Correlation(measure, tau, p, tuple(v.tolist()), tuple(g.tolist()), tuple(float(s) for s in stderrs),
                       tuple(str(s) for s in labels), warning)


__all__ = [
    "NORMS", "AverageCase", "Correlation", "Curvature", "Sharpness", "WorstCase", "average_case", "curvature",
    "epsilon", "fit_curvature", "kendall", "lambda_max", "scale", "trace", "worst_case",
]
