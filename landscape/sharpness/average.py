"""The average-case sharpness: the mean loss increase under random perturbations of a given size.
"""

from __future__ import annotations

import time

import numpy as np
from torch import nn

from landscape.directions.options import Directions
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.runtime.parallel import map_points, share
from landscape.sharpness.perturbation import (
    borrowed,
    check_count,
    check_directions,
    check_evaluation,
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
    directions: Directions | None = None,
    evaluation: EvalOptions | None = None,
    samples: int | None = None,
    tol: float = 0.05,
    comm=None,
) -> AverageCase:
    """``E[L(theta + delta)] - L(theta)`` over random ``delta`` drawn like the surfaces'
    directions (``directions``: its ``norm``, ``ignore`` and ``seed``; default filter normalization,
    biases and BatchNorm left out, seed 0): ``"none"``: ``delta ~ N(0, radius^2 I)``; ``"filter"``:
    a filter-normalized Gaussian direction times ``radius``; ``"elementwise"``:
    ``delta ~ N(0, radius^2 diag(theta^2))`` over every parameter (Andriushchenko et al.'s adaptive
    average case).

    Monte Carlo, ``BLOCK`` (10) samples at a time: stops once the standard error is at most ``tol``
    times the value (``tol=0``: never early), or after ``samples`` (default 100); ``converged``:
    that criterion holds at the end. Sample k is drawn from its own generator of ``(seed, k)``.
    Cost: one evaluation of the loss per sample, and one at the minimizer.
    """
    radius = check_radius(radius)
    directions = check_directions(directions, "average_case")
    evaluation = check_evaluation(evaluation, "average_case", gradients=False)
    max_samples = MAX_SAMPLES if samples is None else check_count(samples, "samples")
    if not (isinstance(tol, int | float) and tol >= 0):
        raise LandscapeError(f"tol must be a number >= 0, got {tol!r}")
    norm, ignore, seed = directions.norm, directions.ignore, directions.seed
    comm = world_or(comm)
    t0 = time.perf_counter()
    with borrowed(model, data, evaluation) as (ev, origin):
        base = ev()["loss"]
        origin_cpu = cpu_copy(origin)

        def job(k: int) -> dict:
            move_to(model, origin, draw(origin_cpu, norm, ignore, radius, sample_generator(seed, k)))
            return {"loss": ev()["loss"]}

        values: list[float] = []
        while len(values) < max_samples:
            todo = range(len(values), min(max_samples, len(values) + BLOCK))
            got: dict[int, float] = {}
            map_points(job, todo, lambda k, r, got=got: got.__setitem__(k, r["loss"] - base), comm)
            values += share(comm, [got[k] for k in todo] if comm.rank == 0 else None)
            mean, err = mean_stderr(values)
            if tol > 0 and len(values) >= min(BLOCK, max_samples) and err <= tol * abs(mean):
                break
    mean, err = mean_stderr(values)
    return AverageCase(measure="average_case", value=mean, stderr=err, radius=radius, norm=norm, ignore=ignore,
                       loss=base, forward=len(values) + 1, backward=0, seconds=time.perf_counter() - t0,
                       converged=bool(tol > 0 and err <= tol * abs(mean)), samples=len(values), tol=float(tol),
                       values=np.asarray(values))
