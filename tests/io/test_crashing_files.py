"""A file that crashes the HDF5 library (a segmentation fault in plain h5py) is a damaged file to
every command, never a crash, and --overwrite or --repair replace it. Each command runs in a child
process: a crash there must not take the test run down with it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT, assert_one_line

SURF = ["--arch", "digits_cnn", "--dataset", "digits", "--samples", "60", "--no-progress", "--threads", "1"]


def _run(code: str, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def crashing_surface(tmp_path_factory):
    """A surface file with one flipped byte in the datatype of its ``arch`` attribute: reading its
    attributes kills plain h5py with a segmentation fault (found by flipping every byte of a file)."""
    from landscape.io.surface_file import new_surface, write_surface

    folder = tmp_path_factory.mktemp("crash")
    s = new_surface([np.linspace(-1, 1, 3)], ["train_loss", "train_acc"], {"arch": "digits_cnn", "model": "m.pt"})
    s.values["train_loss"][:] = [1.0, 0.5, 1.0]
    s.values["train_acc"][:] = [50.0, 90.0, 50.0]
    for n in s.done:
        s.done[n][:] = True
    write_surface(folder / "good.h5", s)
    data = bytearray((folder / "good.h5").read_bytes())
    data[data.find(b"arch\x00") + 9] ^= 0xFF  # attribute message: name padded to 8, then the datatype
    (folder / "bad.h5").write_bytes(bytes(data))
    plain = _run(f"import h5py\nf = h5py.File({str(folder / 'bad.h5')!r}, 'r')\n[f.attrs[k] for k in f.attrs]", folder)
    if plain.returncode >= 0:
        pytest.skip(f"this HDF5 library does not crash on the flipped byte (exit {plain.returncode})")
    return folder / "bad.h5"


def test_a_file_that_crashes_the_hdf5_library_is_damaged_not_a_crash(crashing_surface, tmp_path):
    bad = tmp_path / "s.h5"
    shutil.copy(crashing_surface, bad)
    r = _run(f"import sys\nfrom landscape.cli.plot import main\nsys.exit(main([{str(bad)!r}, '--formats', 'png']))",
             tmp_path)
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    assert_one_line(r.stderr, "landscape-plot", "is damaged", "crashed")
    assert not list(tmp_path.glob("*.png"))


@pytest.mark.parametrize("flag", ["--overwrite", pytest.param("--repair", marks=pytest.mark.slow)])
def test_overwrite_and_repair_replace_a_file_that_crashes_the_hdf5_library(crashing_surface, tmp_path, digits_ckpt,
                                                                           flag):
    bad = tmp_path / "s.h5"
    shutil.copy(crashing_surface, bad)
    # with no batch size the old file's is looked up: through the reader child, which the file crashes
    argv = ["--model", digits_ckpt, *SURF, "--x=-1:1:3", "--out", str(bad), flag]
    r = _run(f"import sys\nfrom landscape.cli.surf import main\nsys.exit(main({argv!r}))", tmp_path)
    assert r.returncode == 0, (r.returncode, r.stderr[-500:])
    from landscape.io.surface_file import read_surface

    repaired = read_surface(bad)
    assert repaired.done["train_loss"].all() and repaired.attrs["arch"] == "digits_cnn"
