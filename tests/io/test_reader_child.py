"""The reader child that reads our HDF5 files (issue 32, part 1): a file that makes the HDF5 library
loop is reported damaged in one line once its time limit passes, and the reader never outlives its
command, however the command ends. A reader that never answers stands in for the looping library
(a file that makes it loop cannot be built on purpose)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import landscape
from landscape.io import h5
from landscape.io.surface_file import new_surface, write_surface

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(landscape.__file__)))
HANG_GUARD = 60  # seconds before a test that would hang fails instead

# A command whose reader never answers: the stand-in writes the reader's pid, then sleeps.
SCRIPT = """
import os, sys, time
from landscape.io import h5

def never_answers(path):
    with open({pidfile!r}, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(1e6)

h5._examine = never_answers
h5.READ_LIMIT_S = {limit}
h5.READ_RATE = 1 << 40
from landscape.cli.plot import main
sys.exit(main([{surface!r}, "--formats", "png"]))
"""


@pytest.fixture
def surface(tmp_path) -> str:
    s = new_surface([np.linspace(-1, 1, 3)], ["train_loss"], {"arch": "mlp"})
    s.values["train_loss"][:] = [1.0, 0.5, 1.0]
    s.done["train_loss"][:] = True
    path = str(tmp_path / "s.h5")
    write_surface(path, s)
    return path


def _start(tmp_path, surface: str, limit: float) -> tuple[subprocess.Popen, str]:
    pidfile = str(tmp_path / "reader.pid")
    code = SCRIPT.format(pidfile=pidfile, limit=limit, surface=surface)
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    return proc, pidfile


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (a killed child whose parent is gone may wait to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError):
        return False


def _reader_pid(pidfile: str, proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        if os.path.exists(pidfile) and open(pidfile).read():
            return int(open(pidfile).read())
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    pytest.fail("the reader never started")


def test_a_reader_that_never_answers_is_ended_and_the_file_called_damaged(tmp_path, surface):
    proc, pidfile = _start(tmp_path, surface, limit=1.0)
    try:
        _, err = proc.communicate(timeout=HANG_GUARD)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the command waited on its reader for ever")
    finally:
        reader = int(open(pidfile).read()) if os.path.exists(pidfile) else 0
        if reader and _running(reader):
            os.kill(reader, signal.SIGKILL)
            pytest.fail("the reader outlived its command")
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("landscape-plot: error: ") and "is damaged" in lines[0], err
    assert "did not finish reading it in 1 s" in lines[0]
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_the_reader_never_outlives_its_command(tmp_path, surface, sig):
    proc, pidfile = _start(tmp_path, surface, limit=1e6)
    reader = _reader_pid(pidfile, proc)  # the command now waits on a reader that never answers
    try:
        proc.send_signal(sig)
        proc.communicate(timeout=HANG_GUARD)
        deadline = time.monotonic() + HANG_GUARD
        while _running(reader) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not _running(reader), f"the reader outlived its command ({sig.name})"
    finally:
        proc.kill()
        if _running(reader):
            os.kill(reader, signal.SIGKILL)


def test_the_time_limit_scales_with_the_file_size():
    assert h5.read_limit(0) == h5.READ_LIMIT_S
    assert h5.read_limit(40 << 20) == pytest.approx(h5.READ_LIMIT_S + (40 << 20) / h5.READ_RATE)
    assert h5.read_limit(1 << 30) > h5.read_limit(1 << 20)


def test_a_reader_ended_by_its_thread_is_started_again(surface):
    """PR_SET_PDEATHSIG follows the thread that forked the reader: one started by a thread that has
    ended is dead, and the next probe starts another rather than call the file crashed."""
    import threading

    reader = h5._Reader()
    found = []
    t = threading.Thread(target=lambda: found.append(reader.probe(surface)))
    t.start()
    t.join()
    assert found[0].status == "ok"
    deadline = time.monotonic() + HANG_GUARD
    while reader.pid and _running(reader.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert reader.probe(surface).status == "ok" and reader.probe(surface).verified
    reader.close()


def test_the_reader_child_turns_any_crash_into_damaged(tmp_path, monkeypatch):
    """The mechanism, in-process: a reader child that dies of a signal means "damaged"."""
    from landscape.errors import LandscapeError
    from landscape.io.surface_file import peek_attrs, read_surface

    s = new_surface([np.linspace(-1, 1, 3)], ["train_loss"], {"arch": "mlp"})
    write_surface(tmp_path / "s.h5", s)
    monkeypatch.setattr(h5, "_examine", lambda path: os.kill(os.getpid(), signal.SIGSEGV), raising=False)
    monkeypatch.setattr(h5, "_READER", h5._Reader() if hasattr(h5, "_Reader") else None, raising=False)
    with pytest.raises(LandscapeError, match="damaged .*crashed"):
        read_surface(tmp_path / "s.h5")
    assert peek_attrs(tmp_path / "s.h5") == {}
    monkeypatch.undo()
    assert read_surface(tmp_path / "s.h5").attrs["arch"] == "mlp"  # a new child reads it again


def test_the_reader_child_never_holds_the_callers_locks(tmp_path, monkeypatch):
    from landscape.errors import LandscapeError
    from landscape.io.files import OutputLock
    from landscape.io.surface_file import read_surface

    s = new_surface([np.linspace(-1, 1, 3)], ["train_loss"], {"arch": "mlp"})
    s.values["train_loss"][:] = [1.0, 0.5, 1.0]
    s.done["train_loss"][:] = True
    write_surface(tmp_path / "s.h5", s)
    monkeypatch.setattr(h5, "_READER", h5._Reader())  # forked below, while the lock is held
    lock = OutputLock(tmp_path / "s.h5").acquire()
    with pytest.raises(LandscapeError, match="being written by another run"):
        OutputLock(tmp_path / "s.h5").acquire()  # held: the check below can fail
    got = read_surface(tmp_path / "s.h5")
    assert h5._READER.pid  # the child was forked while the lock was held
    assert got.attrs["arch"] == "mlp" and got.values["train_loss"].tolist() == [1.0, 0.5, 1.0]
    lock.release()
    OutputLock(tmp_path / "s.h5").acquire().release()  # free again: the reader did not keep it
