"""How many torch threads a process uses, chosen once and given back afterwards.

Order of precedence: an explicit count (``--threads``, ``threads=``), then ``OMP_NUM_THREADS``,
then a default that is safe on a shared machine: the cores this process may use, divided among
the MPI ranks on the node, and never more than the cores idle right now (the load average and the
processes runnable right now say how many are busy). Intra-op threads that compete for busy cores spin and wait on
each other; on a loaded 2-core machine that made a surface 2-5x slower than one thread
(``benchmarks/bench_threads.py`` measures it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def busy_cores() -> float:
    """How many cores other work keeps busy: the larger of the 1-minute load average and the
    processes runnable right now besides this one (``/proc/loadavg``; the average alone lags a
    load that just started by a minute)."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        load = 0.0
    try:
        with open("/proc/loadavg") as f:
            running = int(f.read().split()[3].split("/")[0]) - 1
    except (OSError, ValueError, IndexError):
        running = 0
    return max(load, float(running))


def idle_cores(cores: int | None = None) -> int:
    """Cores not busy with other work: ``cores`` minus :func:`busy_cores`, at least 1."""
    cores = cores or usable_cores()
    return max(1, min(cores, int(cores - busy_cores() + 0.5)))


def default_threads(ranks_on_node: int = 1) -> int:
    """Threads per process when none is asked for (see the module docstring)."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cores = usable_cores()
    return max(1, min(cores, idle_cores(cores)) // max(1, ranks_on_node))


@contextmanager
def threads(count: int | None = None, ranks_on_node: int = 1) -> Iterator[int]:
    """Use ``count`` torch threads (None: :func:`default_threads`) inside the block, then restore
    the caller's setting: a library call never changes the process's thread count for good."""
    before = torch.get_num_threads()
    n = int(count) if count else default_threads(ranks_on_node)
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)
