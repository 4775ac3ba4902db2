"""One writer per output: the lock names its owner, deterministically (no race the test must win).

The owner of an output's lock writes ``pid PID on HOST`` just after taking it. A run refused in
that window used to say "being written by another run (unknown)" (issue 24, part 8); here the
window is held open by the test itself: it takes the ``flock`` and writes the owner's line only
when the refused run pauses to wait for it.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import TIMEOUT

import landscape.io.files as files
from landscape.cli import surf as surf_cli
from landscape.errors import LandscapeError
from landscape.io.files import OutputLock
from landscape.io.surface_file import read_surface, write_surface

ROOT = str(Path(__file__).resolve().parents[2])
ME = f"pid {os.getpid()} on {socket.gethostname()}"


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


@pytest.fixture
def held(tmp_path):
    """The lock of ``tmp_path/s.h5`` taken by a descriptor of the test, its owner's line not yet written."""
    fd = os.open(tmp_path / ".s.h5.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    yield fd
    os.close(fd)


def on_first_pause(monkeypatch, action) -> list[float]:
    """Run ``action`` when the refused run first pauses to wait; return the pauses it made."""
    pauses: list[float] = []

    def pause(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 1:
            action()

    monkeypatch.setattr(files.time, "sleep", pause)
    return pauses


def test_a_run_refused_before_the_owner_wrote_its_line_names_the_owner(tmp_path, held, monkeypatch):
    pauses = on_first_pause(monkeypatch, lambda: os.pwrite(held, f"{ME}\n".encode(), 0))
    with pytest.raises(LandscapeError) as err:
        OutputLock(tmp_path / "s.h5").acquire()
    assert f"being written by another run ({ME})" in str(err.value)
    assert "unknown" not in str(err.value) and len(pauses) == 1


def test_the_line_of_a_dead_earlier_owner_is_not_taken_for_the_owner(tmp_path, held, monkeypatch):
    """A killed run leaves its line; the next owner has the lock but has not yet replaced it."""
    stale = f"pid {dead_pid()} on {socket.gethostname()}\n"
    os.pwrite(held, stale.encode(), 0)
    on_first_pause(monkeypatch, lambda: (os.ftruncate(held, 0), os.pwrite(held, f"{ME}\n".encode(), 0)))
    with pytest.raises(LandscapeError) as err:
        OutputLock(tmp_path / "s.h5").acquire()
    assert f"({ME})" in str(err.value) and stale.strip() not in str(err.value)


def test_a_half_written_line_is_waited_for(tmp_path, held, monkeypatch):
    os.pwrite(held, b"pid 12", 0)  # no newline yet
    on_first_pause(monkeypatch, lambda: os.pwrite(held, f"{ME}\n".encode(), 0))
    with pytest.raises(LandscapeError, match=f"another run .{ME}."):
        OutputLock(tmp_path / "s.h5").acquire()


def test_a_lock_released_while_waiting_is_taken(tmp_path, held, monkeypatch):
    on_first_pause(monkeypatch, lambda: fcntl.flock(held, fcntl.LOCK_UN))
    lock = OutputLock(tmp_path / "s.h5").acquire()
    assert Path(lock.lock_path).read_text() == f"{ME}\n"
    lock.release()


def test_an_owner_that_never_records_itself_is_not_unknown(tmp_path, held, monkeypatch):
    monkeypatch.setattr(files, "OWNER_WAIT", 0.05)
    with pytest.raises(LandscapeError, match="which has not recorded its pid in 0.05 s") as err:
        OutputLock(tmp_path / "s.h5").acquire()
    assert "unknown" not in str(err.value)


def test_the_owner_replaces_a_longer_old_line_and_release_removes_the_file(tmp_path):
    out = tmp_path / "s.h5"
    lock_file = tmp_path / ".s.h5.lock"
    lock_file.write_text(f"pid {dead_pid()} on a-much-longer-host-name.example.org\nmore\n")  # a killed run's
    with OutputLock(out):
        assert lock_file.read_text() == f"{ME}\n"
        with pytest.raises(LandscapeError, match=f"another run .{ME}."):
            OutputLock(out).acquire()  # a second descriptor, even in this process, is refused
        assert lock_file.exists()  # the refused run left the owner's file alone
    assert not lock_file.exists()
    OutputLock(out).acquire().release()
    assert os.listdir(tmp_path) == []


def the_owner_lets_go_between_open_and_lock(monkeypatch, lock_file: Path, then=None) -> list[int]:
    """Make the first ``flock`` of an acquire meet the race it must survive: the file it opened is
    removed by its owner letting go (and ``then()`` runs: another run taking the name) just
    before the lock is tried. Returns, for each lock tried, whether its file still had a name."""
    tried: list[int] = []
    real = files._try_lock

    def racing(fd: int) -> bool:
        if not tried:
            os.unlink(lock_file)
            if then is not None:
                then()
        tried.append(os.fstat(fd).st_nlink > 0)
        return real(fd)

    monkeypatch.setattr(files, "_try_lock", racing)
    return tried


def test_a_lock_whose_file_was_removed_as_it_was_taken_is_taken_again_on_the_new_file(tmp_path, monkeypatch):
    out, lock_file = tmp_path / "s.h5", tmp_path / ".s.h5.lock"
    lock_file.write_text("")
    tried = the_owner_lets_go_between_open_and_lock(monkeypatch, lock_file)
    lock = OutputLock(out).acquire()
    assert tried == [False, True]  # the removed file's lock was not kept: the new file's was taken
    assert lock_file.read_text() == f"{ME}\n"
    lock.release()
    assert not lock_file.exists()


def test_two_runs_never_both_hold_an_output_when_its_lock_file_is_replaced(tmp_path, monkeypatch):
    """The run that opened the old file loses the race to a run that made the new one: refused."""
    out, lock_file = tmp_path / "s.h5", tmp_path / ".s.h5.lock"
    lock_file.write_text("")
    other: list[int] = []

    def another_run_takes_the_name() -> None:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(fd, f"pid {os.getppid()} on {socket.gethostname()}\n".encode(), 0)  # a live process
        other.append(fd)

    the_owner_lets_go_between_open_and_lock(monkeypatch, lock_file, another_run_takes_the_name)
    try:
        with pytest.raises(LandscapeError, match="being written by another run"):
            OutputLock(out).acquire()
        assert lock_file.exists()  # the other run's file, untouched
    finally:
        os.close(other[0])


def test_a_second_run_on_an_output_mid_write_is_refused_and_changes_nothing(tmp_path, digits_ckpt, capsys):
    """Replaces the timed race of two jobs: the test holds the lock itself, over a file with points
    still pending, so the refusal (naming this process) is certain; released, the run resumes."""
    out = tmp_path / "s.h5"
    args = ["--model", digits_ckpt, "--arch", "digits_cnn", "--samples", "40", "--batch-size", "40",
            "--x=-1:1:3", "--y=-1:1:2", "--threads", "1", "--no-progress", "--out", str(out)]
    assert surf_cli.main(args) == 0, capsys.readouterr().err
    full = read_surface(out)
    mid = read_surface(out)
    for name in mid.values:  # as a run killed mid-write leaves it: half the points pending
        mid.values[name].flat[3:] = np.nan
        mid.done[name].flat[3:] = False
    write_surface(out, mid)
    before = out.read_bytes()
    with OutputLock(out):
        capsys.readouterr()
        for extra in ([], ["--overwrite"]):  # resuming it, or replacing it: both refused
            assert surf_cli.main([*args, *extra]) == 2
            err = capsys.readouterr().err.strip()
            assert len(err.splitlines()) == 1 and f"being written by another run ({ME})" in err, err
        # another process (the lock is the operating system's, not this process's)
        code = f"from landscape.io.files import OutputLock; OutputLock({str(out)!r}).acquire()"
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT,
                              env=dict(os.environ, PYTHONPATH=ROOT))
        assert proc.returncode != 0 and f"being written by another run ({ME})" in proc.stderr, proc.stderr
        assert out.read_bytes() == before
    assert surf_cli.main(args) == 0, capsys.readouterr().err
    resumed = read_surface(out)
    assert resumed.completed.all()
    for name in full.values:
        np.testing.assert_allclose(resumed.values[name], full.values[name], rtol=1e-6, atol=1e-9)
