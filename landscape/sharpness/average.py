"""The average-case sharpness: the mean loss increase under random perturbations of a given size.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from landscape.data.batches import forward
from landscape.errors import LandscapeError
from landscape.runtime.parallel import map_points, share
from landscape.sharpness.perturbation import (
    borrowed,
    check_norm,
    check_radius,
    cpu_copy,
    draw,
    mean_stderr,
    move_to,
    sample_generator,
    world_or,
)
from landscape.sharpness.results import AverageCase

MAX_SAMPLES = 100  # average_case's Monte Carlo samples at most, unless `samples` says otherwise
BLOCK = 10  # samples between two checks of the standard error (fixed: the same stop serially and under MPI)


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
    radius = check_radius(radius)
    check_norm(norm, ignore)
    if samples is not None and int(samples) < 1:
        raise LandscapeError(f"samples must be at least 1, got {samples}")
    if not (tol >= 0):
        raise LandscapeError(f"tol must be >= 0, got {tol}")
    max_samples = int(samples) if samples is not None else MAX_SAMPLES
    comm = world_or(comm)
    t0 = time.perf_counter()
    with borrowed(model, data, loss_fn, batch_size, device, forward_fn) as (ev, origin):
        base = ev()["loss"]
        origin_cpu = cpu_copy(origin)

        def job(k: int) -> dict:
            move_to(model, origin, draw(origin_cpu, norm, ignore, radius, sample_generator(seed, k)))
            return {"loss": ev()["loss"]}

        values: list[float] = []
        converged = False
        while len(values) < max_samples:
            todo = range(len(values), min(max_samples, len(values) + BLOCK))
            got: dict[int, float] = {}
            map_points(job, todo, lambda k, r, got=got: got.__setitem__(k, r["loss"] - base), comm)
            values += share(comm, [got[k] for k in todo] if comm.rank == 0 else None)
            mean, err = mean_stderr(values)
            if tol > 0 and len(values) >= min(BLOCK, max_samples) and err <= tol * abs(mean):
                converged = True
                break
    mean, err = mean_stderr(values)
    return AverageCase("average_case", mean, err, radius, norm, base, len(values) + 1, 0,
                       time.perf_counter() - t0, len(values), converged, np.asarray(values))
