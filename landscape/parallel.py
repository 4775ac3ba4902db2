"""Distributing per-point jobs over MPI ranks: the only module that imports mpi4py.

:func:`map_points` hands out chunks of point indices dynamically (a slow rank never holds the
others back) and brings every result to rank 0, which alone writes files. Rank 0 computes points
too, one at a time, answering the other ranks between its own points; each worker keeps one chunk
in reserve so it never waits for rank 0. Without MPI, or with one rank, the same function runs the
job serially, so the serial path is the parallel path with one rank.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Sequence

TAG_WORK, TAG_RESULT, TAG_ERROR = 1, 2, 3
PREFETCH = 2  # chunks a worker holds: one running, one in reserve


class SerialComm:
    """Stands in for an MPI communicator when there is none: one rank, no messages."""

    rank = 0
    size = 1

    def allgather(self, obj):
        return [obj]

    def bcast(self, obj, root=0):
        return obj

    def Abort(self, code=1):  # noqa: N802 (mpi4py's name)
        os._exit(code)


def under_mpi() -> bool:
    """True when this process was started by an MPI launcher with more than one rank."""
    keys = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")
    return any(int(os.environ.get(k, "1") or 1) > 1 for k in keys)


def launcher_rank() -> int:
    """This process's rank as the MPI launcher set it (0 without one); needs no mpi4py."""
    for k in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if os.environ.get(k, "").isdigit():
            return int(os.environ[k])
    return 0


def world():
    """The MPI world communicator when launched by mpirun with several ranks, else a SerialComm.

    mpi4py is imported only here and only then, so serial use needs no MPI at all.
    """
    if not under_mpi():
        return SerialComm()
    try:
        from mpi4py import MPI
    except ImportError:
        print("landscape: launched under MPI but mpi4py is not installed; running serially "
              "(pip install 'landscape[mpi]')", file=sys.stderr)
        return SerialComm()
    return MPI.COMM_WORLD


def local_rank_and_size(comm) -> tuple[int, int]:
    """This rank's index among the ranks on its node, and how many there are."""
    if comm.size == 1:
        return 0, 1
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.rank, node.size
    finally:
        node.Free()


def first_error(comm, message: str | None) -> str | None:
    """Collective: every rank learns the first error any rank met (None when none did)."""
    errors = comm.allgather(message)
    return next((e for e in errors if e is not None), None)


def _chunks(indices: Iterable[int], size: int) -> deque[list[int]]:
    items = [int(i) for i in indices]
    return deque(items[i:i + size] for i in range(0, len(items), size))


def map_points(
    job: Callable[[int], dict],
    indices: Sequence[int],
    on_result: Callable[[int, dict], None],
    comm=None,
    chunk_size: int = 1,
    on_abort: Callable[[], None] | None = None,
    prog: str = "landscape",
) -> None:
    """Run ``job(k)`` for every index, on all ranks; rank 0 gets ``on_result(k, result)`` for each.

    Collective: every rank calls it (only rank 0's ``indices`` and ``on_result`` are used). An
    exception on any rank calls ``on_abort`` on rank 0 (to save what is finished), prints that
    rank's message and aborts the whole job, so no rank waits forever on a dead one.
    """
    comm = comm or SerialComm()
    if comm.size == 1:
        for k in indices:
            on_result(int(k), job(int(k)))
        return
    if comm.rank == 0:
        _master(job, indices, on_result, comm, chunk_size, on_abort, prog)
    else:
        _worker(job, comm, prog)


def _die(comm, prog: str, rank: int, exc: BaseException, on_abort) -> None:
    if isinstance(exc, KeyboardInterrupt):
        message = "interrupted"
    else:
        message = f"{type(exc).__name__}: {exc}"
        if os.environ.get("LANDSCAPE_DEBUG"):
            traceback.print_exc()
    if on_abort is not None:
        try:
            on_abort()
        except Exception as save_exc:  # the abort must happen even if saving fails
            print(f"{prog}: could not save finished points: {save_exc}", file=sys.stderr)
    print(f"{prog}: error on rank {rank}: {message}", file=sys.stderr, flush=True)
    comm.Abort(1)


def _master(job, indices, on_result, comm, chunk_size, on_abort, prog) -> None:
    from mpi4py import MPI

    queue = _chunks(indices, chunk_size)
    outstanding = dict.fromkeys(range(1, comm.size), 0)
    stopped: set[int] = set()

    def feed(w: int) -> None:
        while outstanding[w] < PREFETCH and queue:
            comm.send(queue.popleft(), dest=w, tag=TAG_WORK)
            outstanding[w] += 1
        if outstanding[w] == 0 and not queue and w not in stopped:
            comm.send([], dest=w, tag=TAG_WORK)
            stopped.add(w)

    def serve(block: bool) -> bool:
        status = MPI.Status()
        if not block and not comm.iprobe(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status):
            return False
        msg = comm.recv(source=MPI.ANY_SOURCE, tag=MPI.ANY_TAG, status=status)
        w = status.Get_source()
        if status.Get_tag() == TAG_ERROR:
            if on_abort is not None:
                on_abort()
            print(f"{prog}: error on rank {w}: {msg}", file=sys.stderr, flush=True)
            comm.Abort(1)
        for k, result in msg:
            on_result(k, result)
        outstanding[w] -= 1
        feed(w)
        return True

    try:
        for w in outstanding:
            feed(w)
        while queue or any(outstanding.values()):
            while serve(block=False):
                pass
            if queue:
                mine = queue.popleft()
                for k in mine:
                    on_result(k, job(k))
                    while serve(block=False):
                        pass
            elif any(outstanding.values()):
                serve(block=True)
        for w in outstanding:
            feed(w)
    except BaseException as exc:
        _die(comm, prog, 0, exc, on_abort)


def _worker(job, comm, prog) -> None:
    try:
        while True:
            chunk = comm.recv(source=0, tag=TAG_WORK)
            if not chunk:
                return
            comm.send([(k, job(k)) for k in chunk], dest=0, tag=TAG_RESULT)
    except BaseException as exc:
        message = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        if os.environ.get("LANDSCAPE_DEBUG"):
            traceback.print_exc()
        try:
            comm.send(message, dest=0, tag=TAG_ERROR)
        finally:
            time.sleep(5)  # rank 0 saves, reports and aborts; abort ourselves if it cannot
            comm.Abort(1)
