"""Distributing per-point jobs over MPI ranks: the only module that imports mpi4py.

:func:`map_points` hands out chunks of point indices dynamically (a slow rank never holds the
others back) and brings every result to rank 0, which alone writes files. Rank 0 computes points
too, one at a time, answering the other ranks between its own points; each worker keeps one chunk
in reserve so it never waits for rank 0. Without MPI, or with one rank, the same function runs the
job serially, so the serial path is the parallel path with one rank.

Failure never leaves a rank waiting on a dead one: an exception on any rank prints that rank's
message, lets rank 0 save what is finished, and aborts the whole job (:func:`abort`). A rank killed
outright (``kill -9``) is noticed by the launcher (mpich's hydra, Open MPI's mpirun), which ends
the others; what rank 0 last saved stays, so a rerun loses only the points since then.

Ctrl-C (``mpirun`` passes SIGINT on to every rank) ends the job with one line, ``PROG:
interrupted``, from one rank and exit code 130, whatever the moment (:func:`end_interrupted`):
rank 0 saves what is finished, says it and aborts the job; another rank leaves that to rank 0 and
says it and aborts itself only if the job is still there :data:`ABORT_GRACE_S` later (rank 0 may be
inside a long computation, or the signal may have reached this rank alone). A rank never leaves
before it has joined the job: one that left while another waited in ``MPI_Init`` would leave that
one waiting for ever, so a Ctrl-C while starting is only noted (:func:`interrupt_later`) and acted
on once MPI is up (:func:`join`).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn, TypeVar

from landscape.errors import LandscapeError, error_line

T = TypeVar("T")
TAG_WORK, TAG_RESULT, TAG_ERROR = 1, 2, 3
PREFETCH = 2  # chunks a worker holds: one running, one in reserve
ABORT_GRACE_S = 5.0  # how long a failed worker waits for rank 0 to save and abort the job
# How long an aborting rank waits after its last write: the launcher forwards a rank's stderr
# through a pipe it reads in its own time, and MPI_Abort tears the pipes down, so a message written
# just before it was lost in 5 of 27 aborts under mpich here (an empty stderr), in none of 30 with it.
OUTPUT_GRACE_S = 0.25


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

    mpi4py is imported only here and only then, so serial use needs no MPI at all. Launched with
    several ranks but without mpi4py is a :class:`LandscapeError` (every rank would otherwise
    compute the whole surface on its own and write the same file).
    """
    if not under_mpi():
        return SerialComm()
    try:
        from mpi4py import MPI
    except ImportError:
        raise LandscapeError(
            "launched by mpirun with several ranks, but mpi4py is not installed: "
            "pip install 'torch-landscape[mpi]', or run without mpirun"
        ) from None
    return MPI.COMM_WORLD


_PENDING: list[int] = []  # signals that arrived before this process joined the MPI job


def interrupt_later(signum: int = signal.SIGINT, frame=None) -> None:
    """A SIGINT handler for a rank that has not joined the MPI job yet: note the Ctrl-C, for
    :func:`join` to act on once it has (leaving now could leave another rank in ``MPI_Init`` for ever)."""
    _PENDING.append(signum)


def _set_sigint(handler) -> None:
    """Install ``handler`` for SIGINT unless SIGINT is ignored (``nohup``, a background job) or
    this is not the main thread (only it may)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, handler)


def join(prog: str):
    """Start a command: under a launcher with several ranks, join the MPI job now (every command
    does so first), a Ctrl-C meanwhile only noted; then let Ctrl-C raise KeyboardInterrupt, and end
    the job (:func:`end_interrupted`) if one was noted while starting. The communicator, or None
    serially."""
    comm = None
    if under_mpi():
        _set_sigint(interrupt_later)
        comm = world()
    _set_sigint(signal.default_int_handler)
    if _PENDING and comm is not None:
        end_interrupted(comm, prog)
    return comm


def joined():
    """The MPI world this process has joined (several ranks, MPI initialized), else None."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not under_mpi() or not mpi.Is_initialized() or mpi.Is_finalized():
        return None
    return mpi.COMM_WORLD


def hold_interrupts() -> None:
    """Ignore SIGINT from now on (this process is ending: a second Ctrl-C must not interrupt the
    saving, the one line or the exit with a traceback). A Ctrl-C already pending is dropped."""
    if threading.current_thread() is not threading.main_thread():
        return
    while True:
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # raises a pending KeyboardInterrupt first
            return
        except KeyboardInterrupt:
            continue


def end_interrupted(comm, prog: str) -> NoReturn:
    """End the whole job after a Ctrl-C: one line ``PROG: interrupted`` and exit code 130. Rank 0
    says it and aborts the job; another rank waits :data:`ABORT_GRACE_S` for rank 0 to do so (it
    has the same Ctrl-C, and saves first), and says it and aborts the job itself if it is still
    running then. The caller has saved what it must."""
    hold_interrupts()
    if comm.rank != 0:
        time.sleep(ABORT_GRACE_S)
    sys.stderr.write(f"{prog}: interrupted\n")
    abort(comm, 130)


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


def first_error(comm, error):
    """Collective: every rank learns the first error any rank met (None when none did)."""
    errors = comm.allgather(error)
    return next((e for e in errors if e is not None), None)


def _portable(exc: LandscapeError) -> tuple[type, str]:
    return type(exc), str(exc)  # sent between ranks: the class (a LandscapeError) and its message


def _raise(error) -> None:
    if error:
        cls, message = error if isinstance(error, tuple) else (LandscapeError, str(error))
        raise cls(message)


def program() -> str:
    """How this process's messages start: the command's name (``landscape-surf``, ``python``)."""
    return os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "landscape"


def collective(comm, fn: Callable[[], T]) -> T:
    """Run ``fn`` on every rank; a :class:`LandscapeError` on any rank is raised on all of them
    (the first rank's message), so bad input ends every rank alike instead of hanging some."""
    error, value = None, None
    with abort_on_error(comm, program()):  # an unexpected error must not hang the others
        try:
            value = fn()
        except LandscapeError as exc:
            error = _portable(exc)
    _raise(first_error(comm, error))
    return value


def on_root(comm, fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 alone and give every rank its result (or its :class:`LandscapeError`)."""
    error, value = None, None
    if comm.rank == 0:
        with abort_on_error(comm, program()):
            try:
                value = fn()
            except LandscapeError as exc:
                error = _portable(exc)
    value, error = comm.bcast((value, error), root=0)
    _raise(error)
    return value


def share(comm, value: T) -> T:
    """Rank 0's ``value`` on every rank (the value itself with one rank)."""
    return comm.bcast(value, root=0) if comm.size > 1 else value


def same_everywhere(comm, value, what: str) -> None:
    """Refuse a run whose ranks disagree on ``value`` (a checksum of what each rank built)."""
    if comm.size > 1 and len(set(comm.allgather(value))) != 1:
        raise LandscapeError(f"the MPI ranks disagree on {what} (different package versions across nodes?)")


def abort(comm, code: int = 1) -> NoReturn:
    """End every rank of the job now. This rank's own lines are out first; what MPI_Abort itself
    prints (mpich's ``Abort(130) on node 0 ...`` banner) is not: the job's story is the lines we
    wrote. MPI_Abort may return before the launcher kills this process (mpich does), so this
    process then leaves at once rather than run on."""
    hold_interrupts()
    sys.stdout.flush()
    sys.stderr.flush()
    time.sleep(OUTPUT_GRACE_S)
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
    except OSError:
        pass
    try:
        comm.Abort(code)
    finally:
        os._exit(code)


def report(prog: str, rank: int, exc: BaseException) -> None:
    """Print a rank's failure on stderr (with the traceback when ``LANDSCAPE_DEBUG`` is set)."""
    if os.environ.get("LANDSCAPE_DEBUG") and not isinstance(exc, KeyboardInterrupt):
        traceback.print_exception(exc)
    sys.stderr.write(f"{prog}: error on rank {rank}: {error_line(exc)}\n")  # one write: one line
    sys.stderr.flush()


def _save(prog: str, on_abort: Callable[[], None] | None) -> None:
    if on_abort is None:
        return
    try:
        on_abort()
    except Exception as exc:  # the abort must happen even if saving fails
        print(f"{prog}: could not save finished points: {error_line(exc)}", file=sys.stderr)


@contextmanager
def abort_on_error(comm, prog: str) -> Iterator[None]:
    """Under MPI, turn an exception in the block into the end of the whole job (exit code 1).

    Otherwise the ranks that did not fail would wait forever in their next collective call. With
    one rank the exception propagates. (Errors that every rank meets alike, such as bad input,
    are better caught inside the block and agreed on with :func:`first_error`.)
    """
    try:
        yield
    except BaseException as exc:
        if comm.size == 1:
            raise
        if isinstance(exc, KeyboardInterrupt):
            end_interrupted(comm, prog)
        report(prog, comm.rank, exc)
        abort(comm, 1)


def _chunks(indices: Iterable[int], size: int) -> deque[list[int]]:
    items = [int(i) for i in indices]
    size = max(1, int(size))
    return deque(items[i:i + size] for i in range(0, len(items), size))


def map_points(
    job: Callable[[int], dict],
    indices: Sequence[int],
    on_result: Callable[[int, dict], None],
    comm=None,
    chunk_size: int = 1,
    on_abort: Callable[[], None] | None = None,
    prog: str | None = None,
) -> None:
    """Run ``job(k)`` for every index, on all ranks; rank 0 gets ``on_result(k, result)`` for each.

    Collective: every rank calls it (only rank 0's ``indices`` and ``on_result`` are used), and
    each index is computed exactly once. Under MPI, an exception on any rank prints that rank's
    message, calls ``on_abort`` on rank 0 (to save what is finished) and aborts the whole job with
    exit code 1; a Ctrl-C, with one line ``PROG: interrupted`` and exit code 130 (:func:`end_interrupted`).
    With one rank, exceptions simply propagate. ``prog``: how messages start (default: :func:`program`).
    """
    comm = comm or SerialComm()
    prog = prog or program()
    if comm.size == 1:
        for k in indices:
            on_result(int(k), job(int(k)))
        return
    if comm.rank == 0:
        _master(job, indices, on_result, comm, chunk_size, on_abort, prog)
    else:
        _worker(job, comm, prog)


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
        if status.Get_tag() == TAG_ERROR:  # the worker has printed its error; a Ctrl-C is rank 0's to say
            hold_interrupts()
            _save(prog, on_abort)
            if msg == 130:
                end_interrupted(comm, prog)
            abort(comm, msg)
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
                for k in queue.popleft():
                    on_result(k, job(k))
                    while serve(block=False):
                        pass
            elif any(outstanding.values()):
                serve(block=True)
    except BaseException as exc:
        hold_interrupts()
        interrupted = isinstance(exc, KeyboardInterrupt)
        if not interrupted:
            report(prog, 0, exc)
        _save(prog, on_abort)
        if interrupted:
            end_interrupted(comm, prog)
        abort(comm, 1)


def _worker(job, comm, prog) -> None:
    try:
        while True:
            chunk = comm.recv(source=0, tag=TAG_WORK)
            if not chunk:
                return
            comm.send([(k, job(k)) for k in chunk], dest=0, tag=TAG_RESULT)
    except BaseException as exc:
        hold_interrupts()
        interrupted = isinstance(exc, KeyboardInterrupt)
        if not interrupted:
            report(prog, comm.rank, exc)
        try:
            comm.send(130 if interrupted else 1, dest=0, tag=TAG_ERROR)  # rank 0 saves the finished points,
        finally:  # then ends the job; or is busy with a long point, and this rank ends it
            if interrupted:
                end_interrupted(comm, prog)
            time.sleep(ABORT_GRACE_S)
            abort(comm, 1)
