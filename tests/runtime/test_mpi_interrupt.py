"""Ctrl-C under a real ``mpirun -n 2 landscape-surf`` (issue 32, part 5): whatever the moment, one
line ``landscape-surf: interrupted`` from one rank, exit code 130, every rank ended, the file
resumable. Signals go only after the command has said where it is: each rank writes its pid once
the start-up handler is up (a test wrapper named ``landscape-surf``), and a running job is
interrupted once its file holds finished points; no sleep stands in for synchronization (the
sleeps of the last test choose moments; any moment must do)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from helpers import MPIRUN, TIMEOUT, has_mpi4py, job_env, launcher

from landscape.io.surface_file import read_surface

pytestmark = [
    pytest.mark.mpi,
    pytest.mark.skipif(not has_mpi4py(), reason="mpi4py is not installed"),
    pytest.mark.skipif(MPIRUN is None, reason="no mpirun/mpiexec on PATH"),
]

# landscape-surf as installed, but telling the test when its start-up Ctrl-C handler is up
WRAPPER = """import os, sys
import landscape.cli  # the start-up handler of Ctrl-C is up from here
rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
with open(os.path.join({pid_dir!r}, f".rank{{rank}}"), "w") as f:
    f.write(str(os.getpid()))
os.replace(os.path.join({pid_dir!r}, f".rank{{rank}}"), os.path.join({pid_dir!r}, f"rank{{rank}}.pid"))
from landscape.cli.surf import main
sys.exit(main())
"""


GRID = "-1:1:51"  # 2,601 points: computing lasts several of the runner's 2 s flushes, even on an idle machine


def surf_args(model: str, out: str, grid: str = GRID) -> list[str]:
    return ["--model", model, "--arch", "digits_cnn", "--dataset", "digits", "--samples", "200", "--batch-size",
            "100", f"--x={grid}", f"--y={grid}", "--out", out, "--no-progress"]


def start(tmp_path, model: str, out: str, grid: str = GRID) -> tuple[subprocess.Popen, str]:
    pid_dir = tmp_path / f"pids{time.monotonic_ns()}"
    pid_dir.mkdir()
    script = pid_dir / "landscape-surf"
    script.write_text(WRAPPER.format(pid_dir=str(pid_dir)))
    cmd = [*launcher(2), sys.executable, str(script), *surf_args(model, out, grid)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=job_env(),
                            start_new_session=True)
    return proc, str(pid_dir)


def wait_until(condition, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the job ended before {what}: {proc.communicate()}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"never {what}")
        time.sleep(0.02)


def rank_pids(pid_dir: str, proc: subprocess.Popen) -> dict[int, int]:
    paths = {r: os.path.join(pid_dir, f"rank{r}.pid") for r in (0, 1)}
    wait_until(lambda: all(os.path.exists(p) for p in paths.values()), proc, "both ranks started")
    return {r: int(open(p).read()) for r, p in paths.items()}


def finished_points(out: str) -> int:
    try:
        return int(read_surface(out).completed.sum())
    except Exception:  # not written yet
        return 0


def running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def interrupt(proc: subprocess.Popen, pids: dict[int, int], target: str) -> str:
    """Ctrl-C (SIGINT to mpirun, which passes it on to every rank) or SIGINT to one rank; the job's
    stderr, once every rank has ended."""
    os.kill(proc.pid if target == "mpirun" else pids[int(target[-1])], signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the job did not end after SIGINT to {target}")
    deadline = time.monotonic() + TIMEOUT
    while any(running(p) for p in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(running(p) for p in pids.values()), f"a rank outlived the job: {pids}"
    return err


def assert_one_interrupted_line(proc: subprocess.Popen, err: str) -> None:
    assert proc.returncode == 130, (proc.returncode, err)
    assert err.splitlines() == ["landscape-surf: interrupted"], err


@pytest.mark.slow
def test_ctrl_c_while_starting_is_one_line_and_ends_every_rank(digits_ckpt, tmp_path):
    proc, pid_dir = start(tmp_path, digits_ckpt, str(tmp_path / "s.h5"))
    pids = rank_pids(pid_dir, proc)  # both ranks are importing, neither has joined the MPI job
    err = interrupt(proc, pids, "mpirun")
    assert_one_interrupted_line(proc, err)


@pytest.fixture(scope="module")
def serial(tmp_path_factory, model_path) -> str:
    out = str(tmp_path_factory.mktemp("serial") / "s.h5")
    r = subprocess.run([sys.executable, "-m", "landscape.cli.surf", *surf_args(model_path, out)], capture_output=True,
                       text=True, env=job_env(), timeout=10 * TIMEOUT)
    assert r.returncode == 0, r.stderr
    return out


def assert_resumes_to(out: str, model: str, serial: str) -> None:
    before = read_surface(out) if os.path.exists(out) else None
    r = subprocess.run([*launcher(2), sys.executable, "-m", "landscape.cli.surf", *surf_args(model, out)],
                       capture_output=True, text=True, env=job_env(), timeout=10 * TIMEOUT)
    assert r.returncode == 0, r.stderr
    got, want = read_surface(out), read_surface(serial)
    assert got.completed.all()
    np.testing.assert_allclose(got.loss, want.loss, rtol=1e-6, atol=1e-6)
    if before is not None:  # what was finished before the Ctrl-C was kept, not computed again
        kept = before.completed
        np.testing.assert_array_equal(got.loss[kept], before.loss[kept])


@pytest.mark.slow
@pytest.mark.parametrize("target", ["mpirun", "rank0", "rank1"])
@pytest.mark.parametrize("moment", ["starting", "computing"])
def test_sigint_at_any_moment_to_mpirun_or_one_rank(model_path, serial, tmp_path, moment, target):
    out = str(tmp_path / "s.h5")
    proc, pid_dir = start(tmp_path, model_path, out)
    pids = rank_pids(pid_dir, proc)
    if moment == "computing":
        wait_until(lambda: 0 < finished_points(out) < 51 * 51, proc, "a point was saved while computing")
    err = interrupt(proc, pids, target)
    assert_one_interrupted_line(proc, err)
    assert_resumes_to(out, model_path, serial)


@pytest.mark.slow
@pytest.mark.parametrize("after", [0.0, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0, 8.0])
def test_ctrl_c_at_moments_through_a_run(model_path, serial, tmp_path, after):
    """Moments from the start-up to the computation, whatever each one turns out to be on this machine."""
    out = str(tmp_path / "s.h5")
    proc, pid_dir = start(tmp_path, model_path, out)
    pids = rank_pids(pid_dir, proc)
    time.sleep(after)  # any moment: the test holds at every one (a wait would be for what the job said)
    if proc.poll() is not None:
        pytest.skip("the job finished before this moment")
    err = interrupt(proc, pids, "mpirun")
    if proc.returncode == 0:  # the Ctrl-C came once the work was done and said: the exit goes on undisturbed
        assert "interrupted" not in err and "Traceback" not in err, err
        assert read_surface(out).completed.all()
    else:
        assert_one_interrupted_line(proc, err)
    assert_resumes_to(out, model_path, serial)
