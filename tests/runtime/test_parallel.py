"""landscape.runtime.parallel without MPI (the one-rank path), and serial interruption and resume.

The real multi-rank paths run under mpirun in tests/engine/test_mpi.py.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import TIMEOUT

from landscape.data.datasets import DataSpec
from landscape.engine.options import Output
from landscape.errors import LandscapeError
from landscape.evaluation.evaluator import Evaluator
from landscape.evaluation.options import EvalOptions
from landscape.io.surface_file import read_surface
from landscape.jobs.surf import SurfConfig, surf
from landscape.runtime.parallel import (
    SerialComm,
    _chunks,
    abort_on_error,
    first_error,
    launcher_rank,
    map_points,
    under_mpi,
    world,
)
from landscape.space.grid import Grid

ROOT = str(Path(__file__).resolve().parents[2])
MPI_VARS = ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_SIZE",
            "PMIX_RANK", "MPI_LOCALNRANKS")


@pytest.fixture
def no_launcher(monkeypatch):
    for k in MPI_VARS:
        monkeypatch.delenv(k, raising=False)


def test_map_points_serially_runs_each_given_index_once_in_order():
    calls: list[int] = []
    results: list[tuple[int, dict]] = []

    def job(k: int) -> dict:
        calls.append(k)
        return {"square": k * k}

    indices = np.array([7, 2, 9, 3])
    map_points(job, indices, lambda k, r: results.append((k, r)), SerialComm(), chunk_size=3)
    assert calls == [7, 2, 9, 3]
    assert results == [(k, {"square": k * k}) for k in (7, 2, 9, 3)]
    assert all(type(k) is int for k, _ in results)


def test_map_points_without_comm_or_indices():
    results = []
    map_points(lambda k: {"v": k}, [], results.append)
    assert results == []
    map_points(lambda k: {"v": k}, range(3), lambda k, r: results.append(k))
    assert results == [0, 1, 2]


def test_map_points_serially_propagates_errors_after_the_finished_points():
    results = []

    def job(k: int) -> dict:
        if k == 2:
            raise RuntimeError("boom")
        return {"v": k}

    with pytest.raises(RuntimeError, match="boom"):
        map_points(job, range(5), lambda k, r: results.append(k), SerialComm())
    assert results == [0, 1]


@pytest.mark.parametrize("size, expected", [
    (1, [[0], [1], [2], [3], [4]]),
    (2, [[0, 1], [2, 3], [4]]),
    (5, [[0, 1, 2, 3, 4]]),
    (9, [[0, 1, 2, 3, 4]]),
    (0, [[0], [1], [2], [3], [4]]),
])
def test_chunks_cover_every_index_once_in_order(size, expected):
    assert list(_chunks(range(5), size)) == expected
    assert list(_chunks([], size)) == []


def test_under_mpi_and_launcher_rank_read_the_launcher_variables(monkeypatch, no_launcher):
    assert not under_mpi() and launcher_rank() == 0
    assert isinstance(world(), SerialComm)
    monkeypatch.setenv("PMI_SIZE", "1")  # mpirun -n 1: still serial
    assert not under_mpi()
    monkeypatch.setenv("PMI_SIZE", "3")  # mpich's hydra
    monkeypatch.setenv("PMI_RANK", "2")
    assert under_mpi() and launcher_rank() == 2
    for k in MPI_VARS:
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "4")  # Open MPI
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    assert under_mpi() and launcher_rank() == 1


def test_world_under_a_launcher_without_mpi4py_is_a_user_error(monkeypatch, no_launcher):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import mpi4py now fails
    with pytest.raises(LandscapeError, match="mpi4py is not installed"):
        world()


def test_serial_comm_collectives_and_first_error():
    comm = SerialComm()
    assert (comm.rank, comm.size) == (0, 1)
    assert comm.bcast("x", root=0) == "x" and comm.allgather(5) == [5]
    assert first_error(comm, None) is None
    assert first_error(comm, "bad") == "bad"


def test_abort_on_error_reraises_with_one_rank():
    with pytest.raises(ValueError), abort_on_error(SerialComm(), "prog"):
        raise ValueError("plain")
    with abort_on_error(SerialComm(), "prog"):
        pass


def test_abort_on_error_aborts_with_several_ranks():
    # In a child process: the abort ends it with exit code 1 and the rank's message on stderr.
    code = textwrap.dedent("""
        from landscape.runtime.parallel import abort_on_error

        class TwoRanks:
            rank, size = 1, 2
            def Abort(self, code):
                print("Abort called with", code, flush=True)

        with abort_on_error(TwoRanks(), "prog"):
            raise ValueError("rank one broke")
        print("not reached")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=TIMEOUT, cwd=ROOT)
    assert proc.returncode == 1
    assert "Abort called with 1" in proc.stdout and "not reached" not in proc.stdout
    assert "prog: error on rank 1: ValueError: rank one broke" in proc.stderr


# --- landscape-surf's job, one rank: interruption keeps finished points, resume computes the rest ---


def config(model_path: str, out: Path) -> SurfConfig:
    return SurfConfig(model=model_path, arch="digits_cnn", data=DataSpec(dataset="digits", samples=200),
                      grid=Grid("-1:1:5", "-1:1:5"), evaluation=EvalOptions(threads=1, batch_size=100),
                      output=Output(out, progress=False))


def count_evaluations(monkeypatch, fail_at: int | None = None) -> list[int]:
    """Count evaluations (grid points); raise KeyboardInterrupt at call ``fail_at``."""
    calls: list[int] = []
    evaluate = Evaluator.__call__

    def counted(self):
        calls.append(1)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        return evaluate(self)

    monkeypatch.setattr(Evaluator, "__call__", counted)
    return calls


def test_interrupted_serial_run_keeps_its_points_and_resumes(model_path, tmp_path, monkeypatch):
    full = surf(config(model_path, tmp_path / "full.h5"), SerialComm()).surface

    out = tmp_path / "surface.h5"
    count_evaluations(monkeypatch, fail_at=9)
    with pytest.raises(KeyboardInterrupt):
        surf(config(model_path, out), SerialComm())
    partial = read_surface(out)
    assert partial.completed.sum() == 8
    np.testing.assert_array_equal(partial.loss[partial.completed], full.loss[partial.completed])
    assert np.isnan(partial.loss[~partial.completed]).all()

    calls = count_evaluations(monkeypatch)
    resumed = surf(config(model_path, out), SerialComm()).surface
    assert len(calls) == 25 - 8  # only the unfinished points
    assert resumed.completed.all()
    np.testing.assert_allclose(read_surface(out).loss, full.loss, rtol=1e-6, atol=1e-6)

    calls = count_evaluations(monkeypatch)
    surf(config(model_path, out), SerialComm())
    assert calls == []  # nothing left to do


def test_bad_input_raises_a_landscape_error(model_path, tmp_path):
    cfg = config(model_path, tmp_path / "s.h5")
    with pytest.raises(LandscapeError, match="MIN < MAX"):
        cfg.grid = Grid("1:-1:5", "-1:1:5")
        surf(cfg, SerialComm())


# --- several ranks, in-process: what every rank does with what the others sent ---------------------


class OneOfSeveral:
    """Rank ``rank`` of ``size``; ``gathered`` (rank -> object) and ``broadcast`` are what the other
    ranks would send."""

    def __init__(self, rank: int, size: int, gathered: dict | None = None, broadcast=None):
        self.rank, self.size, self.gathered, self.broadcast = rank, size, gathered or {}, broadcast

    def allgather(self, obj):
        return [obj if r == self.rank else self.gathered.get(r) for r in range(self.size)]

    def bcast(self, obj, root=0):
        return obj if self.rank == root else self.broadcast

    def Abort(self, code=1):  # noqa: N802 (mpi4py's name)
        raise AssertionError(f"aborted with {code}: an agreed error must not abort")


def test_collective_raises_the_first_ranks_error_on_every_rank():
    from landscape.runtime.parallel import collective

    other_failed = OneOfSeveral(1, 3, gathered={0: (LandscapeError, "bad grid (rank 0)")})
    with pytest.raises(LandscapeError, match=r"^bad grid \(rank 0\)$"):
        collective(other_failed, lambda: 42)  # this rank succeeded, and still ends alike

    def fails():
        raise LandscapeError("bad grid (rank 1)")

    with pytest.raises(LandscapeError, match=r"^bad grid \(rank 0\)$"):  # the first rank's message
        collective(other_failed, fails)
    assert collective(OneOfSeveral(2, 3), lambda: 42) == 42


def test_on_root_runs_on_rank_zero_and_gives_every_rank_its_result_or_error():
    from landscape.runtime.parallel import on_root

    def not_here():
        raise AssertionError("rank 1 ran it")

    assert on_root(OneOfSeveral(1, 2, broadcast=("opened", None)), not_here) == "opened"
    with pytest.raises(LandscapeError, match=r"^'s\.h5' is damaged$"):
        on_root(OneOfSeveral(1, 2, broadcast=(None, (LandscapeError, "'s.h5' is damaged"))), not_here)
    assert on_root(OneOfSeveral(0, 2), lambda: "opened") == "opened"


def test_a_ctrl_c_while_joining_is_noted_and_ends_the_job_once_joined(monkeypatch, no_launcher):
    """A rank must not leave while another waits in MPI_Init: a Ctrl-C that comes while joining is
    noted, and once every rank has joined it ends the job (mpirun's version: the slow tests of
    tests/runtime/test_mpi_interrupt.py)."""
    import os
    import signal

    from landscape.runtime import parallel

    comm = OneOfSeveral(0, 2)
    ended = []

    def joining():  # MPI_Init, during which the Ctrl-C comes
        os.kill(os.getpid(), signal.SIGINT)
        return comm

    class Ended(Exception):
        pass

    def end(c, prog):
        ended.append((c, prog))
        raise Ended

    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setattr(parallel, "_PENDING", [])
    monkeypatch.setattr(parallel, "world", joining)
    monkeypatch.setattr(parallel, "end_interrupted", end)
    previous = signal.getsignal(signal.SIGINT)

    def unnoted(signum, frame):
        raise AssertionError("the Ctrl-C while joining was not noted: it would have left now")

    signal.signal(signal.SIGINT, unnoted)
    try:
        with pytest.raises(Ended):
            parallel.join("landscape-surf")
        assert ended == [(comm, "landscape-surf")] and parallel._PENDING == [signal.SIGINT]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # a Ctrl-C now raises
        monkeypatch.setattr(parallel, "_PENDING", [])
        monkeypatch.setattr(parallel, "world", lambda: comm)
        assert parallel.join("landscape-surf") is comm and len(ended) == 1  # no Ctrl-C: the job goes on
    finally:
        signal.signal(signal.SIGINT, previous)
