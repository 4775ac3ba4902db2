"""MPI-parallel surfaces under a real ``mpirun``: same file as serial, kill and rerun, failure.

Every job runs tests/mpi_job.py in a subprocess with a timeout, so a hang fails the test instead
of hanging CI. Ranks use one thread each; ``-n 3`` oversubscribes a 2-core machine on purpose.
The quick suite runs one of them (two ranks give the serial surface); the rest are slow. What they
rely on is tested in-process where it lives: the hand-out of points and the collectives in
tests/runtime/test_parallel.py, rank 0 alone reporting in tests/cli/test_rank_zero_reports.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import MPIRUN, TIMEOUT, command, has_mpi4py, job_env, launcher, run

from landscape.io.surface_file import read_surface, write_surface

ROOT = str(Path(__file__).resolve().parents[2])


pytestmark = [
    pytest.mark.mpi,
    pytest.mark.skipif(not has_mpi4py(), reason="mpi4py is not installed"),
    pytest.mark.skipif(MPIRUN is None, reason="no mpirun/mpiexec on PATH"),
]


@pytest.fixture(scope="module")
def reference(model_path, tmp_path_factory) -> str:
    """The surface computed serially, in one uninterrupted run."""
    out = str(tmp_path_factory.mktemp("serial") / "surface.h5")
    proc = run(1, "surface", "--model", model_path, "--out", out)
    assert proc.returncode == 0, proc.stderr
    return out


def assert_same_surface(path: str, reference: str) -> None:
    got, want = read_surface(path), read_surface(reference)
    assert got.completed.all()
    assert got.attrs["directions_sha256"] == want.attrs["directions_sha256"]
    for name, values in want.values.items():
        np.testing.assert_allclose(got.values[name], values, rtol=1e-6, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("ranks, batch_size", [(2, "100"), pytest.param(3, "0", marks=pytest.mark.slow)])
def test_mpirun_gives_the_serial_surface(model_path, reference, tmp_path, ranks, batch_size):
    # batch size 0: each rank probes its own, and rank 0's pick is used everywhere
    out = str(tmp_path / "surface.h5")
    proc = run(ranks, "surface", "--model", model_path, "--out", out, "--progress",
               "--batch-size", batch_size)
    assert proc.returncode == 0, proc.stderr
    assert_same_surface(out, reference)
    assert read_surface(out).attrs["mpi_ranks"] == ranks
    assert "25/25" in proc.stderr  # rank 0's bar counts the points of every rank


def start_slow_job(model_path: str, out: str, pid_dir: Path) -> subprocess.Popen:
    """Two ranks, at least 0.25 s per point, rank 0 saving every 0.3 s."""
    args = ["--model", model_path, "--out", out, "--delay", "0.25", "--flush-seconds", "0.3",
            "--pid-dir", str(pid_dir)]
    return subprocess.Popen(command(2, "surface", *args), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=job_env())


def wait_for_points(out: str, n: int, proc: subprocess.Popen) -> int:
    """Block until the file on disk holds at least ``n`` finished points; return how many."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            done = int(read_surface(out).completed.sum())
        except Exception:  # not written yet
            done = 0
        if done >= n:
            return done
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"{out} never reached {n} finished points")


def wait_until_gone(pid: int) -> None:
    """Block until process ``pid`` has ended (a hang guard of TIMEOUT seconds)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    return
        except (OSError, IndexError):
            return
        time.sleep(0.05)
    pytest.fail(f"process {pid} is still running")


@pytest.mark.slow
@pytest.mark.parametrize("target, sig", [
    ("rank1", signal.SIGKILL), ("rank0", signal.SIGKILL), ("mpirun", signal.SIGKILL),
    ("mpirun", signal.SIGINT),
])
def test_killed_job_reruns_to_the_same_file(model_path, reference, tmp_path, target, sig):
    out = str(tmp_path / "surface.h5")
    proc = start_slow_job(model_path, out, tmp_path)
    seen = wait_for_points(out, 6, proc)  # rank 0 flushes while the job runs
    pid = proc.pid if target == "mpirun" else int((tmp_path / f"{target}.pid").read_text())
    os.kill(pid, sig)
    try:
        _, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the job did not end after {sig.name} to {target}")
    assert proc.returncode != 0
    if sig == signal.SIGINT:
        assert "interrupted" in stderr
    for rank in (0, 1):  # the launcher's clean-up of the ranks has ended: none writes any more
        wait_until_gone(int((tmp_path / f"rank{rank}.pid").read_text()))
    partial = read_surface(out)  # the file always opens
    done = int(partial.completed.sum())
    assert seen <= done < partial.completed.size
    finished = partial.completed
    want = read_surface(reference)
    np.testing.assert_allclose(partial.loss[finished], want.loss[finished], rtol=1e-6, atol=1e-6)

    proc = run(2, "surface", "--model", model_path, "--out", out)  # the same command again
    assert proc.returncode == 0, proc.stderr
    assert_same_surface(out, reference)


@pytest.mark.slow
def test_resume_keeps_finished_points_and_computes_the_rest(model_path, reference, tmp_path):
    out = str(tmp_path / "surface.h5")
    shutil.copy(reference, out)
    surface = read_surface(out)
    size = surface.completed.size
    todo = np.arange(0, size, 3)
    for done in surface.done.values():
        done.reshape(-1)[todo] = False
    flat = np.zeros(size)
    for values in surface.values.values():
        kept = values.reshape(-1)
        kept[todo] = np.nan
        kept[np.setdiff1d(np.arange(flat.size), todo)] = 42.0  # a value no evaluation gives
    write_surface(out, surface)

    proc = run(3, "surface", "--model", model_path, "--out", out)
    assert proc.returncode == 0, proc.stderr
    got, want = read_surface(out), read_surface(reference)
    assert got.completed.all()
    for name in want.values:
        new, old = got.values[name].reshape(-1), want.values[name].reshape(-1)
        np.testing.assert_allclose(new[todo], old[todo], rtol=1e-6, atol=1e-6)
        assert (np.delete(new, todo) == 42.0).all()  # finished points were not handed out again


def read_log(path: Path) -> list[tuple[int, int, int]]:
    lines = path.read_text().split("\n") if path.exists() else []
    return [tuple(int(v) for v in line.split()) for line in lines if line and line != "aborted"]


@pytest.mark.slow
def test_map_points_hands_out_each_given_index_once(tmp_path):
    log = tmp_path / "log"
    indices = [1, 4, 5, 8, 11, 12, 13, 17, 20, 22, 23, 24]
    proc = run(3, "map", "--indices", ",".join(map(str, indices)), "--log", str(log),
               "--delay", "0.05")
    assert proc.returncode == 0, proc.stderr
    rows = read_log(log)
    assert sorted(k for k, _, _ in rows) == indices
    assert all(value == k * k for k, _, value in rows)
    assert len({rank for _, rank, _ in rows}) >= 2  # handed out to several ranks


@pytest.mark.slow
@pytest.mark.parametrize("fail_rank", [1, 0])
def test_failure_on_one_rank_ends_the_job(tmp_path, fail_rank):
    """The job ends (a hang fails through ``run``'s timeout; how fast it ends is measured by
    benchmarks/bench_mpi_abort.py, not asserted here)."""
    log = tmp_path / "log"
    proc = run(3, "map", "--n", "300", "--log", str(log), "--delay", "0.05",  # the others could not finish
               "--fail-rank", str(fail_rank), "--fail-after", "4")             # 300 before the abort, loaded
    assert proc.returncode != 0
    assert f"error on rank {fail_rank}: RuntimeError: injected failure" in proc.stderr
    assert proc.stderr.count("injected failure") == 1
    text = log.read_text()
    assert "aborted" in text  # rank 0 saved what was finished before the abort
    assert 0 < len(read_log(log)) < 300


@pytest.mark.slow
def test_bad_input_is_reported_once(tmp_path):
    missing = str(tmp_path / "missing.pt")
    proc = run(2, "surface", "--model", missing, "--out", str(tmp_path / "s.h5"))
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and "missing.pt" in lines[0], proc.stderr


@pytest.mark.slow
def test_landscape_surf_under_mpirun(model_path, reference, tmp_path):
    out = str(tmp_path / "surface.h5")
    args = ["--model", model_path, "--arch", "digits_cnn", "--dataset", "digits", "--samples",
            "200", "--x", "-1:1:5", "--y", "-1:1:5", "--batch-size", "100", "--out", out,
            "--no-progress"]
    cmd = [*launcher(2), sys.executable, "-m", "landscape.cli.surf", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=job_env(), timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("wrote") == 1  # rank 0 alone reports
    assert_same_surface(out, reference)


@pytest.mark.slow
def test_python_api_volume_under_mpirun_equals_serial(tmp_path):
    serial, parallel = str(tmp_path / "serial.h5"), str(tmp_path / "parallel.h5")
    assert run(1, "api", "--out", serial).returncode == 0
    proc = run(2, "api", "--out", parallel)
    assert proc.returncode == 0, proc.stderr
    a, b = read_surface(serial), read_surface(parallel)
    assert a.shape == b.shape == (2, 3, 3) and set(a.values) == {"train_loss", "train_acc", "weight_norm"}
    for name in a.values:
        np.testing.assert_allclose(b.values[name], a.values[name], rtol=1e-6, atol=1e-6, err_msg=name)
    assert b.attrs["mpi_ranks"] == 2 and b.attrs["command"].startswith("python API")


@pytest.mark.slow
def test_convexity_map_under_mpirun_equals_serial(model_path, tmp_path):
    """The Hessian's extreme eigenvalues at every point: the same map from 2 ranks as serially (to
    the metric's tolerance: each rank warm-starts from the neighbours it computed itself)."""
    args = ["--model", model_path, "--samples", "60", "--x=-1:1:3", "--y=-1:1:3", "--metrics", "loss,eig",
            "--batch-size", "60"]
    serial, parallel = str(tmp_path / "serial.h5"), str(tmp_path / "parallel.h5")
    assert run(1, "surface", *args, "--out", serial).returncode == 0
    proc = run(2, "surface", *args, "--out", parallel)
    assert proc.returncode == 0, proc.stderr
    a, b = read_surface(serial), read_surface(parallel)
    scale = np.abs(a.values["max_eig"]).max()
    for name in ("max_eig", "min_eig"):
        np.testing.assert_allclose(b.values[name], a.values[name], rtol=0, atol=2e-3 * scale, err_msg=name)
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-6)
