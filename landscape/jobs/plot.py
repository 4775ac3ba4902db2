"""``landscape-plot``'s job: every view of surface files that the options ask for."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from landscape.errors import LandscapeError
from landscape.io.surface_file import Surface, read_surface
from landscape.io.trajectory_file import read_trajectory, variance_of
from landscape.plot.compare import compare_figure
from landscape.plot.mpl import missing_points
from landscape.plot.path import trajectory_figure
from landscape.plot.render import KINDS, figure_prefix, render, save_figure
from landscape.plot.style import DEFAULT_STYLE, Style
from landscape.plot.vtk import write_vti, write_vtk


def record_training_(surface: Surface) -> None:
    """Give a surface file written before ``landscape-surf`` recorded its checkpoint's training
    (``checkpoint_*`` attributes) those attributes, from the checkpoint when it still exists."""
    a = surface.attrs
    if any(k.startswith("checkpoint_") for k in a) or not a.get("model") or not os.path.isfile(str(a["model"])):
        return
    from landscape.io.checkpoint import read_checkpoint  # imports torch: only for such older files

    try:
        a.update({f"checkpoint_{k}": v for k, v in read_checkpoint(str(a["model"])).summary().items()})
    except LandscapeError:
        pass


def record_variance_(surface: Surface) -> None:
    """Give a surface on PCA directions the explained variance ratios of its directions file (for
    its axis labels), when that file still exists."""
    a = surface.attrs
    if a.get("norm") != "pca" or a.get("explained_variance_ratio") or not a.get("directions_file"):
        return
    ratios = variance_of(str(a["directions_file"]))
    if ratios is not None:
        a["explained_variance_ratio"] = ",".join(f"{r:.6g}" for r in ratios)


def default_quantity(surfaces: Sequence[Surface], quantity: str) -> str:
    """``quantity``; but the default ``loss`` of files that hold no loss at all (the original
    tool's convexity files: ``max_eig`` and ``min_eig`` only) is their convexity map ``eig_ratio``."""
    if quantity != "loss" or any(s.key("loss") in s.values for s in surfaces):
        return quantity
    return "eig_ratio" if all("eig_ratio" in s.available() for s in surfaces) else quantity


def check_same_directions(surface: Surface, path: str, trajectory: str) -> None:
    """Refuse to draw the path of ``trajectory`` over a surface whose axes are other directions
    (its recorded directions checksum differs from the trajectory file's directions): the path
    would be drawn at the wrong coordinates. Files that record no directions (the original
    tool's) cannot be checked and are drawn as they are."""
    recorded = surface.inputs().get("directions")
    if not recorded:
        return
    from landscape.directions.sampling import directions_checksum  # torch: only when there is something to check

    tensors = read_trajectory(trajectory).directions
    if tensors and directions_checksum(tensors[: surface.ndim]) != recorded:
        raise LandscapeError(f"{path!r} was not computed on the directions of {trajectory!r}: its axes are other "
                             f"directions, so the path cannot be drawn on it; compute the surface on them with "
                             f"landscape-surf --directions {trajectory}")


def warn_incomplete(path: str, surface: Surface, quantity: str) -> None:
    """One warning line for a file whose run has not finished: how many points have no value yet."""
    todo = int(missing_points(surface, quantity)[0].sum())
    if todo and np.isfinite(surface.quantity(quantity)).any():  # with nothing to draw, the error says it
        warnings.warn(f"{path!r} is incomplete: {todo} of {surface.completed.size} points are not computed yet "
                      "(rerun its landscape-surf command to finish it); they are drawn hatched as not computed",
                      stacklevel=2)


@dataclass(frozen=True)
class PlotConfig:
    """What ``landscape-plot`` draws (checked when built): the ``surfaces`` (files), the figure
    prefix ``out`` (None: beside each file, or ``compare``); how every figure looks, ``style`` (a
    :class:`landscape.plot.style.Style`: the quantity, levels, limits, scale, x range, evaluated
    points, twin axes); the 2D ``kinds`` (None: all), the file ``formats`` and their ``dpi``; and
    the other views: an ``html`` page (``shared_js``: plotly.js in a file beside it, shared by the
    folder's pages), a ``vtk`` file (``interp``: interpolated onto N x N points first), a
    ``compare`` figure of all surfaces on one scale (``titles``), the optimization path of a
    ``trajectory`` file over the contours (``dir_file``: the PCA directions of an original tool's
    projection file), a mode-connecting ``curve`` (a landscape-connect curve file) on its plane.
    ``static``: the usual figures too (None: only when no other view is asked for)."""

    surfaces: tuple[str, ...]
    out: str | None = None
    style: Style = DEFAULT_STYLE
    kinds: tuple[str, ...] | None = None
    formats: tuple[str, ...] = ("png", "pdf")
    dpi: int = 150
    html: bool = False
    shared_js: bool = False
    vtk: bool = False
    interp: int | None = None
    compare: bool = False
    titles: tuple[str, ...] | None = None
    trajectory: str | None = None
    dir_file: str | None = None
    curve: str | None = None
    static: bool | None = None

    def __post_init__(self):
        if isinstance(self.surfaces, str) or not self.surfaces:
            raise LandscapeError("`surfaces` must be one or more surface files")
        if not isinstance(self.style, Style):
            raise LandscapeError(f"`style` must be a landscape.plot.Style, got {type(self.style).__name__}")
        if self.interp is not None and not self.vtk:
            raise LandscapeError("`interp` is for the VTK file: give `vtk` too")
        if self.shared_js and not self.html:
            raise LandscapeError("`shared_js` is for the HTML page: give `html` too")
        if self.dir_file and not self.trajectory:
            raise LandscapeError("`dir_file` names the PCA directions of a `trajectory`: give the trajectory too")
        if self.titles is not None and len(self.titles) != len(self.surfaces):
            raise LandscapeError(f"{len(self.titles)} titles for {len(self.surfaces)} surfaces")
        if self.out and len(self.surfaces) > 1 and not self.compare:
            raise LandscapeError("one figure prefix names the figures of one surface; give one surface file with it")


def plot_files(cfg: PlotConfig) -> list[tuple[str, list[str]]]:
    """Every view of the surface files of ``cfg`` (what ``landscape-plot`` does). Every file is
    read (and verified) before anything is drawn; an unfinished one is drawn with a warning.
    Returns ``(source, written files)`` pairs."""
    paths, out, kinds, formats, dpi = cfg.surfaces, cfg.out, cfg.kinds, cfg.formats, cfg.dpi
    html, vtk, compare, trajectory, curve = cfg.html, cfg.vtk, cfg.compare, cfg.trajectory, cfg.curve
    surfaces = [read_surface(p) for p in paths]
    style = replace(cfg.style, quantity=default_quantity(surfaces, cfg.style.quantity))
    quantity = style.quantity
    for path, s in zip(paths, surfaces, strict=True):
        if s.attrs.get("kind") == "pruning sensitivity":
            raise LandscapeError(f"{path!r} is a pruning sensitivity file, not a loss surface: landscape-prune "
                                 "--sensitivity draws its figures (layer x fraction pruned)")
        s.quantity(quantity)  # every file has the quantity, or the error lists what it has
    traj = read_trajectory(trajectory, directions=False, directions_file=cfg.dir_file) if trajectory else None
    if traj is not None:
        for path, s in zip(paths, surfaces, strict=True):
            check_same_directions(s, path, trajectory)
    if curve is not None:
        from landscape.jobs.connect import plane_path_of  # torch: only to draw a curve

        curve = plane_path_of(curve)
    for path, s in zip(paths, surfaces, strict=True):
        warn_incomplete(path, s, quantity)
        record_variance_(s)
    static = cfg.static if cfg.static is not None else not (html or vtk or compare or trajectory or curve)
    done: list[tuple[str, list[str]]] = []
    if compare:
        for s in surfaces:
            record_training_(s)
        written: list[str] = []
        ndim = surfaces[0].ndim
        for kind in ([k for k in (kinds or KINDS) if k != "3d"] or ["contour"]) if ndim == 2 else ["1d"]:
            fig = compare_figure(surfaces, style, kind if kind != "1d" else "contour",
                                 titles=list(cfg.titles) if cfg.titles else None)
            written += save_figure(fig, figure_prefix(out or "compare", surfaces[0], quantity), kind, formats, dpi)
        done.append(("compare", written))
    for path, surface in zip(paths, surfaces, strict=True):
        prefix = out if out and not compare else os.path.splitext(path)[0]
        written = []
        if static:
            written += render(surface, prefix, style, kinds, formats, dpi)
        tagged = figure_prefix(prefix, surface, quantity)  # render tags its own
        if traj is not None:
            if surface.ndim != 2:
                raise LandscapeError("an optimization path is drawn over a 2D surface; this one is "
                                     f"{surface.ndim}D")
            written += save_figure(trajectory_figure(traj, surface, style), tagged, "trajectory", formats, dpi)
        if curve is not None:
            from landscape.plot.connect import plane_figure  # torch: only to draw a curve

            if surface.ndim != 2 or surface.attrs.get("curve_sha256") != curve.curve_sha256:
                raise LandscapeError(f"{path!r} is not the plane of this curve (landscape-surf --curve computes it)")
            written += save_figure(plane_figure(surface, curve, style), tagged, "plane", formats, dpi)
        if html:
            from landscape.plot.interactive import write_html  # plotly: only for --html

            written.append(write_html(surface, f"{tagged}.html", style, trajectory=traj,
                                      plotlyjs="shared" if cfg.shared_js else "inline"))
        if vtk:
            if surface.ndim == 3:
                written.append(write_vti(surface, f"{prefix}.vti"))
            else:
                written.append(write_vtk(surface, f"{tagged}.vts", quantity, style.log, zmax=style.vmax,
                                         interp=cfg.interp))
        if written:
            done.append((path, written))
    return done
