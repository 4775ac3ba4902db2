"""The surface file: round trip, xarray's view of it, resume checks, atomic writes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from landscape.errors import LandscapeError
from landscape.grid import Grid, parse_axis
from landscape.surface import config_mismatch, new_surface, read_surface, write_surface


def filled(grid, split="train"):
    s = new_surface(grid, split, {"arch": "digits_cnn", "seed": 3, "samples": 100})
    for k in range(grid.size - 2):  # the last two points stay pending
        s.record(k, {f"{split}_loss": 0.5 + k, f"{split}_acc": 10.0 + k})
    return s


def test_round_trip_keeps_values_nans_mask_and_attrs(tmp_path):
    grid = Grid(parse_axis("-1:1:3"), parse_axis("0:1:4"))
    s = filled(grid)
    s.extras["sample_indices"] = np.arange(5)
    write_surface(tmp_path / "s.h5", s)
    r = read_surface(tmp_path / "s.h5")
    assert r.shape == (3, 4) and r.split == "train"
    np.testing.assert_array_equal(r.loss, s.loss)  # NaN where pending
    assert np.isnan(r.loss[2, 3]) and r.loss[0, 1] == 1.5 and r.acc[1, 0] == 14.0
    assert r.pending().tolist() == [10, 11]
    assert r.attrs["arch"] == "digits_cnn" and r.attrs["seed"] == 3 and r.attrs["yspec"] == "0:1:4"
    np.testing.assert_array_equal(r.extras["sample_indices"], np.arange(5))


def test_original_names_and_dimension_scales_for_xarray(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    grid = Grid(parse_axis("-1:1:3"), parse_axis("0:1:4"))
    write_surface(tmp_path / "s.h5", filled(grid, "test"))
    with h5py.File(tmp_path / "s.h5") as f:
        assert {"xcoordinates", "ycoordinates", "test_loss", "test_acc", "completed"} <= set(f)
    ds = xr.open_dataset(tmp_path / "s.h5", engine="h5netcdf")
    assert ds["test_loss"].dims == ("xcoordinates", "ycoordinates")
    np.testing.assert_allclose(ds["xcoordinates"].values, [-1, 0, 1])
    assert float(ds["test_loss"].sel(xcoordinates=0.0, ycoordinates=0.0)) == 4.5
    ds.close()


def test_reads_a_file_of_the_original_tool(tmp_path):
    with h5py.File(tmp_path / "orig.h5", "w") as f:
        f["xcoordinates"] = np.linspace(-1, 1, 3)
        f["train_loss"] = np.array([1.0, -1.0, 2.0])  # the original starts every point at -1
        f["train_acc"] = np.array([50.0, -1.0, 40.0])
    r = read_surface(tmp_path / "orig.h5")
    assert r.ndim == 1 and r.completed.tolist() == [True, False, True]


def test_reads_a_2d_file_of_the_original_tool_in_its_point_order(tmp_path):
    x, y = np.linspace(-1, 1, 3), np.linspace(0, 1, 4)
    xm, ym = np.meshgrid(x, y)  # the original's order: flat index j*nx + i is (x[i], y[j])
    flat = (10 * xm + ym).ravel()
    with h5py.File(tmp_path / "orig2d.h5", "w") as f:
        f["xcoordinates"], f["ycoordinates"] = x, y
        f["train_loss"] = flat.reshape(len(x), len(y))  # stored with shape (nx, ny)
        f["train_acc"] = flat.reshape(len(x), len(y))
    r = read_surface(tmp_path / "orig2d.h5")
    for i in range(3):
        for j in range(4):
            assert r.loss[i, j] == pytest.approx(10 * x[i] + y[j])
    assert r.completed.all()


def test_config_mismatch_names_the_key():
    s = filled(Grid(parse_axis("-1:1:3")))
    assert config_mismatch(s, {"arch": "digits_cnn", "seed": 3}) is None
    assert "seed" in config_mismatch(s, {"arch": "digits_cnn", "seed": 4})


def test_a_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    grid = Grid(parse_axis("-1:1:3"))
    path = tmp_path / "s.h5"
    write_surface(path, filled(grid))
    before = path.read_bytes()
    s = filled(grid)
    s.record(2, {"train_loss": 99.0, "train_acc": 1.0})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(LandscapeError, match="cannot write"):
        write_surface(path, s)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]  # no temporary left behind
    assert read_surface(path).pending().tolist() == [1, 2]


def test_not_a_surface_file(tmp_path):
    (tmp_path / "bad.h5").write_bytes(b"\x00" * 64)
    with pytest.raises(LandscapeError, match="not a readable HDF5"):
        read_surface(tmp_path / "bad.h5")
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(LandscapeError, match="not a surface file"):
        read_surface(tmp_path / "empty.h5")
