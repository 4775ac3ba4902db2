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
from matplotlib import colormaps
from matplotlib.colors import to_hex
from plotly.subplots import make_subplots

from landscape.errors import LandscapeError, check_choice
from landscape.io.files import write_text
from landscape.io.surface_file import Surface
from landscape.io.trajectory_file import Trajectory, pc_labels
from landscape.plot.labels import axis_labels
from landscape.plot.style import DEFAULT_STYLE, Style

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


def colorscale(cmap: str, steps: int = 11) -> list:
    """A matplotlib colour map as a plotly colour scale (any of matplotlib's names works)."""
    m = colormaps[cmap]
    return [[k / (steps - 1), to_hex(m(k / (steps - 1)))] for k in range(steps)]


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


def line_figure(surface: Surface, style: Style = DEFAULT_STYLE) -> go.Figure:
    """A 1D surface: ``style.quantity`` (left axis, log-scaled with ``style.scale="log"``) and, for a
    loss, the accuracy of its split (right axis) along x."""
    quantity = style.quantity
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=surface.x, y=gaps(surface.quantity(quantity)), name=surface.label(quantity),
                             mode="lines+markers", line={"color": "blue"}), secondary_y=False)
    key = surface.key(quantity)
    acc = key[: -len("loss")] + "acc" if key.endswith("loss") else None
    if acc in surface.values:
        fig.add_trace(go.Scatter(x=surface.x, y=gaps(surface.values[acc]), name=surface.label(acc),
                                 mode="lines", line={"color": "red", "dash": "dash"}), secondary_y=True)
        fig.update_yaxes(title_text=surface.label(acc), range=[0, 100], secondary_y=True)
    fig.update_xaxes(title_text=axis_labels(surface)[0])
    fig.update_yaxes(title_text=surface.label(quantity), type="log" if style.log else "linear", secondary_y=False)
    fig.update_layout(hovermode="x unified")
    return fig


def surface_figure(surface: Surface, style: Style = DEFAULT_STYLE) -> go.Figure:
    """A rotatable 3D surface of ``style.quantity`` (its log10 with ``style.scale="log"``); a 1D
    surface gets :func:`line_figure`, a volume :func:`volume_figure`."""
    if surface.ndim == 1:
        return line_figure(surface, style)
    if surface.ndim == 3:
        return volume_figure(surface, style)
    quantity, log = style.quantity, style.log
    label = _label(surface, quantity, log)
    data, template = _hover(surface)
    names = axis_labels(surface)
    fig = go.Figure(go.Surface(
        x=surface.x, y=surface.y, z=gaps(_z(surface, quantity, log)), customdata=data,
        hovertemplate=template, colorscale=colorscale(style.cmap), colorbar={"title": {"text": label}},
    ))
    fig.update_layout(scene={"xaxis_title": names[0], "yaxis_title": names[1], "zaxis_title": label,
                             "aspectmode": "cube"},
                      margin={"l": 0, "r": 100, "t": 30, "b": 0})
    return fig


def contour_figure(surface: Surface, style: Style = DEFAULT_STYLE, trajectory: Trajectory | None = None) -> go.Figure:
    """Filled contours of ``style.quantity`` (its log10 with ``style.scale="log"``; about
    ``style.levels`` of them), with the optimization path of a
    :class:`landscape.io.trajectory_file.Trajectory` drawn over it if given; a 1D surface gets
    :func:`line_figure`."""
    if surface.ndim == 1:
        return line_figure(surface, style)
    if surface.ndim == 3:
        raise LandscapeError("contours need a 2D surface; a volume is drawn by volume_figure")
    quantity, log = style.quantity, style.log
    data, template = _hover(surface)
    fig = go.Figure(go.Contour(
        x=surface.x, y=surface.y, z=gaps(_z(surface, quantity, log)), customdata=data,
        hovertemplate=template, colorscale=colorscale(style.cmap), ncontours=style.levels,
        colorbar={"title": {"text": _label(surface, quantity, log)}},
    ))
    if trajectory is not None:
        fig.add_trace(go.Scatter(
            x=trajectory.xcoord, y=trajectory.ycoord, mode="lines+markers", name="path",
            line={"color": "red"}, text=[f"epoch {e}" for e in trajectory.epochs],
            hovertemplate="%{text}<br>x=%{x:.4g}<br>y=%{y:.4g}<extra></extra>",
        ))
    xlabel, ylabel = pc_labels(trajectory) if trajectory is not None else axis_labels(surface)[:2]
    fig.update_layout(xaxis_title=xlabel, yaxis_title=ylabel, yaxis_scaleanchor="x")
    return fig


def volume_figure(surface: Surface, style: Style = DEFAULT_STYLE, isosurfaces: int = 6) -> go.Figure:
    """A volume (three directions): nested isosurfaces of ``style.quantity`` (its log10 with
    ``style.scale="log"``) with slices through the middle of each axis; rotatable, with x, y, z and
    the value on hover."""
    if surface.ndim != 3:
        raise LandscapeError(f"a volume view needs 3 directions; this surface has {surface.ndim}")
    quantity, log = style.quantity, style.log
    v = _z(surface, quantity, log)
    finite = v[np.isfinite(v)]
    if not finite.size:
        raise LandscapeError(f"{surface.label(quantity)} has no finite value to draw")
    zz, yy, xx = np.meshgrid(surface.z, surface.y, surface.x, indexing="ij")
    fill = float(finite.max())  # a gap cannot be drawn in a volume: it becomes the top of the scale
    lo, hi = float(np.quantile(finite, 0.02)), float(np.quantile(finite, 0.9))
    label = _label(surface, quantity, log)
    names = axis_labels(surface)
    fig = go.Figure(go.Isosurface(
        x=xx.ravel(), y=yy.ravel(), z=zz.ravel(), value=np.where(np.isfinite(v), v, fill).ravel(),
        isomin=lo, isomax=hi, surface_count=isosurfaces, opacity=0.35, colorscale=colorscale(style.cmap),
        caps={"x_show": False, "y_show": False, "z_show": False},
        slices={"x": {"show": True, "locations": [float(np.median(surface.x))]},
                "y": {"show": True, "locations": [float(np.median(surface.y))]},
                "z": {"show": True, "locations": [float(np.median(surface.z))]}},
        colorbar={"title": {"text": label}},
        hovertemplate="x=%{x:.4g}<br>y=%{y:.4g}<br>z=%{z:.4g}<br>" + label + "=%{value:.5g}<extra></extra>",
    ))
    fig.update_layout(scene={"xaxis_title": names[0], "yaxis_title": names[1], "zaxis_title": names[2],
                             "aspectmode": "cube"},
                      margin={"l": 0, "r": 100, "t": 30, "b": 0})
    return fig


PLOTLYJS = ("inline", "shared")


def shared_script(folder: str) -> str:
    """The file name of plotly.js shared by the pages of ``folder`` (``plotly-VERSION.min.js``),
    written there once (again only when it is not this plotly's); returns the name. The version
    in the name keeps pages written by another plotly working."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    name = f"plotly-{get_plotlyjs_version()}.min.js"
    path = os.path.join(folder or ".", name)
    script = get_plotlyjs()
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == script:
                return name
    except (OSError, UnicodeDecodeError):
        pass
    write_text(path, script, "utf-8")
    return name


def write_html(surface: Surface, path: str | os.PathLike, style: Style = DEFAULT_STYLE, title: str | None = None,
               trajectory: Trajectory | None = None, plotlyjs: str = "inline") -> str:
    """Write one HTML page that works offline and fits its window: 3D surface and contours for a 2D
    surface, the curves for a 1D one, isosurfaces and slices for a volume. ``plotlyjs``:
    ``inline`` (plotly.js, 4.8 MB, inside the page: one file that travels alone) or ``shared``
    (the page loads ``plotly-VERSION.min.js`` beside it, written once for every page of the
    folder: a few hundred kB a page; the folder travels whole). No CDN either way.
    Returns the path."""
    check_choice("plotlyjs", plotlyjs, PLOTLYJS)
    path = os.fspath(path)
    if surface.ndim == 1:
        figures = [line_figure(surface, style)]
    elif surface.ndim == 3:
        figures = [volume_figure(surface, style)]
    else:
        figures = [surface_figure(surface, style), contour_figure(surface, style, trajectory=trajectory)]
    for fig in figures:
        fig.update_layout(autosize=True)
    script: bool | str = True
    if plotlyjs == "shared":
        script = shared_script(os.path.dirname(os.path.abspath(path)))
    # plotly.js goes once, with the first figure; each figure takes the page's width and most of the
    # window's height, whatever its size
    divs = [f.to_html(full_html=False, include_plotlyjs=script if k == 0 else False, default_width="100%",
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

    def __init__(self, surface: Surface, style: Style = DEFAULT_STYLE, kind: str = "surface",
                 trajectory: Trajectory | None = None):
        self.surface, self.style, self.kind, self.trajectory = surface, style, kind, trajectory
        check_choice("kind", kind, ("surface", "contour"))
        self.figure = (contour_figure(surface, style, trajectory=trajectory) if kind == "contour"
                       else surface_figure(surface, style))

    def png(self) -> bytes:
        """The static picture, drawn by matplotlib."""
        from matplotlib.figure import Figure

        from landscape.plot import mpl  # matplotlib: only for the static picture

        s, style = self.surface, self.style
        if s.ndim == 1:
            fig = Figure(figsize=(6, 4), layout="constrained")
            mpl.plot_1d(fig.subplots(), s, style)
        elif s.ndim == 2 and self.kind == "surface":
            fig = Figure(figsize=(6, 5), layout="constrained")
            mpl.surface3d(fig.add_subplot(projection="3d"), s, style)
        elif s.ndim == 2:
            from landscape.plot.path import trajectory as draw_path

            fig = Figure(figsize=(6, 5), layout="constrained")
            ax = fig.subplots()
            sc = mpl.surface_scale(s, style)
            mpl.colorbar(fig, mpl.contourf(ax, s, style, levels=sc), ax, s.label(style.quantity), sc)
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


__all__ = ["PLOTLYJS", "NotebookView", "contour_figure", "gaps", "line_figure", "shared_script", "surface_figure",
           "volume_figure", "write_html"]
