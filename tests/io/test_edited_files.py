"""A surface file edited by hand, its file checksum then recomputed (``seal``), is still caught
on every read: per-point checksums and the coordinates against the recorded inputs. A garbled
``split`` attribute is repaired into a file every command reads."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from landscape.cli import plot as plot_cli
from landscape.cli import surf as surf_cli
from landscape.io.h5 import DamagedFile, seal
from landscape.io.surface_file import read_surface

ARGS = ["--arch", "digits_cnn", "--samples", "32", "--x=-1:1:3", "--y=-1:1:3", "--no-progress"]


@pytest.fixture(scope="module")
def surface_file(tmp_path_factory) -> tuple[str, str]:
    from helpers import save_digits_cnn

    folder = tmp_path_factory.mktemp("edited")
    model = save_digits_cnn(folder / "m.pt")
    out = str(folder / "s.h5")
    assert surf_cli.main(["--model", model, *ARGS, "--out", out]) == 0
    return model, out


def change_value(f):
    f["train_loss"][1, 1] = f["train_loss"][1, 1] * 0.5


def nan_marked_done(f):
    f["train_loss"][0, 2] = np.nan


def reversed_coordinates(f):
    f["xcoordinates"][...] = f["xcoordinates"][()][::-1]


def scaled_coordinates(f):
    f["ycoordinates"][...] = f["ycoordinates"][()] * 2


def integer_dtype(f):
    v = np.round(f["train_acc"][()]).astype(np.int64)
    scales = [d[0] for d in f["train_acc"].dims]
    del f["train_acc"]
    ds = f.create_dataset("train_acc", data=v)
    for dim, scale in zip(ds.dims, scales, strict=True):
        dim.attach_scale(scale)


@pytest.mark.parametrize("edit", [change_value, nan_marked_done, reversed_coordinates, scaled_coordinates,
                                  integer_dtype])
def test_an_edit_with_a_recomputed_file_checksum_is_caught(surface_file, tmp_path, capsys, edit):
    model, original = surface_file
    path = str(tmp_path / "s.h5")
    shutil.copy(original, path)
    with h5py.File(path, "a") as f:
        edit(f)
        seal(f)
    with pytest.raises(DamagedFile):
        read_surface(path)
    assert plot_cli.main([path, "--formats", "png"]) == 2
    assert "damaged" in capsys.readouterr().err
    # --repair recomputes what does not verify, into a file that reads back
    assert surf_cli.main(["--model", model, *ARGS, "--out", path, "--repair"]) == 0
    fresh, repaired = read_surface(original), read_surface(path)
    np.testing.assert_array_equal(repaired.x, fresh.x)
    np.testing.assert_allclose(repaired.loss, fresh.loss, rtol=1e-6)


def test_a_garbled_split_is_repaired_into_a_readable_file(surface_file, tmp_path, capsys):
    model, original = surface_file
    path = str(tmp_path / "s.h5")
    shutil.copy(original, path)
    with h5py.File(path, "a") as f:
        f.attrs["split"] = "tr\x01in"
    assert plot_cli.main([path, "--formats", "png"]) == 2
    assert surf_cli.main(["--model", model, *ARGS, "--out", path, "--repair"]) == 0
    s = read_surface(path)
    assert s.attrs["split"] == "train" and s.loss.shape == (3, 3)
    assert plot_cli.main([path, "--formats", "png"]) == 0, capsys.readouterr().err
