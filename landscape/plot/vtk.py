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
from landscape.files import write_text
from landscape.surface import Surface

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
    """``[i, j]`` arrays to VTK's point order, x varying fastest."""
    return np.asarray(a).ravel(order="F")


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
              log: bool = False, zmax: float | None = None) -> str:
    """Write the 2D ``surface`` to ``path`` (a ``.vts`` file) with ``quantity`` as the height.

    Returns the path. Non-square grids keep their shape: the grid has ``len(x) x len(y)`` points.
    """
    path = os.fspath(path)
    if surface.ndim != 2:
        raise LandscapeError("a VTK surface needs a 2D surface (this one is 1D)")
    key = f"{surface.split}_{quantity}"
    if key not in surface.values:
        raise LandscapeError(f"the surface has no {key!r} (it has {', '.join(surface.values)})")
    z = height(surface.values[key], log, zmax)
    finite = np.isfinite(z)
    floor = float(z[finite].min()) if finite.any() else 0.0
    xx, yy = np.meshgrid(surface.x, surface.y, indexing="ij")
    zz = np.where(finite, z, floor)
    points = np.stack([_vtk_order(xx), _vtk_order(yy), _vtk_order(zz)], axis=1)
    ghost = np.where(_vtk_order(finite), 0, HIDDEN_POINT).astype(np.uint8)
    arrays = {name: _vtk_order(v) for name, v in surface.values.items()}
    arrays["z"] = _vtk_order(z)
    nx, ny = surface.shape
    extent = f"0 {nx - 1} 0 {ny - 1} 0 0"
    point_data = "\n".join([_data_array(n, a) for n, a in arrays.items()]
                           + [_data_array("vtkGhostType", ghost)])
    xml = (
        '<?xml version="1.0"?>\n'
        '<VTKFile type="StructuredGrid" version="1.0" byte_order="LittleEndian" '
        'header_type="UInt64">\n'
        f'<StructuredGrid WholeExtent="{extent}">\n<Piece Extent="{extent}">\n'
        f'<PointData Scalars={quoteattr(key)}>\n{point_data}\n</PointData>\n'
        f'<Points>\n{_data_array(None, points, 3)}\n</Points>\n'
        '</Piece>\n</StructuredGrid>\n</VTKFile>\n'
    )
    return write_text(path, xml, "ascii")


__all__ = ["height", "write_vtk"]
