"""``landscape-plot``'s job: every view of surface files that the options ask for."""

from __future__ import annotations

import os
from collections.abc import Sequence

from landscape.errors import LandscapeError
from landscape.plot.mpl import MAX_LEVELS
from landscape.plot.render import KINDS, render, save_figure
from landscape.surface_file import Surface, read_surface
from landscape.trajectory_file import read_trajectory


def record_training_(surface: Surface) -> None:
    """Give a surface file written before ``landscape-surf`` recorded its checkpoint's training
    (``checkpoint_*`` attributes) those attributes, from the checkpoint when it still exists."""
    a = surface.attrs
    if any(k.startswith("checkpoint_") for k in a) or not a.get("model") or not os.path.isfile(str(a["model"])):
        return
    from landscape.checkpoint import read_checkpoint  # imports torch: only for such older files

    try:
        a.update({f"checkpoint_{k}": v for k, v in read_checkpoint(str(a["model"])).summary().items()})
    except LandscapeError:
        pass


def plot_files(paths: Sequence[str], out: str | None = None, *, kinds: Sequence[str] | None = None,
               formats: Sequence[str] = ("png", "pdf"), levels: int = 30, vmin: float | None = None,
               vmax: float | None = None, scale: str = "auto", step: float | None = None,
               xlim: tuple[float, float] | None = None, dpi: int = 150, quantity: str = "loss",
               html: bool = False, vtk: bool = False, compare: bool = False, twin: bool = False,
               trajectory: str | None = None, static: bool | None = None,
               titles: Sequence[str] | None = None, interp: int | None = None,
               dir_file: str | None = None) -> list[tuple[str, list[str]]]:
    """Every view of the surface files ``paths`` that the options ask for (what ``landscape-plot``
    does): the static figures, an HTML page, a VTK file, a comparison of all of them on one scale,
    the optimization path over the contours. Every file is read (and verified) before anything is
    drawn. ``interp``: the VTK file's grid interpolated to N x N; ``dir_file``: the PCA directions
    file of a projection file given as ``trajectory`` (its explained variance). Returns
    ``(source, written files)`` pairs."""
    if interp is not None and not vtk:
        raise LandscapeError("`interp` is for the VTK file: give `vtk` too")
    if dir_file and not trajectory:
        raise LandscapeError("`dir_file` names the PCA directions of a `trajectory`: give the trajectory too")
    if not 2 <= levels <= MAX_LEVELS:
        raise LandscapeError(f"the number of contour levels must be 2 to {MAX_LEVELS}, got {levels}")
    if titles is not None and len(titles) != len(paths):
        raise LandscapeError(f"{len(titles)} titles for {len(paths)} surfaces")
    if out and len(paths) > 1 and not compare:
        raise LandscapeError("one figure prefix names the figures of one surface; give one surface file with it")
    surfaces = [read_surface(p) for p in paths]
    for s in surfaces:
        s.quantity(quantity)  # every file has the quantity, or the error lists what it has
    traj = read_trajectory(trajectory, directions=False, directions_file=dir_file) if trajectory else None
    static = static if static is not None else not (html or vtk or compare or trajectory)
    done: list[tuple[str, list[str]]] = []
    if compare:
        from landscape.plot.compare import compare_figure

        for s in surfaces:
            record_training_(s)
        written: list[str] = []
        ndim = surfaces[0].ndim
        for kind in ([k for k in (kinds or KINDS) if k != "3d"] or ["contour"]) if ndim == 2 else ["1d"]:
            fig = compare_figure(surfaces, quantity, kind if kind != "1d" else "contour", levels=levels, vmin=vmin,
                                 vmax=vmax, scale=scale, step=step, twin=twin, xlim=xlim, titles=titles)
            written += save_figure(fig, out or "compare", kind, formats, dpi)
        done.append(("compare", written))
    for path, surface in zip(paths, surfaces, strict=True):
        prefix = out if out and not compare else os.path.splitext(path)[0]
        written = []
        if static:
            written += render(surface, prefix, formats, levels, vmin, vmax, scale, kinds, quantity, dpi, step, xlim)
        if traj is not None:
            from landscape.plot.path import trajectory_figure

            if surface.ndim != 2:
                raise LandscapeError("an optimization path is drawn over a 2D surface; this one is "
                                     f"{surface.ndim}D")
            fig = trajectory_figure(traj, surface, quantity, levels=levels, scale=scale, vmin=vmin, vmax=vmax,
                                    step=step)
            written += save_figure(fig, prefix, "trajectory", formats, dpi)
        if html:
            from landscape.plot.interactive import write_html

            written.append(write_html(surface, f"{prefix}.html", quantity, scale == "log", trajectory=traj))
        if vtk:
            from landscape.plot.vtk import write_vti, write_vtk

            if surface.ndim == 3:
                written.append(write_vti(surface, f"{prefix}.vti"))
            else:
                written.append(write_vtk(surface, f"{prefix}.vts", quantity, scale == "log", zmax=vmax,
                                         interp=interp))
        if written:
            done.append((path, written))
    return done
