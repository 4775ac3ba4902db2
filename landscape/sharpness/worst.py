"""The worst-case sharpness: the largest loss increase within a ball (p=2) or a box (p=inf), and
Keskar et al.'s epsilon-sharpness.

The maximizer. ``delta = T * u`` with ``||u||_p <= radius`` (``T`` the normalization's scale), so
the problem is ``max L(theta + T u)`` over a ball or a box. Near a minimizer the loss is close to
the quadratic ``1/2 u^T A u`` with ``A = T H T``, whose maximum over the ball is at its top
eigenvector and over the box at a vertex; first-order ascent from ``u = 0`` finds neither reliably
(it stops at the first vertex it reaches, or creeps towards the top eigenvector as power iteration
does). So every maximization:

1. runs ``KRYLOV`` (20) steps of Lanczos on ``A`` (:func:`landscape.hessian.lanczos`, the
   Hessian's products; ``p=2``: fewer, once the top Ritz pair has converged to 1e-3): its Ritz
   pairs are a model of the loss in the directions that matter (the box's maximum depends on all
   of them: fewer steps gave 88 % of it on a 12-dimensional quadratic);
2. takes its starting points from that model: ``p=2``: the top Ritz vector on the sphere;
   ``p="inf"``: vertices ``radius * sign(.)`` found by rounding random combinations of the Ritz
   vectors (Goemans-Williamson style) and improving each by single sign flips on the model, best
   first; then the gradient at ``theta``, then random points (a Gaussian direction on the sphere, a
   random vertex of the box);
3. runs ``restarts`` projected gradient ascents, one from each starting point (the sign of the
   Hessian-based ones chosen by the loss), on the loss itself: steps of ``eta`` along the
   normalized gradient with respect to ``u`` (``p="inf"``: its sign), projected back; ``eta``
   starts at ``2 * radius`` and is halved, from the best point so far, whenever a step does not
   raise the loss (APGD's adaptive step, simplified);
4. keeps the best loss seen.

``converged`` says the search stopped, in a stated sense: the ascent that gave the value reached a
point where a step no longer moves it (``||u' - u|| <= 1e-4 radius``: a stationary point of the
projected ascent), or its best rise grew by at most ``STALL_RTOL`` (0.1 %) over its last
``STALL_STEPS`` (5) steps, before its ``steps`` ran out; and the last restart did not raise the best
rise by more than 0.1 %. It is not a proof of the global maximum, which no first-order method
gives (the value is a lower bound of it).

Cost, per batch the maximum is taken over (the whole data, or each batch of ``m``): 1 forward and
1 backward pass at ``theta``; at most ``KRYLOV`` Hessian-vector products (each a backward pass of
the gradient and, where its graph is not kept, a forward and a backward pass to build it); 2
forward passes to choose the sign of each Hessian-based start; and per restart 1 + (steps taken)
forward and backward passes. The result states the passes counted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from dataclasses import replace as dc_replace

import numpy as np
import torch
from torch import nn

from landscape.data.batches import TensorBatches
from landscape.directions.options import Directions
from landscape.errors import LandscapeError
from landscape.evaluation.evaluator import evaluate
from landscape.evaluation.options import EvalOptions
from landscape.hessian import HessianOperator, Krylov, lanczos
from landscape.runtime.parallel import map_points, on_root, share
from landscape.sharpness.perturbation import (
    CountedForward,
    borrowed,
    check_count,
    check_directions,
    check_evaluation,
    check_p,
    check_radius,
    cpu_copy,
    move_to,
    sample_generator,
    scale,
    world_or,
)
from landscape.sharpness.results import WorstCase
from landscape.space.params import is_float

STEPS = 20  # gradient steps per ascent, at most
RESTARTS = 3  # ascents from different starting points; the best is kept
KRYLOV = 20  # Lanczos steps on T H T for the starting points (p=2: fewer once its top pair has converged)
KRYLOV_TOL = 1e-3  # p=2: the top Ritz pair's residual, relative to its value, that ends Lanczos
STALL_STEPS = 5  # converged: the best rise grew by at most STALL_RTOL of itself over this many steps
STALL_RTOL = 1e-3
STATIONARY = 1e-4  # a step moving u by less than this times the radius: a stationary point
CANDIDATES = 64  # p=inf: random roundings of the Ritz vectors searched on the quadratic model
FLIPS = 256  # p=inf: rounds of single sign flips on the model, at most
MODEL_VALUES = 8_000_000  # p=inf: the model's candidates are searched in chunks of at most this many values


@dataclass
class _Problem:
    """``max L(origin + T u)`` over ``||u||_p <= radius`` on some batches: the loss, its gradient with
    respect to ``u``, and the passes spent. ``u`` is a list of tensors aligned with ``names``."""

    model: nn.Module
    origin: dict
    names: list[str]
    T: list[torch.Tensor]
    loss_fn: object
    forward: CountedForward
    radius: float
    p: int | str
    batches: object
    backward_calls: int = 0

    def move(self, u) -> None:
        move_to(self.model, self.origin, {k: t * x for k, t, x in zip(self.names, self.T, u, strict=True)})

    def value(self, u) -> float:
        self.move(u)
        return evaluate(self.model, self.batches, self.loss_fn, None, self.forward)["loss"]

    def value_and_grad(self, u) -> tuple[float, list[torch.Tensor]]:
        """The mean loss at ``u`` and its gradient with respect to ``u`` (``T`` times the parameters'):
        one forward and one backward pass of every batch, in eval mode as the model stands."""
        self.move(u)
        params = dict(self.model.named_parameters())
        moving = [i for i, t in enumerate(self.T) if bool(t.any())]
        ps = [params[self.names[i]] for i in moving]
        for p in ps:
            p.requires_grad_(True)
        grads = [torch.zeros_like(t) for t in self.T]
        total, n = 0.0, 0
        with torch.enable_grad():
            for batch, size in self.batches:
                out = self.forward(self.model, batch)
                loss = self.loss_fn(out.float() if torch.is_tensor(out) else out, batch)
                for i, g in zip(moving, torch.autograd.grad(loss, ps, allow_unused=True), strict=True):
                    if g is not None:
                        grads[i].add_(g, alpha=float(size))
                self.backward_calls += 1
                total += float(loss.detach().double()) * size
                n += size
        return total / n, [t * g.div_(n) for t, g in zip(self.T, grads, strict=True)]

    def norm(self, u) -> float:
        return math.sqrt(sum(float(x.double().pow(2).sum()) for x in u))

    def step(self, u, g, eta: float, generator: torch.Generator):
        """One projected ascent step from ``u`` along ``g`` (the gradient with respect to ``u``)."""
        if self.p == 2:
            gnorm = self.norm(g)
            if not gnorm > 0:
                g = self.random(generator)
                gnorm = self.norm(g) or 1.0
            v = [x + (eta / gnorm) * y for x, y in zip(u, g, strict=True)]
            vnorm = self.norm(v)
            return [x.mul_(self.radius / vnorm) for x in v] if vnorm > self.radius else v
        signs = [torch.sign(y) for y in g]
        if all(not bool(s.any()) for s in signs):
            signs = [torch.sign(x) for x in self.random(generator)]
        return [torch.clamp(x + eta * s, -self.radius, self.radius) * (t != 0)
                for x, s, t in zip(u, signs, self.T, strict=True)]

    def random(self, generator: torch.Generator):
        """A random point on the sphere (p=2) or a random vertex of the box (p=inf)."""
        g = [torch.randn(t.shape, generator=generator).to(t) * (t != 0) for t in self.T]
        if self.p == 2:
            n = self.norm(g) or 1.0
            return [x * (self.radius / n) for x in g]
        return [torch.sign(x) * self.radius for x in g]

    def moved(self, a, b) -> bool:
        if self.p == 2:
            return self.norm([x - y for x, y in zip(a, b, strict=True)]) > STATIONARY * self.radius
        return not all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


class _Scaled:
    """``v -> T H T v`` on the flat parameters a Hessian operator holds (``t`` flat ``T``)."""

    def __init__(self, op: HessianOperator, t: np.ndarray):
        self.op, self.t, self.size = op, t, op.size

    def matvec(self, v) -> np.ndarray:
        return self.t * self.op.matvec(self.t * np.asarray(v, dtype=np.float64))


def _model_vertices(theta: np.ndarray, Y: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Vertices ``s`` (entries +-1, 0 where nothing moves) of the box, best first, distinct up to
    sign, that are local maxima (under single sign flips) of the model ``1/2 s^T W W^T s`` built from
    the Ritz pairs with positive values (``W = Y sqrt(theta)``): random roundings ``sign(W c)``,
    improved by sign iterations and single flips, each of which raises the model (it is convex)."""
    keep = theta > 0
    if not keep.any():
        return []
    W = Y[:, keep] * np.sqrt(theta[keep])
    W[~mask] = 0.0
    diag = (W * W).sum(1)
    n = len(W)
    chunk = max(1, min(CANDIDATES, MODEL_VALUES // max(n, 1)))
    found: dict[bytes, tuple[float, np.ndarray]] = {}
    for start in range(0, CANDIDATES, chunk):
        U = np.sign(W @ rng.standard_normal((W.shape[1], min(chunk, CANDIDATES - start))))
        U[U == 0] = 1.0
        U[~mask] = 0.0
        for _ in range(FLIPS):  # sign iteration: s <- sign(A s), while it raises the model
            P = W @ (W.T @ U)
            S = np.where(P != 0, np.sign(P), U) * mask[:, None]
            if np.array_equal(S, U):
                break
            U = S
        cols = np.arange(U.shape[1])
        for _ in range(FLIPS):  # single flips: the gain of flipping s_i is -2 s_i (A s)_i + 2 A_ii
            P = W @ (W.T @ U)
            gain = -2.0 * U * P + 2.0 * diag[:, None]
            gain[~mask] = -np.inf
            i = gain.argmax(0)
            best = gain[i, cols]
            move = best > 1e-12 * max(float(diag.sum()), 1e-300)
            if not move.any():
                break
            U[i[move], cols[move]] *= -1.0
        values = 0.5 * ((W.T @ U) ** 2).sum(0)
        for c in range(U.shape[1]):
            s = U[:, c]
            first = s[np.flatnonzero(s)[0]] if s.any() else 1.0
            key = (s * first).astype(np.int8).tobytes()
            if key not in found:
                found[key] = (float(values[c]), s * first)
    return [s for _, s in sorted(found.values(), key=lambda vs: -vs[0])]


def _maximize(problem: _Problem, hessian_data, steps: int, restarts: int, seed: int, j: int,
              device: torch.device) -> dict:
    """The search of the module docstring on ``problem``'s batches; its ``hessian_data`` (the same
    batches, as the Hessian operator takes them). Returns the loss at ``theta``, the best loss, the
    best ``u``, ``converged`` and the passes and products spent."""
    generator = sample_generator(seed, j)
    rng = np.random.default_rng([int(seed), int(j)])
    zero = [torch.zeros_like(t) for t in problem.T]
    base, g0 = problem.value_and_grad(zero)
    active = [k for k, t in zip(problem.names, problem.T, strict=True) if bool(t.any())]
    at = {k: i for i, k in enumerate(problem.names)}

    def from_flat(v: np.ndarray) -> list[torch.Tensor]:
        u = [torch.zeros_like(t) for t in problem.T]
        for k, x in op.split(torch.from_numpy(np.ascontiguousarray(v))).items():
            u[at[k]] = x.to(problem.T[at[k]])
        return u

    hvp_forward = CountedForward(problem.forward.forward_fn)
    op = HessianOperator(problem.model, hessian_data, problem.loss_fn, params=active, device=device,
                         forward_fn=hvp_forward)

    def top_converged(alpha, beta, rnorm) -> bool:  # p=2 starts from the top Ritz vector only
        theta, S = Krylov(alpha, beta[:len(alpha) - 1], None, rnorm, len(alpha)).ritz()
        return rnorm * abs(S[-1, -1]) <= KRYLOV_TOL * max(abs(theta[-1]), 1e-300)

    try:
        t = op.flatten({k: problem.T[at[k]] for k in active})
        krylov = lanczos(_Scaled(op, t), KRYLOV, seed=rng, stop=top_converged if problem.p == 2 else None)
    finally:
        op.release()
    hvps = krylov.matvecs
    theta, S = krylov.ritz()
    Y = krylov.basis.T @ S  # Ritz vectors (columns, ascending values)
    mask = t != 0
    if problem.p == 2:
        model_starts = [Y[:, -1] / (np.linalg.norm(Y[:, -1]) or 1.0) * problem.radius] if theta[-1] > 0 else []
    else:
        model_starts = [s * problem.radius for s in _model_vertices(theta, Y, mask, rng)]

    def signed(v: np.ndarray) -> list[torch.Tensor]:
        """``v`` or ``-v``, whichever raises the loss more (the model cannot tell them apart)."""
        plus, minus = from_flat(v), from_flat(-v)
        return plus if problem.value(plus) >= problem.value(minus) else minus

    def starts():
        if model_starts:
            yield signed(model_starts[0])
        if problem.norm(g0) > 0:
            yield problem.step(zero, g0, 2.0 * problem.radius, generator)
        for v in (model_starts[1:] if problem.p != 2 else []):
            yield signed(v)
        while True:
            yield problem.random(generator)

    best, best_u, converged = -math.inf, zero, False
    for r, u0 in zip(range(restarts), starts(), strict=False):
        before = best
        value, u, stopped = _ascend(problem, u0, steps, base, generator)
        if value > best:
            best, best_u, converged = value, u, stopped
        if r == restarts - 1 and r > 0 and best - before > STALL_RTOL * max(best - base, 0.0):
            converged = False  # the last restart still found more: more restarts may too
    # passes: calls per batch; a product is one backward pass, plus a first one where its graph was built
    count = sum(1 for _ in problem.batches)
    return {"base": base, "best": best, "u": best_u, "converged": bool(converged), "hvps": int(hvps),
            "forward": (problem.forward.calls + hvp_forward.calls) / count,
            "backward": (problem.backward_calls + hvp_forward.calls) / count + hvps}


def _ascend(problem: _Problem, u0, steps: int, base: float, generator: torch.Generator):
    """Projected gradient ascent from ``u0`` (see the module docstring): the best loss, its ``u``, and
    whether it converged before its ``steps`` ran out."""
    best, g = problem.value_and_grad(u0)
    best_u, best_g = u0, g
    history = [best]
    eta = 2.0 * problem.radius
    for _ in range(steps):
        u = problem.step(best_u, best_g, eta, generator)
        if not problem.moved(u, best_u):
            return best, best_u, True
        value, g = problem.value_and_grad(u)
        if value > best:
            best, best_u, best_g = value, u, g
        else:  # no gain: a smaller step from the best point
            eta /= 2.0
        history.append(best)
        if len(history) > STALL_STEPS and \
                history[-1] - history[-1 - STALL_STEPS] <= STALL_RTOL * max(history[-1] - base, 0.0):
            return best, best_u, True
    return best, best_u, False


def _worst(model, data, *, measure: str, scale_of, radius: float, norm: str, ignore: str, p, steps: int,
           restarts: int, m: int | None, seed: int, evaluation: EvalOptions, comm) -> WorstCase:
    comm = world_or(comm)
    t0 = time.perf_counter()
    with borrowed(model, data, evaluation) as (ev, origin):
        T = scale_of(origin)
        names = [k for k, v in origin.items() if is_float(v)]
        if not any(bool(T[k].any()) for k in names):
            raise LandscapeError(f"{measure}: no parameter is perturbed (every tensor is left out by `ignore`)")
        Ts = [T[k].to(device=origin[k].device, dtype=origin[k].dtype) for k in names]

        def problem(batches) -> _Problem:
            return _Problem(model, origin, names, Ts, ev.loss_fn, CountedForward(evaluation.forward_fn), radius, p,
                            batches)

        if m is None:
            def whole() -> dict:
                pb = problem(ev.batches)
                r = _maximize(pb, ev.batches, steps, restarts, seed, 0, ev.device)
                r["delta"] = {k: (t * x).detach().cpu() for k, t, x in zip(names, Ts, r.pop("u"), strict=True)}
                return r

            row = on_root(comm, whole)
            rows, weights, delta = [row], [1.0], row["delta"]
        else:
            tb = ev.batches
            if not isinstance(tb, TensorBatches):
                raise LandscapeError("m-sharpness needs in-memory data (a Dataset or tensors), not a loader")
            starts = list(range(0, tb.n, m))

            def job(j: int) -> dict:
                lo, hi = starts[j], min(tb.n, starts[j] + m)
                batch = tb.slice(lo, hi)
                r = _maximize(problem([(batch, hi - lo)]), [batch], steps, restarts, seed, j, ev.device)
                del r["u"]
                r["n"] = hi - lo
                return r

            got: dict[int, dict] = {}
            map_points(job, range(len(starts)), got.__setitem__, comm)
            rows = share(comm, [got[j] for j in range(len(starts))] if comm.rank == 0 else None)
            total = sum(r["n"] for r in rows)
            weights = [r["n"] / total for r in rows]
            delta = None
    value = sum(w * (r["best"] - r["base"]) for w, r in zip(weights, rows, strict=True))
    base = sum(w * r["base"] for w, r in zip(weights, rows, strict=True))
    forward = math.ceil(sum(w * r["forward"] for w, r in zip(weights, rows, strict=True)) - 1e-9)
    backward = math.ceil(sum(w * r["backward"] for w, r in zip(weights, rows, strict=True)) - 1e-9)
    return WorstCase(measure=measure, value=float(value), stderr=float("nan"), radius=radius, norm=norm, ignore=ignore,
                     loss=float(base), forward=forward, backward=backward, seconds=time.perf_counter() - t0,
                     converged=all(r["converged"] for r in rows), p=p, steps=steps, restarts=restarts,
                     hvps=max(r["hvps"] for r in rows), m=m, delta=delta)


def worst_case(
    model: nn.Module,
    data,
    *,
    radius: float,
    p: int | str = 2,
    m: int | None = None,
    steps: int = STEPS,
    restarts: int = RESTARTS,
    directions: Directions | None = None,
    evaluation: EvalOptions | None = None,
    comm=None,
) -> WorstCase:
    """``max L(theta + delta) - L(theta)`` over ``delta = T * u``, ``||u||_p <= radius`` (``p`` 2 or
    ``"inf"``; ``T`` the scale of ``directions.norm``: each filter's root-mean-square, ``|theta|``
    or 1; ``directions`` default: filter normalization, biases and BatchNorm left out, seed 0;
    ``Directions(norm="elementwise")`` perturbs every parameter, as Andriushchenko et al.).
    ``m``: m-sharpness, the mean over consecutive batches of ``m`` samples of each batch's own
    maximum (SAM's and Andriushchenko et al.'s definition; batches spread over MPI ranks).

    Found by the search of :mod:`landscape.sharpness.worst`: starting points from 20 Lanczos steps on
    the scaled Hessian, then ``restarts`` projected gradient ascents of at most ``steps`` steps
    each; the best value, ``converged`` as defined there, and the passes spent. ``.delta`` is the
    maximizer (None with ``m``).
    """
    radius = check_radius(radius)
    p = check_p(p)
    steps, restarts = check_count(steps, "steps"), check_count(restarts, "restarts")
    m = None if m is None else check_count(m, "m")
    directions = check_directions(directions, "worst_case")
    evaluation = check_evaluation(evaluation, "worst_case", gradients=True)
    norm, ignore = directions.norm, directions.ignore
    return _worst(model, data, measure="worst_case", scale_of=lambda o: scale(o, norm, ignore), radius=radius,
                  norm=norm, ignore=ignore, p=p, steps=steps, restarts=restarts, m=m, seed=directions.seed,
                  evaluation=evaluation, comm=comm)


def epsilon(
    model: nn.Module,
    data,
    *,
    eps: float,
    steps: int = STEPS,
    restarts: int = RESTARTS,
    seed: int = 0,
    evaluation: EvalOptions | None = None,
    comm=None,
) -> WorstCase:
    """Keskar et al.'s epsilon-sharpness, as they define it: ``max L(theta + delta) - L(theta)``
    over the box ``|delta_i| <= eps (|theta_i| + 1)`` of every parameter, reported as
    ``100 * rise / (1 + L(theta))`` (percent). The maximum is searched as :func:`worst_case`
    searches it with ``p="inf"`` (Keskar et al. used L-BFGS-B), from ``seed``: a lower bound of the
    true maximum, like theirs.
    """
    eps = check_radius(eps, "eps")
    steps, restarts = check_count(steps, "steps"), check_count(restarts, "restarts")
    seed = Directions(seed=seed).seed  # checked as every seed is
    evaluation = check_evaluation(evaluation, "epsilon", gradients=True)

    def box(origin):
        return {k: (v.abs() + 1.0 if is_float(v) else torch.zeros_like(v)) for k, v in cpu_copy(origin).items()}

    r = _worst(model, data, measure="epsilon", scale_of=box, radius=eps, norm="box", ignore="none", p="inf",
               steps=steps, restarts=restarts, m=None, seed=seed, evaluation=evaluation, comm=comm)
    return dc_replace(r, value=100.0 * r.value / (1.0 + r.loss))
