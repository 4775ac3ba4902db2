"""The worst-case sharpness: the largest loss increase within a ball (p=2) or a box (p=inf), and
Keskar et al.'s epsilon-sharpness.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from landscape.data.batches import TensorBatches, forward
from landscape.errors import LandscapeError
from landscape.evaluation.evaluator import evaluate
from landscape.runtime.parallel import map_points, on_root, share
from landscape.sharpness.perturbation import (
    borrowed,
    check_norm,
    check_p,
    check_radius,
    cpu_copy,
    move_to,
    sample_generator,
    scale,
    world_or,
)
from landscape.sharpness.results import WorstCase
from landscape.space.params import IGNORES, ignored, is_float


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
        move_to(model, origin, {k: tk * uk for k, tk, uk in zip(names, Ts, u, strict=True)})
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
    if int(steps) < 1:
        raise LandscapeError(f"steps must be at least 1, got {steps}")
    if m is not None and int(m) < 1:
        raise LandscapeError(f"m must be at least 1, got {m}")
    comm = world_or(comm)
    t0 = time.perf_counter()
    with borrowed(model, data, loss_fn, batch_size, device, forward_fn) as (ev, origin):
        T = T_of(origin)
        lf, ff = ev.loss_fn, forward_fn
        if m is None:
            def whole():
                base, best, delta = _ascend(model, origin, ev.batches, lf, ff, T, radius, p, steps,
                                            sample_generator(seed, 0))
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
                                            steps, sample_generator(seed, j))
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
    check_norm(norm, ignore)
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
        cpu = cpu_copy(origin)
        return {k: (torch.zeros_like(v) if not is_float(v) or ignored(v, ignore) else v.abs() + 1.0)
                for k, v in cpu.items()}

    r = _worst(model, data, measure="epsilon", T_of=box, radius=eps, norm="box", p="inf", steps=steps, m=None,
               loss_fn=loss_fn, seed=seed, batch_size=batch_size, device=device, forward_fn=forward_fn, comm=comm)
    from dataclasses import replace

    return replace(r, value=100.0 * r.value / (1.0 + r.loss))
