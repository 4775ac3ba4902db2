"""The surface file: round trip, layout for the original tool's scripts and xarray, checksums,
damage detection and repair, older layouts, atomic writes."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from landscape.errors import LandscapeError
from landscape.io.h5 import DamagedFile
from landscape.io.surface_file import new_surface, point_checksums, read_surface, repair_surface, write_surface
from landscape.space.grid import Grid, parse_axis

INPUTS = {"grid": ["-1:1:3", "0:1:4"], "model": "m", "metrics": {"train_loss": {"a": 1}, "train_acc": {"a": 1}}}


def filled(grid, split="train", pending=2):
    s = new_surface(grid.coordinates(), [f"{split}_loss", f"{split}_acc"],
                    {"arch": "digits_cnn", "seed": 3, "samples": 100, "split": split,
                     "inputs": json.dumps(INPUTS)})
    for k in range(grid.size - pending):  # the last points stay pending
        s.record(k, {f"{split}_loss": 0.5 + k, f"{split}_acc": 10.0 + k})
    return s


GRID = Grid(parse_axis("-1:1:3"), parse_axis("0:1:4"))


def test_round_trip_keeps_values_nans_masks_and_attrs(tmp_path):
    s = filled(GRID)
    s.arrays["sample_indices"] = np.arange(5)
    write_surface(tmp_path / "s.h5", s)
    r = read_surface(tmp_path / "s.h5")
    assert r.shape == (4, 3) and r.split == "train" and r.path == str(tmp_path / "s.h5")
    np.testing.assert_array_equal(r.loss, s.loss)  # NaN where pending
    assert np.isnan(r.loss[3, 2]) and r.loss[0, 1] == 1.5 and r.acc[1, 0] == 13.0
    assert r.pending().tolist() == [10, 11]
    assert r.attrs["arch"] == "digits_cnn" and r.attrs["seed"] == 3 and r.attrs["format_version"] == 2
    np.testing.assert_array_equal(r.arrays["sample_indices"], np.arange(5))


def test_layout_is_the_originals_meshgrid_order_with_scales_for_xarray(tmp_path):
    """file[j, i] holds the point (x[i], y[j]), as the original's plot_2D.py reads it."""
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    grid = Grid(parse_axis("-1:1:3"), parse_axis("0:1:4"))
    s = new_surface(grid.coordinates(), ["test_loss"], {"inputs": json.dumps(INPUTS)})
    for p in range(grid.size):
        x, y = grid.point(p)
        s.record(p, {"test_loss": 10 * x + y})  # asymmetric in x and y
    write_surface(tmp_path / "s.h5", s)
    with h5py.File(tmp_path / "s.h5") as f:
        z = f["test_loss"][()]
        xs, ys = f["xcoordinates"][()], f["ycoordinates"][()]
        assert z.shape == (4, 3)
        for i in range(3):
            for j in range(4):
                assert z[j, i] == pytest.approx(10 * xs[i] + ys[j])
        xx, yy = np.meshgrid(xs, ys)  # what plot_2D.py does: contour(X, Y, Z)
        np.testing.assert_allclose(z, 10 * xx + yy)
    ds = xr.open_dataset(tmp_path / "s.h5", engine="h5netcdf")
    assert ds["test_loss"].dims == ("ycoordinates", "xcoordinates")
    assert float(ds["test_loss"].sel(xcoordinates=1.0, ycoordinates=0.0)) == pytest.approx(10.0)
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
            assert r.loss[j, i] == pytest.approx(10 * x[i] + y[j])
    assert r.completed.all()


def test_reads_a_format_1_file_in_its_own_order(tmp_path):
    """landscape 0.1 wrote [i, j] arrays; they are read right and never resumed."""
    x, y = np.linspace(-1, 1, 3), np.linspace(0, 1, 4)
    with h5py.File(tmp_path / "v1.h5", "w") as f:
        f["xcoordinates"], f["ycoordinates"] = x, y
        f["train_loss"] = 10 * x[:, None] + y[None, :]
        f["train_acc"] = np.zeros((3, 4))
        f["completed"] = np.ones((3, 4), np.uint8)
        f.attrs["landscape_version"] = "0.1.0"
    r = read_surface(tmp_path / "v1.h5")
    assert r.shape == (4, 3)
    assert r.loss[3, 2] == pytest.approx(10 * x[2] + y[3]) and r.inputs() == {}


def test_a_failed_write_leaves_the_old_file_intact(tmp_path, monkeypatch):
    grid = Grid(parse_axis("-1:1:3"))
    path = tmp_path / "s.h5"
    write_surface(path, filled(grid))
    before = path.read_bytes()
    s = filled(grid)
    s.record(2, {"train_loss": 99.0, "train_acc": 1.0})

    def boom(*args, **kwargs):
        raise OSError("disk full\nsecond line")

    monkeypatch.setattr(h5py.Group, "create_dataset", boom)
    with pytest.raises(LandscapeError, match="cannot write") as info:
        write_surface(path, s)
    assert "\n" not in str(info.value)  # one line
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


def _flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def test_a_flipped_value_is_detected(tmp_path):
    path = tmp_path / "s.h5"
    write_surface(path, filled(GRID))
    raw = path.read_bytes()
    target = np.float64(5.5).tobytes()  # train_loss at point 5
    _flip(path, raw.index(target) + 7)
    with pytest.raises(DamagedFile, match="damaged"):
        read_surface(path)


def test_edited_attribute_and_missing_mask_are_damage(tmp_path):
    path = tmp_path / "s.h5"
    write_surface(path, filled(GRID))
    with h5py.File(path, "a") as f:
        f.attrs["seed"] = 4
    with pytest.raises(DamagedFile, match="checksum"):
        read_surface(path)
    write_surface(path, filled(GRID))
    with h5py.File(path, "a") as f:
        del f["completed"]
    with pytest.raises(DamagedFile):  # ours without its mask: damaged, not the original tool's file
        read_surface(path)


def test_repair_keeps_exactly_the_points_that_verify(tmp_path):
    path = tmp_path / "s.h5"
    s = filled(GRID, pending=0)
    write_surface(path, s)
    with h5py.File(path, "a") as f:  # damage two values without touching the checksums
        f["train_loss"][1, 2] = 123.0
        f["train_acc"][3, 0] = -1.0
    with pytest.raises(DamagedFile):
        read_surface(path)
    repaired, kept = repair_surface(path, GRID.coordinates(), INPUTS)
    assert kept == GRID.size - 2
    assert sorted(repaired.pending().tolist()) == [5, 9]  # [1, 2] -> 1*3+2; [3, 0] -> 9
    good = np.ones(GRID.shape, bool)
    good[1, 2] = good[3, 0] = False
    np.testing.assert_array_equal(repaired.loss[good], s.loss[good])
    # other inputs: nothing verifies
    _, kept_other = repair_surface(path, GRID.coordinates(), {**INPUTS, "model": "other"})
    assert kept_other == 0


def test_point_checksums_depend_on_coordinates_values_and_metric_config():
    s = filled(GRID)
    base = point_checksums(s.coords, s.values, s.done, INPUTS)
    moved = [s.coords[0] + 1e-9, s.coords[1]]
    assert (point_checksums(moved, s.values, s.done, INPUTS) != base).all()
    other = {**INPUTS, "metrics": {"train_loss": {"a": 2}, "train_acc": {"a": 1}}}
    assert (point_checksums(s.coords, s.values, s.done, other) != base).all()
    v = {k: a.copy() for k, a in s.values.items()}
    v["train_acc"][0, 0] += 1
    changed = point_checksums(s.coords, v, s.done, INPUTS) != base
    assert changed.sum() == 1 and changed[0, 0]
