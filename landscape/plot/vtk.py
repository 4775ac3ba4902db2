"""A 2D surface as a VTK XML structured grid (``.vts``) for ParaView, written without VTK.

The grid's points are ``(x, y, z)`` with z the plotted height, made as the original tool's
``h52vtp.py`` makes it: values above ``zmax`` are clipped to it, then ``log`` takes
``ln(z + 0.1)``. Every value array of the surface (``train_loss``, ``train_acc``, ...) goes
along unchanged as point data, NaN included, with ``z`` itself. Points whose height is not
finite sit at the lowest finite height and are hidden (VTK's ``vtkGhostType`` HIDDENPOINT
flag), so ParaView leaves a hole there.

Arrays are base64-encoded little-endian binary (NaN survives, which VTK's ASCII reader does not
promise), each preceded by its byte count as a UInt64, as VTK's own writer does.
"""

from __future__ import annotations

import base64
import os
from xml.sax.saxutils import quoteattr

import numpy as np

from landscape.errors import LandscapeError
from landscape.io.files import write_text
from landscape.io.surface_file import Surface
from landscape.plot.resample import resample

HIDDEN_POINT = 2  # vtkDataSetAttributes::HIDDENPOINT
TYPES = {np.dtype("<f8"): "Float64", np.dtype("uint8"): "UInt8"}


def height(values: np.ndarray, log: bool = False, zmax: float | None = None) -> np.ndarray:
    """The height ``h52vtp.py`` plots: clipped above ``zmax``, then ``ln(z + 0.1)`` if ``log``."""
    z = np.array(values, dtype=float)
    if zmax is not None and zmax > 0:
        z = np.where(z > zmax, zmax, z)
    if log:
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.log(z + 0.1)
    return z


def _vtk_order(a: np.ndarray) -> np.ndarray:
    """Meshgrid-order arrays (``[j, i]``, ``[k, j, i]``) are already VTK's point order: x fastest."""
    return np.asarray(a).ravel()


def _data_array(name: str | None, data: np.ndarray, components: int = 1) -> str:
    data = np.ascontiguousarray(data)
    data = data.astype("<f8") if data.dtype.kind == "f" else data
    raw = data.tobytes()
    header = np.array([len(raw)], dtype="<u8").tobytes()
    text = (base64.b64encode(header) + base64.b64encode(raw)).decode("ascii")
    attrs = f' Name={quoteattr(name)}' if name else ""
    return (f'<DataArray type="{TYPES[data.dtype]}"{attrs} NumberOfComponents="{components}" '
            f'format="binary">{text}</DataArray>')


def write_vtk(surface: Surface, path: str | os.PathLike, quantity: str = "loss",
              log: bool = False, zmax: float | None = None, interp: int | None = None) -> str:
    """Write the 2D ``surface`` to ``path`` (a ``.vts`` file) with ``quantity`` as the height.

    Returns the path. Non-square grids keep their shape: the grid has ``len(x) x len(y)`` points;
    ``interp=N``: the surface interpolated onto ``N x N`` points first (the original tool's
    ``h52vtp.py --interp``; :func:`landscape.plot.resample.resample`).
    """
    path = os.fspath(path)
    if surface.ndim != 2:
        raise LandscapeError(f"a VTK surface needs a 2D surface (this one is {surface.ndim}D; volumes: write_vti)")
    if interp is not None:
        surface = resample(surface, interp)
    key = surface.key(quantity)
    z = height(surface.quantity(quantity), log, zmax)
    finite = np.isfinite(z)
    if not finite.any():
        raise LandscapeError(f"{surface.label(quantity)} has no finite value to draw")
    floor = float(z[finite].min())
    xx, yy = np.meshgrid(surface.x, surface.y)
    zz = np.where(finite, z, floor)
    points = np.stack([_vtk_order(xx), _vtk_order(yy), _vtk_order(zz)], axis=1)
    ghost = np.where(_vtk_order(finite), 0, HIDDEN_POINT).astype(np.uint8)
    arrays = {name: _vtk_order(v) for name, v in surface.values.items()}
    arrays["z"] = _vtk_order(z)
    ny, nx = surface.shape
    extent = f"0 {nx - 1} 0 {ny - 1} 0 0"
    point_data = "\n".join([_data_array(n, a) for n, a in arrays.items()]
                           + [_data_array("vtkGhostType", ghost)])
    xml = (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="StructuredGrid" version="1.0" byte_order="LittleEndian" '
        'header_type="UInt64">\n'
        f'<StructuredGrid WholeExtent="{extent}">\n<Piece Extent="{extent}">\n'
        f'<PointData Scalars={quoteattr(key if key in surface.values else "z")}>\n{point_data}\n</PointData>\n'
        f'<Points>\n{_data_array(None, points, 3)}\n</Points>\n'
        '</Piece>\n</StructuredGrid>\n</VTKFile>\n'
    )
    return write_text(path, xml, "ascii")




def write_vti(surface: Surface, path: str | os.PathLike) -> str:
    """Write a volume (3 directions) as VTK image data (``.vti``) for ParaView's volume rendering:
    every quantity is a point-data scalar, NaN kept; the grid spacing is the axes' spacing."""
    path = os.fspath(path)
    if surface.ndim != 3:
        raise LandscapeError(f"VTK image data is for volumes (3 directions); this surface is {surface.ndim}D")
    nx, ny, nz = (len(c) for c in surface.coords)
    origin = " ".join(f"{c[0]:.17g}" for c in surface.coords)
    spacing = " ".join(f"{(c[-1] - c[0]) / max(1, len(c) - 1):.17g}" for c in surface.coords)
    extent = f"0 {nx - 1} 0 {ny - 1} 0 {nz - 1}"
    first = surface.key("loss") if surface.key("loss") in surface.values else next(iter(surface.values))
    arrays = "\n".join(_data_array(n, _vtk_order(v)) for n, v in surface.values.items())
    xml = (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="ImageData" version="1.0" byte_order="LittleEndian" header_type="UInt64">\n'
        f'<ImageData WholeExtent="{extent}" Origin="{origin}" Spacing="{spacing}">\n'
        f'<Piece Extent="{extent}">\n<PointData Scalars={quoteattr(first)}>\n{arrays}\n</PointData>\n'
        '<CellData>\n</CellData>\n</Piece>\n</ImageData>\n</VTKFile>\n'
    )
    return write_text(path, xml, "ascii")


__all__ = ["height", "write_vti", "write_vtk"]
