"""The paper's Markov-chain illustration (Sec. 5): why stochastic rounding never settles.

A 1D non-convex objective ``f`` (a tilted double well) is minimized with noisy gradients
``f'(w) + noise * N(0, 1)`` while the weight is confined to a grid of spacing 0.5 on [-3, 8].

- SR: ``w <- Q_s(w - lr * g)``. The next state depends only on the present one, so SR is a
  Markov chain on the grid points; :func:`transition_matrix` gives its matrix exactly (Gaussian
  integrals of Q_s's "hat" probabilities) and :func:`stationary_distribution` the distribution it
  settles into. As the rate shrinks the chain moves less often, but where it goes when it moves
  does not change: the stationary distribution tends to a fixed, spread-out limit instead of
  concentrating on the minimizers ("exploration slows down, but exploitation never happens").
- BC: ``w_r <- clip(w_r - lr * g(Q_d(w_r)))``, simulated (:func:`simulate_bc`) for many chains:
  its quantized weights do concentrate on the minimizers as the rate shrinks.

    landscape-markov --out markov.png      (the figure: landscape.jobs.markov)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import ndtr

from landscape.errors import LandscapeError, is_int
from landscape.quant.quantizer import Levels, round_nearest, round_stochastic
from landscape.runtime.memory import check_fits

RATES = (1.0, 0.1, 0.01, 0.001)
MAX_CHAIN_STEPS = 10**11  # per rate: hours of simulation on one core, 2,500 times the default 20,000 x 2,000
CHAIN_BYTES = 64  # memory a BC chain takes at most during a step (float64 weight, gradient, noise, temporaries)


@dataclass(frozen=True)
class Toy:
    """The objective ``f(w) = ((w - c)^2 - a^2)^2 / 40 + tilt * (w - c)`` (minima near
    ``c - a`` and ``c + a``, the left one deeper), gradient noise of std ``noise``, and the grid
    of spacing ``delta`` from ``low`` to ``high``."""

    delta: float = 0.5
    low: float = -3.0
    high: float = 8.0
    noise: float = 2.0
    center: float = 2.5
    half_width: float = 3.0
    tilt: float = 0.15

    @property
    def grid(self) -> Levels:
        return Levels(self.delta, round(self.low / self.delta), round(self.high / self.delta), offset=0.0)

    def states(self) -> np.ndarray:
        """The grid points, ascending."""
        return self.grid.levels().numpy()

    def f(self, w):
        z = w - self.center
        return (z**2 - self.half_width**2) ** 2 / 40 + self.tilt * z

    def grad(self, w):
        z = w - self.center
        return z * (z**2 - self.half_width**2) / 10 + self.tilt


def _ramp(mu: np.ndarray, s: float, a: float) -> np.ndarray:
    """``E[(v - a)_+]`` for ``v ~ N(mu, s^2)`` (``s = 0``: ``(mu - a)_+``)."""
    d = mu - a
    if s == 0:
        return np.maximum(d, 0.0)
    z = d / s
    return d * ndtr(z) + s * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def transition_matrix(toy: Toy, lr: float) -> np.ndarray:
    """SR's exact transition matrix ``T[i, j] = P(w_{t+1} = x_j | w_t = x_i)``.

    From ``x_i`` the value before rounding is ``v ~ N(x_i - lr f'(x_i), (lr noise)^2)``, clipped
    to the grid's range; Q_s sends it to ``x_j`` with probability ``max(0, 1 - |v - x_j| / delta)``
    (at the two ends, with all the mass beyond). Each such piecewise-linear weight is a sum of ramps
    ``(v - a)_+``, whose Gaussian mean is closed-form. Rows sum to 1.
    """
    x = toy.states()
    d = toy.delta
    mu = x - lr * toy.grad(x)
    s = lr * toy.noise
    n = len(x)
    T = np.empty((n, n))
    for j, y in enumerate(x):
        if j == 0:
            T[:, j] = 1.0 - (_ramp(mu, s, y) - _ramp(mu, s, y + d)) / d
        elif j == n - 1:
            T[:, j] = (_ramp(mu, s, y - d) - _ramp(mu, s, y)) / d
        else:
            T[:, j] = (_ramp(mu, s, y - d) - 2 * _ramp(mu, s, y) + _ramp(mu, s, y + d)) / d
    return np.clip(T, 0.0, 1.0)


def stationary_distribution(T: np.ndarray) -> np.ndarray:
    """The ``pi >= 0`` with ``pi T = pi`` and ``sum(pi) = 1`` (a left eigenvector for eigenvalue 1).

    Solved as a least-squares system on ``(T - I)^T`` scaled by its largest entry, so that a chain
    that rarely moves (a tiny rate: ``T = I + O(lr)``) is solved as accurately as a fast one.
    """
    n = len(T)
    A = (T - np.eye(n)).T
    A = A / max(np.abs(A).max(), 1e-300)
    A = np.vstack([A, np.ones(n)])
    b = np.zeros(n + 1)
    b[-1] = 1.0
    pi = np.linalg.lstsq(A, b, rcond=None)[0]
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def _histogram(toy: Toy, w: torch.Tensor) -> np.ndarray:
    g = toy.grid
    idx = (torch.floor(w / g.delta + 0.5).clamp(g.low, g.high) - g.low).long()
    return (torch.bincount(idx, minlength=g.size).double() / len(w)).numpy()


def _start(toy: Toy, chains: int, gen: torch.Generator) -> torch.Tensor:
    return toy.low + (toy.high - toy.low) * torch.rand(chains, generator=gen, dtype=torch.float64)


def simulate_bc(toy: Toy, lr: float, steps: int = 20_000, chains: int = 2000, seed: int = 0) -> np.ndarray:
    """BC run for ``steps`` steps from ``chains`` starts spread uniformly over the range: the
    distribution of its quantized weight ``Q_d(w_r)`` over the grid points at the end."""
    gen = torch.Generator().manual_seed(seed)
    grid = toy.grid
    w = _start(toy, chains, gen)
    for _ in range(steps):
        g = toy.grad(round_nearest(w, grid)) + toy.noise * torch.randn(chains, generator=gen, dtype=torch.float64)
        w = (w - lr * g).clamp_(toy.low, toy.high)
    return _histogram(toy, round_nearest(w, grid))


def simulate_sr(toy: Toy, lr: float, steps: int, chains: int = 2000, seed: int = 0,
                start: float | None = None) -> np.ndarray:
    """SR simulated with :func:`landscape.quant.round_stochastic` (a check of the exact matrix):
    the distribution over the grid points after ``steps`` steps, from ``start`` or uniform starts."""
    gen = torch.Generator().manual_seed(seed)
    grid = toy.grid
    w0 = _start(toy, chains, gen) if start is None else torch.full((chains,), float(start), dtype=torch.float64)
    w = round_nearest(w0, grid)
    for _ in range(steps):
        g = toy.grad(w) + toy.noise * torch.randn(chains, generator=gen, dtype=torch.float64)
        w = round_stochastic(w - lr * g, grid, gen)
    return _histogram(toy, w)


def spread(states: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Standard deviation and entropy (nats) of the distribution ``p`` over ``states``."""
    mean = float((p * states).sum())
    sd = math.sqrt(float((p * (states - mean) ** 2).sum()))
    nz = p[p > 0]
    return sd, float(-(nz * np.log(nz)).sum())


@dataclass
class MarkovResult:
    """SR's stationary distributions and BC's simulated ones, one per rate, over ``toy.states()``."""

    toy: Toy
    rates: list[float]
    sr: list[np.ndarray] = field(default_factory=list)
    bc: list[np.ndarray] = field(default_factory=list)
    steps: int = 0
    chains: int = 0
    sr_spread: list[tuple[float, float]] = field(default_factory=list)  # (sd, entropy) per rate
    bc_spread: list[tuple[float, float]] = field(default_factory=list)

    def table(self) -> str:
        """A Markdown table of each distribution's spread per rate."""
        rows = ["| rate | SR sd | SR entropy (nats) | BC sd | BC entropy (nats) |", "|---|---|---|---|---|"]
        for lr, (ssd, sen), (bsd, ben) in zip(self.rates, self.sr_spread, self.bc_spread, strict=True):
            rows.append(f"| {lr:g} | {ssd:.3f} | {sen:.3f} | {bsd:.3f} | {ben:.3f} |")
        return "\n".join(rows)


def seconds_per_chain_step(toy: Toy, chains: int, steps: int = 20) -> float:
    """How long one BC step of one chain takes here, measured on ``steps`` steps of up to 10,000 chains."""
    n = max(1, min(chains, 10_000))
    t0 = time.perf_counter()
    simulate_bc(toy, 0.1, steps=steps, chains=n)
    return (time.perf_counter() - t0) / (steps * n)


def check_work(toy: Toy, steps: int, chains: int, rates: int = 1) -> None:
    """Refuse, before simulating, a BC simulation of more than :data:`MAX_CHAIN_STEPS` chain steps
    per rate (saying how long it would take here) or of more chains than memory holds."""
    for name, value in (("steps", steps), ("chains", chains)):
        if not is_int(value) or value < 1:
            raise LandscapeError(f"`{name}` must be a positive integer, got {value!r}")
    check_fits(CHAIN_BYTES * chains, f"{chains} chains (`chains`)")
    if steps * chains > MAX_CHAIN_STEPS:
        hours = steps * chains * rates * seconds_per_chain_step(toy, chains) / 3600
        took = f"{hours / 8766:.3g} years" if hours > 8766 else f"{hours / 24:.3g} days" if hours > 48 else \
            f"{hours:.3g} hours"
        raise LandscapeError(f"`steps` x `chains` = {steps * chains:.3g} chain steps per rate, {rates} rate(s): about "
                             f"{took} here; at most {MAX_CHAIN_STEPS:.0e} chain steps per rate")


def compare_rates(toy: Toy | None = None, rates: Sequence[float] = RATES, steps: int = 20_000,
                  chains: int = 2000, seed: int = 0) -> MarkovResult:
    """SR's exact stationary distribution and BC's simulated distribution at each rate, with their
    spreads. A simulation too long or too large is refused first (:func:`check_work`)."""
    toy = toy or Toy()
    check_work(toy, steps, chains, len(rates))
    result = MarkovResult(toy, [float(r) for r in rates], steps=steps, chains=chains)
    x = toy.states()
    for lr in result.rates:
        result.sr.append(stationary_distribution(transition_matrix(toy, lr)))
        result.bc.append(simulate_bc(toy, lr, steps=steps, chains=chains, seed=seed))
        result.sr_spread.append(spread(x, result.sr[-1]))
        result.bc_spread.append(spread(x, result.bc[-1]))
    return result


__all__ = ["RATES", "MarkovResult", "Toy", "check_work", "compare_rates", "simulate_bc", "simulate_sr", "spread",
           "stationary_distribution", "transition_matrix"]
