"""Interactive plotly views of a surface, one self-contained HTML page of them, and a notebook view
that also renders where JavaScript does not run.

Arrays are in meshgrid order (rows along y), as plotly wants them. Non-finite points (and, on a
log scale, non-positive ones) become ``None``: gaps in the plot. Hovering shows x, y and every
stored quantity at the point, whatever the colour shows. Volumes (three directions) get slices
through the middle of each axis and an isosurface.
"""

from __future__ import annotations

import base64
import html
import io
import os

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.errors import LandscapeError
from landscape.io.files import write_text
from landscape.io.surface_file import Surface
from landscape.io.trajectory_file import Trajectory, pc_labels

HOVER_LIMIT = 4  # quantities shown on hover


def gaps(values: np.ndarray) -> np.ndarray:
    """An object array: the finite values as floats, ``None`` elsewhere (plotly's gaps)."""
    v = np.asarray(values, dtype=float)
    out = v.astype(object)
    out[~np.isfinite(v)] = None
    return out


def _z(surface: Surface, quantity: str, log: bool) -> np.ndarray:
    z = np.array(surface.quantity(quantity), dtype=float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(z > 0, np.log10(z), np.nan)
    return z


def _label(surface: Surface, quantity: str, log: bool) -> str:
    name = surface.label(quantity)
    return f"log10 {name}" if log else name


def _hover(surface: Surface) -> tuple[np.ndarray, str]:
    """``customdata`` (every shown quantity at every point) and the hover template over it."""
    names = list(surface.values)[:HOVER_LIMIT]
    data = np.stack([gaps(surface.values[n]) for n in names], axis=-1)
    axes = ["x=%{x:.4g}", "y=%{y:.4g}", "z=%{z:.4g}"][:surface.ndim] if surface.ndim < 3 else []
    fmt = [f"{surface.label(n)}=%{{customdata[{k}]:.5g}}" for k, n in enumerate(names)]
    return data, "<br>".join(axes[:2] + fmt) + "<extra></extra>"


def line_figure(surface: Surface, log: bool = False, quantity: str = "loss") -> go.Figure:
    """A 1D surface: the quantity (left axis, log-scaled if ``log``) and, for a loss, the accuracy
    of its split (right axis) along x."""
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=surface.x, y=gaps(surface.quantity(quantity)), name=surface.label(quantity),
                             mode="lines+markers", line={"color": "blue"}), secondary_y=False)
    key = surface.key(quantity)
    acc = key[: -len("loss")] + "acc" if key.endswith("loss") else None
    if acc in surface.values:
        fig.add_trace(go.Scatter(x=surface.x, y=gaps(surface.values[acc]), name=surface.label(acc),
                                 mode="lines", line={"color": "red", "dash": "dash"}), secondary_y=True)
        fig.update_yaxes(title_text=surface.label(acc), range=[0, 100], secondary_y=True)
    fig.update_xaxes(title_text="x")
    fig.update_yaxes(title_text=surface.label(quantity), type="log" if log else "linear", secondary_y=False)
    fig.update_layout(hovermode="x unified")
    return fig


def surface_figure(surface: Surface, quantity: str = "loss", log: bool = False,
                   colorscale: str = "Viridis") -> go.Figure:
    """A rotatable 3D surface of ``quantity`` (``log``: its log10); a 1D surface gets
    :func:`line_figure`, a volume :func:`volume_figure`."""
    if surface.ndim == 1:
        return line_figure(surface, log, quantity)
    if surface.ndim == 3:
        return volume_figure(surface, quantity, log, colorscale)
    label = _label(surface, quantity, log)
    data, template = _hover(surface)
    fig = go.Figure(go.Surface(
        x=surface.x, y=surface.y, z=gaps(_z(surface, quantity, log)), customdata=data,
        hovertemplate=template, colorscale=colorscale, colorbar={"title": {"text": label}},
    ))
    fig.update_layout(scene={"xaxis_title": "x", "yaxis_title": "y", "zaxis_title": label,
                             "aspectmode": "cube"},
                      margin={"l": 0, "r": 100, "t": 30, "b": 0})
    return fig


def contour_figure(surface: Surface, quantity: str = "loss", log: bool = False, levels: int = 30,
                   colorscale: str = "Viridis", trajectory: Trajectory | None = None) -> go.Figure:
    """Filled contours of ``quantity`` (``log``: its log10), with the optimization path of a
    :class:`landscape.directions.pca.Trajectory` drawn over it if given; a 1D surface gets
    :func:`line_figure`."""
    if surface.ndim == 1:
        return line_figure(surface, log, quantity)
    if surface.ndim == 3:
        raise LandscapeError("contours need a 2D surface; a volume is drawn by volume_figure")
    data, template = _hover(surface)
    fig = go.Figure(go.Contour(
        x=surface.x, y=surface.y, z=gaps(_z(surface, quantity, log)), customdata=data,
        hovertemplate=template, colorscale=colorscale, ncontours=levels,
        colorbar={"title": {"text": _label(surface, quantity, log)}},
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


def volume_figure(surface: Surface, quantity: str = "loss", log: bool = False, colorscale: str = "Viridis",
                  isosurfaces: int = 6) -> go.Figure:
    """A volume (three directions): nested isosurfaces of ``quantity`` (``log``: its log10) with
    slices through the middle of each axis; rotatable, with x, y, z and the value on hover."""
    if surface.ndim != 3:
        raise LandscapeError(f"a volume view needs 3 directions; this surface has {surface.ndim}")
    v = _z(surface, quantity, log)
    finite = v[np.isfinite(v)]
    if not finite.size:
        raise LandscapeError(f"{surface.label(quantity)} has no finite value to draw")
    zz, yy, xx = np.meshgrid(surface.z, surface.y, surface.x, indexing="ij")
    fill = float(finite.max())  # a gap cannot be drawn in a volume: it becomes the top of the scale
    lo, hi = float(np.quantile(finite, 0.02)), float(np.quantile(finite, 0.9))
    label = _label(surface, quantity, log)
    fig = go.Figure(go.Isosurface(
        x=xx.ravel(), y=yy.ravel(), z=zz.ravel(), value=np.where(np.isfinite(v), v, fill).ravel(),
        isomin=lo, isomax=hi, surface_count=isosurfaces, opacity=0.35, colorscale=colorscale,
        caps={"x_show": False, "y_show": False, "z_show": False},
        slices={"x": {"show": True, "locations": [float(np.median(surface.x))]},
                "y": {"show": True, "locations": [float(np.median(surface.y))]},
                "z": {"show": True, "locations": [float(np.median(surface.z))]}},
        colorbar={"title": {"text": label}},
        hovertemplate="x=%{x:.4g}<br>y=%{y:.4g}<br>z=%{z:.4g}<br>" + label + "=%{value:.5g}<extra></extra>",
    ))
    fig.update_layout(scene={"xaxis_title": "x", "yaxis_title": "y", "zaxis_title": "z", "aspectmode": "cube"},
                      margin={"l": 0, "r": 100, "t": 30, "b": 0})
    return fig


def write_html(surface: Surface, path: str | os.PathLike, quantity: str = "loss",
               log: bool = False, title: str | None = None,
               trajectory: Trajectory | None = None) -> str:
    """Write one HTML page that works offline (plotly.js inside) and fits its window: 3D surface and
    contours for a 2D surface, the curves for a 1D one, isosurfaces and slices for a volume.
    Returns the path."""
    path = os.fspath(path)
    if surface.ndim == 1:
        figures = [line_figure(surface, log, quantity)]
    elif surface.ndim == 3:
        figures = [volume_figure(surface, quantity, log)]
    else:
        figures = [surface_figure(surface, quantity, log),
                   contour_figure(surface, quantity, log, trajectory=trajectory)]
    for fig in figures:
        fig.update_layout(autosize=True)
    # plotly.js goes inline once, with the first figure; no CDN, so the page works offline.
    # Each figure takes the page's width and most of the window's height, whatever its size.
    divs = [f.to_html(full_html=False, include_plotlyjs=(k == 0), default_width="100%",
                      default_height="85vh", config={"responsive": True}) for k, f in enumerate(figures)]
    heading = html.escape(title if title is not None else surface.title())
    page = (
        "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{heading or 'loss surface'}</title>\n"
        "<style>html, body {margin: 0; padding: 0; overflow-x: hidden;} "
        "h3 {font-family: sans-serif; margin: 8px 12px;} .plotly-graph-div {max-width: 100vw;}</style>\n"
        "</head>\n<body>\n"
        f"<h3>{heading}</h3>\n" + "\n".join(divs) + "\n</body>\n</html>\n"
    )
    return write_text(path, page, "utf-8")


class NotebookView:
    """A plotly figure for notebooks with a static PNG beside it, so that renderers without
    JavaScript (GitHub, nbconvert to PDF, some viewers) show the matplotlib picture instead of a
    blank cell. ``NotebookView(surface)`` shows the 3D surface, ``kind="contour"`` the contours."""

    def __init__(self, surface: Surface, quantity: str = "loss", kind: str = "surface", log: bool = False,
                 trajectory: Trajectory | None = None):
        self.surface, self.quantity, self.kind, self.log, self.trajectory = surface, quantity, kind, log, trajectory
        make = {"surface": surface_figure, "contour": contour_figure}
        if kind not in make:
            raise LandscapeError(f"kind must be surface or contour, got {kind!r}")
        self.figure = (contour_figure(surface, quantity, log, trajectory=trajectory) if kind == "contour"
                       else surface_figure(surface, quantity, log))

    def png(self) -> bytes:
        """The static picture, drawn by matplotlib."""
        from matplotlib.figure import Figure

        from landscape.plot import mpl  # matplotlib: only for the static picture

        s = self.surface
        if s.ndim == 1:
            fig = Figure(figsize=(6, 4), layout="constrained")
            mpl.plot_1d(fig.subplots(), s, self.quantity, scale="log" if self.log else "linear")
        elif s.ndim == 2 and self.kind == "surface":
            fig = Figure(figsize=(6, 5), layout="constrained")
            mpl.surface3d(fig.add_subplot(projection="3d"), s, self.quantity, scale="log" if self.log else "auto")
        elif s.ndim == 2:
            from landscape.plot.path import trajectory as draw_path

            fig = Figure(figsize=(6, 5), layout="constrained")
            ax = fig.subplots()
            sc = mpl.surface_scale(s, self.quantity, scale="log" if self.log else "auto")
            mpl.colorbar(fig, mpl.contourf(ax, s, self.quantity, levels=sc), ax, s.label(self.quantity), sc)
            if self.trajectory is not None:
                draw_path(ax, self.trajectory)
        else:
            raise LandscapeError("no static picture for a volume")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=90)
        return buf.getvalue()

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        bundle = self.figure._repr_mimebundle_(include, exclude) or {}
        bundle = dict(bundle)
        bundle["image/png"] = base64.b64encode(self.png()).decode("ascii")
        return bundle


__all__ = ["NotebookView", "contour_figure", "gaps", "line_figure", "surface_figure", "volume_figure", "write_html"]
