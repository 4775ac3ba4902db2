"""What the fault campaign broke in training: a run killed before its first checkpoint, the
temporaries of killed writers, and a resume with other numerics (mixed precision)."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from helpers import quick

from landscape.errors import LandscapeError
from landscape.io.files import HOST, remove_stale_temporaries
from landscape.jobs.train import train


@pytest.mark.parametrize("resume", [False, True])
def test_a_run_killed_before_its_first_checkpoint_starts_again(tmp_path, resume):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "log.csv").write_text("epoch,lr,train_loss,train_err,test_loss,test_err,seconds\n")
    result = train(quick(tmp_path, epochs=1, resume=resume))
    assert result.epoch == 1 and (folder / "model_0.pt").exists() and (folder / "model_1.pt").exists()
    assert [r["epoch"] for r in result.history] == [0, 1]


def dead_writer_pid() -> tuple[int, subprocess.Popen]:
    """A process killed and not reaped yet (a zombie): its pid still answers kill(pid, 0)."""
    proc = subprocess.Popen(["sleep", "60"])
    proc.send_signal(signal.SIGKILL)
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # until it has died, leaving it unreaped
    return proc.pid, proc


def test_temporaries_of_killed_writers_go_on_overwrite_and_resume(tmp_path):
    folder = tmp_path / "run"
    train(quick(tmp_path, epochs=1))
    pid, proc = dead_writer_pid()
    try:
        stale = folder / f".model_2.pt.tmp.{HOST}.{pid}"
        stale.write_bytes(b"half a checkpoint")
        reused = folder / f".resume.pt.tmp.{HOST}.{os.getpid()}"  # our pid, but the file is older than us
        reused.write_bytes(b"x")
        os.utime(reused, (time.time() - 10 * 86400,) * 2)
        live = folder / f".label_noise.npz.tmp.{HOST}.{os.getpid()}"  # a live writer (us), written now
        live.write_bytes(b"y")
        train(quick(tmp_path, epochs=2, milestones=[], resume=True))
        assert not stale.exists() and not reused.exists() and live.exists()
        stale.write_bytes(b"again")
        train(quick(tmp_path, epochs=1, overwrite=True))
        assert not stale.exists()
        assert remove_stale_temporaries(folder / "label_noise.npz") == [] and live.exists()
    finally:
        proc.wait()


def test_resume_with_mixed_precision_of_a_full_precision_run_is_refused(tmp_path):
    train(quick(tmp_path, epochs=1))
    with pytest.raises(LandscapeError, match="different settings: amp False -> True"):
        train(quick(tmp_path, epochs=2, milestones=[], amp=True, resume=True))
    with pytest.raises(LandscapeError, match="channels_last False -> True"):
        train(quick(tmp_path, epochs=2, milestones=[], channels_last=True, resume=True))
