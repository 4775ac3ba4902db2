"""The sensitivity scan under a real ``mpirun -n 2``: the same file as a serial run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TIMEOUT, randomized

from landscape.models import build_model
from landscape.prune import read_sensitivity

ROOT = str(Path(__file__).resolve().parents[2])


def _mpirun() -> str | None:
    here = Path(sys.executable).parent
    for name in ("mpirun", "mpiexec"):
        if (here / name).is_file():
            return str(here / name)
    return shutil.which("mpirun") or shutil.which("mpiexec")


def _has_mpi4py() -> bool:
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


MPIRUN = _mpirun()
pytestmark = [
    pytest.mark.mpi, pytest.mark.slow,
    pytest.mark.skipif(not _has_mpi4py(), reason="mpi4py is not installed"),
    pytest.mark.skipif(MPIRUN is None, reason="no mpirun/mpiexec on PATH"),
]


def test_two_ranks_write_the_serial_file(tmp_path):
    ckpt = tmp_path / "d.pt"
    torch.save(randomized(build_model("digits_cnn", in_channels=1), seed=4).state_dict(), ckpt)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "PMIX_", "OMPI_"))}
    env.pop("MPI_LOCALNRANKS", None)
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=ROOT, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    version = subprocess.run([MPIRUN, "--version"], capture_output=True, text=True).stdout
    extra = ["--oversubscribe"] if "Open MPI" in version or "OpenRTE" in version else []
    args = ["--model", str(ckpt), "--arch", "digits_cnn", "--sensitivity", "--samples", "64",
            "--ratios", "0.2:0.8:4", "--batch-size", "32", "--no-progress"]
    for n, name in ((2, "mpi.h5"), (1, "serial.h5")):
        launcher = [MPIRUN, "-n", str(n), *extra] if n > 1 else []
        proc = subprocess.run([*launcher, sys.executable, "-m", "landscape.cli.prune", *args,
                               "--out", str(tmp_path / name)], capture_output=True, text=True, env=env, timeout=TIMEOUT)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.count("wrote") == 1  # rank 0 alone reports and writes
    a, b = read_sensitivity(tmp_path / "mpi.h5"), read_sensitivity(tmp_path / "serial.h5")
    assert a.attrs["mpi_ranks"] == 2 and b.attrs["mpi_ranks"] == 1
    assert np.array_equal(a.accuracy, b.accuracy) and np.allclose(a.loss, b.loss, rtol=1e-12, atol=0)
    assert a.completed.all() and a.baseline_loss == b.baseline_loss
