"""``landscape-plot``: draw the figures of surface files.

    landscape-plot surface.h5                  # 2D: contour, filled contour, heat map, 3D (PNG, PDF)
    landscape-plot interp.h5 --log             # 1D: loss and accuracy, log-scale loss
    landscape-plot surface.h5 --kinds contour --levels 40 --vmax 5 --formats png
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from landscape.cli._common import Parser, run_cli

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
    p.add_argument("--levels", type=int, default=30, help="contour levels (default 30)")
    p.add_argument("--vmin", type=float, default=None, help="lower end of the colour/level range")
    p.add_argument("--vmax", type=float, default=None,
                   help="upper end of the colour/level range (values above are clipped in 3D)")
    p.add_argument("--log", action="store_true", help="log-scale loss axis / colours")
    p.add_argument("--out", default=None, metavar="PREFIX",
                   help="prefix of the figure files (default: the surface file without .h5); "
                   "with several surfaces, figures go beside each file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``landscape-plot``; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)

    def body() -> int:
        from landscape.errors import LandscapeError
        from landscape.plot.render import render
        from landscape.surface import read_surface

        ns = build_parser().parse_args(argv)
        if ns.vmin is not None and ns.vmax is not None and ns.vmax <= ns.vmin:
            raise LandscapeError(f"--vmax ({ns.vmax}) must be above --vmin ({ns.vmin})")
        if ns.out and len(ns.surfaces) > 1:
            raise LandscapeError("--out names one figure prefix; give one surface file with it")
        surfaces = [read_surface(path) for path in ns.surfaces]  # all readable before drawing
        for path, surface in zip(ns.surfaces, surfaces, strict=True):
            prefix = ns.out or os.path.splitext(path)[0]
            paths = render(surface, prefix, formats=ns.formats, levels=ns.levels, vmin=ns.vmin,
                           vmax=ns.vmax, log=ns.log, kinds=ns.kinds, quantity=ns.quantity)
            print(f"{PROG}: {path}: {', '.join(paths)}")
        return 0

    return run_cli(PROG, body)


if __name__ == "__main__":
    sys.exit(main())
