"""``landscape-plot``: draw the figures of surface files.

    landscape-plot surface.h5                  # 2D: contour, filled contour, heat map, 3D (PNG, PDF)
    landscape-plot interp.h5 --log             # 1D: loss and accuracy, log-scale loss
    landscape-plot surface.h5 --kinds contour --levels 40 --vmax 5 --formats png
    landscape-plot surface.h5 --quantity eig_ratio   # any stored quantity, or |min_eig/max_eig|
    landscape-plot surface.h5 --html           # interactive plotly page, one offline file
    landscape-plot surface.h5 --vtk            # .vts (2D) or .vti (volume) for ParaView
    landscape-plot surface.h5 --vtk --interp 200   # ... interpolated onto 200 x 200 points
    landscape-plot a.h5 b.h5 c.h5 --compare    # side by side on one colour scale
    landscape-plot surf.h5 --trajectory pca.h5 # the optimization path over the contours
    landscape-plot plane.h5 --path curve.pt    # a mode-connecting curve on its plane (landscape-connect)
    landscape-plot surf.h5 --trajectory D.h5_proj_cos.h5 --dir-file D.h5   # the original's files
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, finite_float, positive, run_cli
from landscape.jobs.plot import PlotConfig, plot_files
from landscape.plot.style import Style

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


def _range(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition(":")
    a, b = float(lo), float(hi)
    if not a < b:
        raise ValueError(text)
    return a, b


_range.__name__ = "MIN:MAX range"


def build_parser() -> Parser:
    """The argument parser (exposed for documentation and tests)."""
    p = Parser(prog=PROG, description="Draw the figures of one or more surface files "
               "(written by landscape-surf, or by the original loss-landscape tool).")
    p.add_argument("surfaces", nargs="+", metavar="SURFACE.h5")
    p.add_argument("--quantity", default="loss",
                   help="what to draw: loss (default), acc, train_loss, test_acc, a metric's name, max_eig, "
                   "min_eig, eig_ratio (|min_eig/max_eig|, the convexity map) or eig_ratio_signed (min_eig/max_eig: "
                   "negative where the surface is not convex)")
    p.add_argument("--kinds", type=_csv(KINDS), default=list(KINDS),
                   help="2D figures to draw (default all: contour,contourf,heatmap,3d)")
    p.add_argument("--formats", type=_csv(FORMATS), default=["png", "pdf"],
                   help="file formats (default png,pdf)")
    p.add_argument("--levels", type=positive, default=30,
                   help="about N contour levels, at round values (0.5, 1, 2, 5, ...), 2 to 1000 (default 30)")
    p.add_argument("--level-step", type=finite_float, default=None, metavar="STEP",
                   help="contour levels every STEP from --vmin (the original tool's --vlevel) instead of --levels")
    p.add_argument("--vmin", type=finite_float, default=None,
                   help="lower end of the colour/level (1D: y) range; values below take the colour bar's lower "
                   "extension colour")
    p.add_argument("--vmax", type=finite_float, default=None,
                   help="upper end of the colour/level (1D: y) range; values above take the colour bar's upper "
                   "extension colour (3D: clipped)")
    p.add_argument("--xlim", type=_range, default=None, metavar="MIN:MAX", help="x range of 1D figures")
    sc = p.add_mutually_exclusive_group()
    sc.add_argument("--log", dest="scale", action="store_const", const="log",
                    help="log-scale colours / loss axis")
    sc.add_argument("--linear", dest="scale", action="store_const", const="linear",
                    help="linear levels (default: log-spaced for a loss spanning over two decades, which "
                    "resolves the basin; linear otherwise)")
    p.set_defaults(scale="auto")
    p.add_argument("--dpi", type=positive, default=150, help="resolution of PNG files, 10 to 1200 (default 150)")
    p.add_argument("--mark-evaluated", action="store_true",
                   help="dots where an adaptive surface (landscape-surf --adaptive) evaluated the network, named in "
                   "the legend")
    p.add_argument("--out", default=None, metavar="PREFIX",
                   help="prefix of the figure files (default: the surface file without .h5, or "
                   "'compare' with --compare); with several surfaces, figures go beside each file")
    v = p.add_argument_group("other views (when any is given, the static figures are drawn only "
                             "with --static)")
    v.add_argument("--html", action="store_true",
                   help="PREFIX.html: interactive 3D surface and contours (plotly, works offline; plotly.js inside "
                   "the page)")
    v.add_argument("--shared-js", action="store_true",
                   help="with --html: the page loads plotly.js from plotly-VERSION.min.js beside it, written once "
                   "for all the folder's pages (pages of kB, not MB; offline, no CDN; copy the folder, not the page "
                   "alone)")
    v.add_argument("--vtk", action="store_true",
                   help="PREFIX.vts for ParaView (height clipped at --vmax, ln(z+0.1) with --log); "
                   "a volume: PREFIX.vti image data")
    v.add_argument("--interp", type=positive, default=None, metavar="N",
                   help="with --vtk: interpolate the surface onto N x N points first (cubic; the original "
                   "h52vtp.py --interp)")
    v.add_argument("--compare", action="store_true",
                   help="all surfaces in one figure, one colour scale: PREFIX_{kind}.{format}")
    v.add_argument("--titles", default=None, metavar="A|B|...",
                   help="with --compare: the panels' titles, |-separated (default: what each file records)")
    v.add_argument("--twin", action="store_true",
                   help="with --compare of 1D surfaces: accuracy dashed on a right axis")
    v.add_argument("--trajectory", metavar="PATH.h5",
                   help="draw an optimization path over the contours: a landscape-traj file, or the "
                   "original tool's projection file (*_proj_cos.h5) (PREFIX_trajectory.{format}; "
                   "also on the --html page)")
    v.add_argument("--dir-file", default=None, metavar="DIRS.h5",
                   help="with --trajectory: the PCA directions file of an original tool's projection file, "
                   "named explicitly (its explained variance labels the axes; the original plot_2D.py --dir_file)")
    v.add_argument("--path", metavar="CURVE.pt",
                   help="draw a mode-connecting curve (landscape-connect) and the points a, b and its bend on the "
                   "plane that landscape-surf --curve computed for it (PREFIX_plane.{format})")
    v.add_argument("--static", action="store_true", help="also the usual static figures")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-plot``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        ns = build_parser().parse_args(argv)
        style = Style(quantity=ns.quantity, levels=ns.levels, step=ns.level_step, vmin=ns.vmin, vmax=ns.vmax,
                      scale=ns.scale, xlim=ns.xlim, mark_evaluated=ns.mark_evaluated, twin=ns.twin)
        done = plot_files(PlotConfig(
            tuple(ns.surfaces), ns.out, style, tuple(ns.kinds), tuple(ns.formats), dpi=ns.dpi, html=ns.html,
            shared_js=ns.shared_js, vtk=ns.vtk, interp=ns.interp, compare=ns.compare,
            titles=tuple(ns.titles.split("|")) if ns.titles else None, trajectory=ns.trajectory,
            dir_file=ns.dir_file, curve=ns.path, static=True if ns.static else None))
        for source, paths in done:
            print(f"{PROG}: {source}: {', '.join(paths)}")
        return 0

    return run_cli(PROG, body, {"DamagedFile": "recompute it with landscape-surf (--repair keeps what verifies)"})


if __name__ == "__main__":
    sys.exit(main())
