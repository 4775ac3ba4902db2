"""Interactive plotly views of a surface, and one self-contained HTML page of them.

Plotly wants rows along y, so the ``[i, j] = (x[i], y[j])`` arrays are transposed. Non-finite
points (and, on a log scale, non-positive ones) become ``None``: gaps in the plot. Hovering
shows x, y, the loss and the accuracy whatever the colour shows.
"""

from __future__ import annotations

import html
import os

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.errors import LandscapeError
from landscape.files import write_text
from landscape.surface import Surface
from landscape.trajectory import Trajectory, pc_labels

HOVER_2D = ("x=%{x:.4g}<br>y=%{y:.4g}<br>loss=%{customdata[0]:.5g}"
            "<br>accuracy=%{customdata[1]:.2f} %<extra></extra>")


def gaps(values: np.ndarray) -> np.ndarray:
    """An object array: the finite values as floats, ``None`` elsewhere (plotly's gaps)."""
    v = np.asarray(values, dtype=float)
    out = v.astype(object)
    out[~np.isfinite(v)] = None
    return out


def _z(surface: Surface, quantity: str, log: bool) -> np.ndarray:
    key = f"{surface.split}_{quantity}"
    if key not in surface.values:
        raise LandscapeError(f"the surface has no {key!r} (it has {', '.join(surface.values)})")
    z = np.array(surface.values[key], dtype=float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(z > 0, np.log10(z), np.nan)
    return z


def _label(quantity: str, log: bool) -> str:
    name = "accuracy (%)" if quantity == "acc" else quantity
    return f"log10 {name}" if log else name


def _hover_data(surface: Surface) -> np.ndarray:
    """(ny, nx, 2): loss and accuracy at every point, for the hover text."""
    return np.stack([gaps(surface.loss.T), gaps(surface.acc.T)], axis=-1)


def line_figure(surface: Surface, log: bool = False) -> go.Figure:
    """A 1D surface: loss (left axis, log-scaled if ``log``) and accuracy (right axis) along x."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=surface.x, y=gaps(surface.loss), name="loss", mode="lines+markers",
                             line={"color": "blue"}), secondary_y=False)
    fig.add_trace(go.Scatter(x=surface.x, y=gaps(surface.acc), name="accuracy (%)",
                             mode="lines", line={"color": "red", "dash": "dash"}), secondary_y=True)
    fig.update_xaxes(title_text="x")
    fig.update_yaxes(title_text="loss", type="log" if log else "linear", secondary_y=False)
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 100], secondary_y=True)
    fig.update_layout(hovermode="x unified")
    return fig


def surface_figure(surface: Surface, quantity: str = "loss", log: bool = False,
                   colorscale: str = "Viridis") -> go.Figure:
    """A rotatable 3D surface of ``quantity`` (``log``: its log10); a 1D surface gets
    :func:`line_figure`."""
    if surface.ndim == 1:
        return line_figure(surface, log)
    label = _label(quantity, log)
    fig = go.Figure(go.Surface(
        x=surface.x, y=surface.y, z=gaps(_z(surface, quantity, log).T),
        customdata=_hover_data(surface), hovertemplate=HOVER_2D, colorscale=colorscale,
        colorbar={"title": {"text": label}},
    ))
    fig.update_layout(scene={"xaxis_title": "x", "yaxis_title": "y", "zaxis_title": label},
                      margin={"l": 0, "r": 0, "t": 30, "b": 0})
    return fig


def contour_figure(surface: Surface, quantity: str = "loss", log: bool = False, levels: int = 30,
                   colorscale: str = "Viridis", trajectory: Trajectory | None = None) -> go.Figure:
    """Filled contours of ``quantity`` (``log``: its log10), with the optimization path of a
    :class:`landscape.trajectory.Trajectory` drawn over it if given; a 1D surface gets
    :func:`line_figure`."""
    if surface.ndim == 1:
        return line_figure(surface, log)
    fig = go.Figure(go.Contour(
        x=surface.x, y=surface.y, z=gaps(_z(surface, quantity, log).T),
        customdata=_hover_data(surface), hovertemplate=HOVER_2D, colorscale=colorscale,
        ncontours=levels, colorbar={"title": {"text": _label(quantity, log)}},
    ))
    if trajectory is not None:
        fig.add_trace(go.Scatter(
            x=trajectory.xcoord, y=trajectory.ycoord, mode="lines+markers", name="path",
            line={"color": "red"}, text=[f"epoch {e}" for e in trajectory.epochs],
            hovertemplate="%{text}<br>x=%{x:.4g}<br>y=%{y:.4g}<extra></extra>",
        ))
    xlabel, ylabel = pc_labels(trajectory) if trajectory is not None else ("x", "y")
    fig.update_layout(xaxis_title=xlabel, yaxis_title=ylabel, yaxis_scaleanchor="x")
    return fig


def write_html(surface: Surface, path: str | os.PathLike, quantity: str = "loss",
               log: bool = False, title: str | None = None,
               trajectory: Trajectory | None = None) -> str:
    """Write one HTML page that works offline (plotly.js inside): 3D surface and contours for a
    2D surface, loss and accuracy for a 1D one. Returns the path."""
    path = os.fspath(path)
    if surface.ndim == 1:
        figures = [line_figure(surface, log)]
    else:
        figures = [surface_figure(surface, quantity, log),
                   contour_figure(surface, quantity, log, trajectory=trajectory)]
    for fig in figures:
        fig.update_layout(height=600)
    # plotly.js goes inline once, with the first figure; no CDN, so the page works offline
    divs = [f.to_html(full_html=False, include_plotlyjs=(k == 0)) for k, f in enumerate(figures)]
    heading = html.escape(title if title is not None else surface.title())
    page = (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{heading or 'loss surface'}</title>\n</head>\n<body>\n"
        f"<h3 style=\"font-family:sans-serif\">{heading}</h3>\n" + "\n".join(divs)
        + "\n</body>\n</html>\n"
    )
    return write_text(path, page, "utf-8")


__all__ = ["contour_figure", "gaps", "line_figure", "surface_figure", "write_html"]
