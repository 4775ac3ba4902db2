"""How many torch threads a process uses: decided once, by the command, and given back afterwards.

A command (:mod:`landscape.jobs`) decides the count once, at its start (:func:`choose_threads`), and
passes it down explicitly; the library never applies a policy of its own: ``threads=None`` leaves
torch's count as the caller set it, an explicit count is used for the call and the caller's count
restored afterwards (:func:`using_threads`).

The policy's order of precedence: an explicit count (``--threads``), then ``OMP_NUM_THREADS``,
then a default that is safe on a shared machine: the cores this process may use, divided among
the MPI ranks on the node, and never more than the cores idle right now (measured over 0.05 s from
``/proc/stat``, at most every ``REUSE_SECONDS``). Intra-op threads that compete for busy cores spin and wait on
each other; on a loaded 2-core machine that made a surface 2-17x slower than one thread
(``benchmarks/bench_threads.py`` measures it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from landscape.errors import LandscapeError

PER_CORE = 4  # threads per usable core at most: more only slow torch down, and 100,000 exhausted libgomp's memory

def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), else the machine's count."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _cpu_times(cpus: set[int]) -> tuple[int, int] | None:
    """(busy, total) jiffies of ``cpus`` since boot, from ``/proc/stat``; None where there is none."""
    busy = total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
                    continue
                ticks = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
                total += sum(ticks)
                busy += sum(ticks) - ticks[3] - ticks[4]
    except (OSError, ValueError):
        return None
    return (busy, total) if total else None


REUSE_SECONDS = 5.0
_measured: list = []  # [when, (window, cores), busy] of the last measurement


def busy_cores(window: float = 0.05) -> float:
    """How many of this process's cores other work keeps busy right now: their busy share over
    ``window`` seconds (``/proc/stat``), times their number. Where there is no ``/proc/stat``, the
    larger of the 1-minute load average and the processes runnable right now. (The load average
    alone lags by a minute both ways: it counts a load that just ended, and misses one that just
    began.)"""
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    now = time.monotonic()
    if _measured and now - _measured[0] < REUSE_SECONDS and _measured[1] == (window, len(cpus)):
        return _measured[2]  # many short calls in a row (a notebook, a test suite) measure once
    before = _cpu_times(cpus)
    if before is not None:
        time.sleep(window)
        after = _cpu_times(cpus)
        if after is not None and after[1] > before[1]:
            busy = len(cpus) * (after[0] - before[0]) / (after[1] - before[1])
            _measured[:] = [time.monotonic(), (window, len(cpus)), busy]
            return busy
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


def check_threads(count: int) -> int:
    """Refuse a thread count beyond :data:`PER_CORE` times the cores this process may use; return it."""
    most = PER_CORE * usable_cores()
    if count > most:
        raise LandscapeError(f"`threads` {count} is more than {most} ({PER_CORE} per core this process may use: "
                             "torch only slows down beyond the cores)")
    return count


def choose_threads(count: int | None = None, ranks_on_node: int = 1) -> int:
    """The count a command runs at, decided once at its start: ``count`` when given (refused beyond
    :func:`check_threads`' limit), else the policy (:func:`default_threads` for ``ranks_on_node``
    MPI ranks on this node)."""
    return check_threads(int(count)) if count else default_threads(ranks_on_node)


@contextmanager
def using_threads(count: int | None = None) -> Iterator[int]:
    """Use ``count`` torch threads inside the block (refused beyond :func:`check_threads`' limit),
    then restore the caller's setting (a library call never changes the process's thread count for
    good); ``None`` leaves torch's count as it is. Yields the count in effect inside the block."""
    before = torch.get_num_threads()
    n = check_threads(int(count)) if count else before
    if n != before:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
