"""How a figure of a surface is drawn: :class:`Style`, the plot options declared once.

``landscape-plot``'s flags build one ``Style``; every figure function (:func:`landscape.plot.render.render`,
:func:`landscape.plot.compare.compare_figure`, :func:`landscape.plot.path.trajectory_figure`,
:func:`landscape.plot.connect.plane_figure`, the matplotlib views of :mod:`landscape.plot.mpl`, the
plotly views of :mod:`landscape.plot.interactive`) takes it, and checks nothing of it again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from matplotlib import colormaps

from landscape.errors import LandscapeError, check_choice, is_int

SCALES = ("auto", "linear", "log")
MAX_LEVELS = 1000  # more cannot be told apart, and cost minutes and gigabytes


def _number(name: str, value) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise LandscapeError(f"`{name}` must be a finite number, got {value!r}")


@dataclass(frozen=True)
class Style:
    """The plot options of a figure of a surface.

    ``quantity``: what to draw (``loss``, ``acc``, ``test_loss``, a metric, ``eig_ratio``, ...).
    ``levels``: about this many contour levels, at round values (2 to 1000); ``step``: a level every
    ``step`` from ``vmin`` instead (the original tool's ``--vlevel``). ``vmin``/``vmax``: the range of
    the colours and levels (1D: of the y axis); values beyond it take the colour bar's extensions.
    ``scale``: ``auto`` (log for a loss spanning more than two decades, else linear), ``linear`` or
    ``log``. ``xlim``: the x range of 1D figures. ``cmap``: a matplotlib colour map's name (also the
    plotly colour scale). ``mark_evaluated``: dots where an adaptive surface evaluated the network.
    ``twin``: a 1D comparison draws each surface's accuracy dashed on a right axis.
    """

    quantity: str = "loss"
    levels: int = 30
    step: float | None = None
    vmin: float | None = None
    vmax: float | None = None
    scale: str = "auto"
    xlim: tuple[float, float] | None = None
    cmap: str = "viridis"
    mark_evaluated: bool = False
    twin: bool = False

    def __post_init__(self):
        if not isinstance(self.quantity, str) or not self.quantity:
            raise LandscapeError(f"`quantity` must be the name of a quantity, got {self.quantity!r}")
        if not is_int(self.levels) or not 2 <= self.levels <= MAX_LEVELS:
            raise LandscapeError(f"the number of contour levels must be 2 to {MAX_LEVELS}, got {self.levels!r}")
        for name in ("step", "vmin", "vmax"):
            _number(name, getattr(self, name))
        if self.step is not None and self.step <= 0:
            raise LandscapeError(f"the level step must be positive, got {self.step:g}")
        if self.vmin is not None and self.vmax is not None and self.vmax <= self.vmin:
            raise LandscapeError(f"the upper limit ({self.vmax:g}) must be above the lower one ({self.vmin:g})")
        check_choice("scale", self.scale, SCALES)
        if self.scale == "log":
            for name in ("vmin", "vmax"):
                v = getattr(self, name)
                if v is not None and v <= 0:
                    raise LandscapeError(f"a log scale needs a positive {'lower' if name == 'vmin' else 'upper'} "
                                         f"limit, got {v:g}")
        if self.xlim is not None:
            if not isinstance(self.xlim, tuple | list) or len(self.xlim) != 2:
                raise LandscapeError(f"`xlim` must be a (min, max) pair, got {self.xlim!r}")
            for v in self.xlim:
                _number("xlim", v)
            if not self.xlim[0] < self.xlim[1]:
                raise LandscapeError(f"the x range must go from low to high, got {self.xlim[0]:g}:{self.xlim[1]:g}")
            object.__setattr__(self, "xlim", (float(self.xlim[0]), float(self.xlim[1])))
        if self.cmap not in colormaps:
            raise LandscapeError(f"unknown colour map {self.cmap!r} (matplotlib's names: viridis, magma, ...)")
        for name in ("mark_evaluated", "twin"):
            if not isinstance(getattr(self, name), bool):
                raise LandscapeError(f"`{name}` must be True or False, got {getattr(self, name)!r}")

    @property
    def log(self) -> bool:
        """Whether a log scale is asked for explicitly."""
        return self.scale == "log"


DEFAULT_STYLE = Style()  # frozen: one default object serves every function

__all__ = ["DEFAULT_STYLE", "MAX_LEVELS", "SCALES", "Style"]
