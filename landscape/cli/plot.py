"""``landscape-plot``: draw the figures of surface files.

    landscape-plot surface.h5                  # 2D: contour, filled contour, heat map, 3D (PNG, PDF)
    landscape-plot interp.h5 --log             # 1D: loss and accuracy, log-scale loss
    landscape-plot surface.h5 --kinds contour --levels 40 --vmax 5 --formats png
    landscape-plot surface.h5 --html           # interactive plotly page, one offline file
    landscape-plot surface.h5 --vtk            # .vts structured grid for ParaView
    landscape-plot a.h5 b.h5 c.h5 --compare    # side by side on one colour scale
    landscape-plot surf.h5 --trajectory pca.h5 # the optimization path over the contours
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, positive, run_cli

PROG = "landscape-plot"
KINDS = ("contour", "contourf", "heatmap", "3d")
FORMATS = ("png", "pdf", "svg")


def _csv(choices: Sequence[str]):
    def parse(text: str) -> list[str]:
        items = [t for t in text.replace(" ", "").split(",") if t]
        bad = [t for t in items if t not in choices]
        if bad or not items:
            raise ValueError(text)
        return items

    parse.__name__ = f"comma-separated list of {', '.join(choices)}"
    return parse


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    p = Parser(prog=PROG, description="Draw the figures of one or more surface files "
               "(written by landscape-surf, or by the original loss-landscape tool).")
    p.add_argument("surfaces", nargs="+", metavar="SURFACE.h5")
    p.add_argument("--quantity", choices=["loss", "acc"], default="loss")
    p.add_argument("--kinds", type=_csv(KINDS), default=list(KINDS),
                   help="2D figures to draw (default all: contour,contourf,heatmap,3d)")
    p.add_argument("--formats", type=_csv(FORMATS), default=["png", "pdf"],
                   help="file formats (default png,pdf)")
    p.add_argument("--levels", type=positive, default=30, help="contour levels (default 30)")
    p.add_argument("--vmin", type=float, default=None, help="lower end of the colour/level range")
    p.add_argument("--vmax", type=float, default=None,
                   help="upper end of the colour/level range (values above are clipped in 3D)")
    p.add_argument("--log", action="store_true", help="log-scale loss axis / colours")
    p.add_argument("--dpi", type=positive, default=150, help="resolution of PNG files (default 150)")
    p.add_argument("--out", default=None, metavar="PREFIX",
                   help="prefix of the figure files (default: the surface file without .h5, or "
                   "'compare' with --compare); with several surfaces, figures go beside each file")
    v = p.add_argument_group("other views (when any is given, the static figures are drawn only "
                             "with --static)")
    v.add_argument("--html", action="store_true",
                   help="PREFIX.html: interactive 3D surface and contours (plotly, works offline)")
    v.add_argument("--vtk", action="store_true",
                   help="PREFIX.vts for ParaView (height clipped at --vmax, ln(z+0.1) with --log)")
    v.add_argument("--compare", action="store_true",
                   help="all surfaces in one figure, one colour scale: PREFIX_{kind}.{format}")
    v.add_argument("--trajectory", metavar="PCA.h5",
                   help="draw the optimization path of a landscape-traj file over the contours "
                   "(PREFIX_trajectory.{format}; also on the --html page)")
    v.add_argument("--static", action="store_true", help="also the usual static figures")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-plot``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        from landscape.errors import LandscapeError
        from landscape.surface import read_surface
        from landscape.trajectory import read_trajectory

        ns = build_parser().parse_args(argv)
        if ns.levels < 2:
            raise LandscapeError(f"--levels must be at least 2, got {ns.levels}")
        if ns.vmin is not None and ns.vmax is not None and ns.vmax <= ns.vmin:
            raise LandscapeError(f"--vmax ({ns.vmax}) must be above --vmin ({ns.vmin})")
        if ns.out and len(ns.surfaces) > 1 and not ns.compare:
            raise LandscapeError("--out names one figure prefix; give one surface file with it")
        surfaces = [read_surface(path) for path in ns.surfaces]  # all readable before drawing
        traj = read_trajectory(ns.trajectory) if ns.trajectory else None
        if ns.compare:
            kinds = [k for k in ns.kinds if k != "3d"] or ["contour"]
            paths = draw_comparison(surfaces, ns.out or "compare", kinds, ns)
            print(f"{PROG}: {', '.join(paths)}")
        static = ns.static or not (ns.html or ns.vtk or ns.compare or ns.trajectory)
        for path, surface in zip(ns.surfaces, surfaces, strict=True):
            prefix = ns.out if ns.out and not ns.compare else os.path.splitext(path)[0]
            paths = draw_views(surface, prefix, ns, traj, static)
            if paths:
                print(f"{PROG}: {path}: {', '.join(paths)}")
        return 0

    return run_cli(PROG, body)


def draw_views(surface, prefix: str, ns, traj, static: bool) -> list[str]:
    """The files of one surface that the options ask for; returns their paths."""
    from landscape.errors import LandscapeError
    from landscape.plot.render import render, save_figure

    paths: list[str] = []
    if static:
        paths += render(surface, prefix, formats=ns.formats, levels=ns.levels, vmin=ns.vmin,
                        vmax=ns.vmax, log=ns.log, kinds=ns.kinds, quantity=ns.quantity, dpi=ns.dpi)
    if ns.trajectory:
        from landscape.plot.path import trajectory_figure

        if surface.ndim != 2:
            raise LandscapeError("--trajectory needs a 2D surface")
        fig = trajectory_figure(traj, surface, ns.quantity, levels=ns.levels, log=ns.log,
                                vmin=ns.vmin, vmax=ns.vmax)
        paths += save_figure(fig, prefix, "trajectory", ns.formats, ns.dpi)
    if ns.html:
        try:
            from landscape.plot.interactive import write_html
        except ImportError:
            raise LandscapeError("--html needs plotly: pip install plotly") from None
        paths.append(write_html(surface, f"{prefix}.html", ns.quantity, ns.log, trajectory=traj))
    if ns.vtk:
        from landscape.plot.vtk import write_vtk

        paths.append(write_vtk(surface, f"{prefix}.vts", ns.quantity, ns.log, zmax=ns.vmax))
    return paths


def draw_comparison(surfaces, prefix: str, kinds: Sequence[str], ns) -> list[str]:
    """One figure per kind with every surface on one colour scale; returns the file paths."""
    from landscape.plot.compare import compare_figure
    from landscape.plot.render import save_figure

    paths: list[str] = []
    for kind in kinds if surfaces[0].ndim == 2 else ["1d"]:
        fig = compare_figure(surfaces, ns.quantity, kind if kind != "1d" else "contour",
                             levels=ns.levels, vmin=ns.vmin, vmax=ns.vmax, log=ns.log)
        paths += save_figure(fig, prefix, kind, ns.formats, ns.dpi)
    return paths


if __name__ == "__main__":
    sys.exit(main())
