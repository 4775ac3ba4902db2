"""The VTK structured grid: read back by VTK itself and, independently, parsed by hand."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from helpers import make_surface, read_vts

from landscape.errors import LandscapeError
from landscape.plot.vtk import write_vti, write_vtk


def saddle(nx: int = 6, ny: int = 4):
    """A non-square surface with a NaN point and one large value to clip."""
    x, y = np.linspace(-1, 1, nx), np.linspace(-3, 3, ny)
    loss = 1.0 + x[None, :] ** 2 - 0.1 * y[:, None] + 0.01 * np.arange(nx * ny).reshape(ny, nx)
    loss[1, 2] = np.nan
    loss[-1, 0] = 50.0
    values = {"train_loss": loss, "train_acc": 100 - loss}  # [j, i] at (x[i], y[j])
    return make_surface([x, y], values, {"split": "train"})


def expected_height(loss: np.ndarray, zmax: float | None, log: bool) -> np.ndarray:
    """h52vtp.py: ``z[z > zmax] = zmax`` then ``np.log(z + 0.1)``."""
    z = loss.copy()
    if zmax:
        z[z > zmax] = zmax
    return np.log(z + 0.1) if log else z


def parse(path) -> tuple[tuple[int, ...], dict[str, np.ndarray], np.ndarray]:
    """Extent, point data and points of an uncompressed, base64-binary .vts file."""
    root = ET.parse(path).getroot()
    assert root.get("type") == "StructuredGrid" and root.get("header_type") == "UInt64"
    assert root.get("byte_order") == "LittleEndian"
    piece = root.find("StructuredGrid/Piece")
    extent = tuple(int(v) for v in piece.get("Extent").split())

    def decode(da) -> np.ndarray:
        text = da.text.strip()
        size = int(np.frombuffer(base64.b64decode(text[:12]), "<u8")[0])  # 8 bytes -> 12 chars
        raw = base64.b64decode(text[12:])
        assert len(raw) == size
        dtype = {"Float64": "<f8", "UInt8": "u1"}[da.get("type")]
        return np.frombuffer(raw, dtype).reshape(-1, int(da.get("NumberOfComponents", 1)))

    data = {da.get("Name"): decode(da)[:, 0] for da in piece.find("PointData")}
    points = decode(piece.find("Points/DataArray"))
    return extent, data, points


@pytest.mark.parametrize("zmax, log", [(None, False), (5.0, True)])
def test_xml_layout_and_values(tmp_path, zmax, log):
    s = saddle()
    write_vtk(s, tmp_path / "s.vts", zmax=zmax, log=log)
    extent, data, points = parse(tmp_path / "s.vts")
    assert extent == (0, 5, 0, 3, 0, 0)
    # VTK's order: x fastest. Point k = i + nx * j is (x[i], y[j]).
    i, j = np.arange(24) % 6, np.arange(24) // 6
    np.testing.assert_array_equal(points[:, 0], s.x[i])
    np.testing.assert_array_equal(points[:, 1], s.y[j])
    np.testing.assert_array_equal(data["train_loss"], s.loss[j, i])  # NaN kept
    np.testing.assert_array_equal(data["train_acc"], s.acc[j, i])
    z = expected_height(s.loss, zmax, log)
    np.testing.assert_allclose(data["z"], z[j, i])
    hidden = data["vtkGhostType"] == 2
    assert hidden.tolist() == (~np.isfinite(z[j, i])).tolist()
    np.testing.assert_allclose(points[~hidden, 2], z[j, i][~hidden])
    assert np.isfinite(points).all()
    if zmax:
        assert np.nanmax(data["z"]) == pytest.approx(np.log(zmax + 0.1))


def test_vtk_reads_it_back(tmp_path):
    vtk = pytest.importorskip("vtk", reason="the vtk package is not installed (pip install vtk)")

    s = saddle(7, 3)
    write_vtk(s, tmp_path / "s.vts", zmax=20.0)
    grid, dims, pts, arrays = read_vts(tmp_path / "s.vts")
    assert dims == [7, 3, 1]
    loss, acc = arrays["train_loss"], arrays["train_acc"]
    assert grid.GetPointData().GetScalars().GetName() == "train_loss"
    for i in range(7):
        for j in range(3):
            k = vtk.vtkStructuredData.ComputePointId(dims, [i, j, 0])
            assert tuple(pts[k, :2]) == (s.x[i], s.y[j])
            np.testing.assert_equal(loss[k], s.loss[j, i])
            np.testing.assert_equal(acc[k], s.acc[j, i])
            assert bool(grid.IsPointVisible(k)) == bool(np.isfinite(s.loss[j, i]))
            if np.isfinite(s.loss[j, i]):
                assert pts[k, 2] == min(s.loss[j, i], 20.0)


def test_1d_surface_and_unknown_quantity_are_refused(tmp_path):
    one = make_surface([np.linspace(0, 1, 3)], {"train_loss": np.ones(3), "train_acc": np.ones(3)},
                       {"split": "train"})
    with pytest.raises(LandscapeError, match="2D"):
        write_vtk(one, tmp_path / "a.vts")
    with pytest.raises(LandscapeError, match="test_loss"):
        write_vtk(saddle(), tmp_path / "b.vts", quantity="test_loss")


def test_a_volume_as_vtk_image_data_read_back_by_vtk(tmp_path):
    vtk = pytest.importorskip("vtk", reason="the vtk package is not installed (pip install vtk)")
    from vtk.util.numpy_support import vtk_to_numpy

    x, y, z = np.linspace(-1, 1, 4), np.linspace(0, 1, 3), np.linspace(-2, 2, 5)
    zz, yy, xx = np.meshgrid(z, y, x, indexing="ij")
    loss = xx + 10 * yy + 100 * zz
    loss[1, 2, 3] = np.nan
    write_vti(make_surface([x, y, z], {"train_loss": loss}, {"split": "train"}), tmp_path / "v.vti")
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(tmp_path / "v.vti"))
    reader.Update()
    image = reader.GetOutput()
    assert image.GetDimensions() == (4, 3, 5)
    values = vtk_to_numpy(image.GetPointData().GetArray("train_loss"))
    for i, j, k in [(0, 0, 0), (3, 2, 4), (1, 2, 3), (3, 2, 1)]:
        pid = image.ComputePointId([i, j, k])
        np.testing.assert_allclose(image.GetPoint(pid), (x[i], y[j], z[k]))
        np.testing.assert_equal(values[pid], loss[k, j, i])
