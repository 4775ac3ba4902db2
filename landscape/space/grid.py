"""Grid specs such as ``"-1:1:51"`` and the points of a 1D, 2D or 3D grid. Pure functions.

Arrays over a grid are stored in meshgrid order: a 2D array is indexed ``[j, i]`` for the point
``(x[i], y[j])`` (row = y, column = x, what ``np.meshgrid(x, y)`` and matplotlib use), a 3D one
``[k, j, i]`` for ``(x[i], y[j], z[k])``. Point ``p`` of the grid is the flat C-order index of that
array, so x varies fastest, as in the original loss-landscape tool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from landscape.errors import LandscapeError

LARGEST_COORDINATE = 1e30  # theta + a*d in float32 overflows long before float32's 3.4e38
MAX_AXIS_POINTS = 10_000_000  # coordinates beyond this are absurd: 1e7 evaluations on one line
MAX_GRID_POINTS = 2**31 - 1  # the arrays of a larger grid fit no memory (8 bytes a point and quantity)


@dataclass(frozen=True)
class Axis:
    """``num`` evenly spaced coordinates from ``start`` to ``stop``, both included."""

    start: float
    stop: float
    num: int

    @property
    def coordinates(self) -> np.ndarray:
        return np.linspace(self.start, self.stop, self.num)

    def __str__(self) -> str:
        return f"{self.start:g}:{self.stop:g}:{self.num}"


def parse_axis(spec: str) -> Axis:
    """Parse ``MIN:MAX:NUM``; anything else is a :class:`LandscapeError`."""
    parts = str(spec).split(":")
    if len(parts) != 3:
        raise LandscapeError(f"grid spec {spec!r} is not MIN:MAX:NUM (for example -1:1:51)")
    try:
        start, stop = float(parts[0]), float(parts[1])
        num = int(parts[2])
    except ValueError:
        raise LandscapeError(f"grid spec {spec!r} is not MIN:MAX:NUM (for example -1:1:51)") from None
    return make_axis((start, stop, num), spec)


def make_axis(value, label: str | None = None) -> Axis:
    """An :class:`Axis` from an Axis, a ``(min, max, num)`` tuple or a ``"MIN:MAX:NUM"`` string."""
    if isinstance(value, Axis):
        start, stop, num = value.start, value.stop, value.num
    elif isinstance(value, str):
        return parse_axis(value)
    else:
        try:
            start, stop, num = value
            start, stop = float(start), float(stop)
            if int(num) != num:
                raise ValueError
            num = int(num)
        except (TypeError, ValueError):
            raise LandscapeError(f"an axis is (min, max, num) or 'MIN:MAX:NUM', got {value!r}") from None
    label = label if label is not None else f"{start:g}:{stop:g}:{num}"
    if not (np.isfinite(start) and np.isfinite(stop)):
        raise LandscapeError(f"grid spec {label!r} has a non-finite bound")
    if max(abs(start), abs(stop)) > LARGEST_COORDINATE:
        raise LandscapeError(f"grid spec {label!r} goes beyond +-{LARGEST_COORDINATE:.3g}: the parameters "
                             "(float32) moved that far are not numbers")
    if num < 1:
        raise LandscapeError(f"grid spec {label!r} needs at least one point")
    if num > MAX_AXIS_POINTS:
        raise LandscapeError(f"grid spec {label!r} has more than {MAX_AXIS_POINTS:,} points on one axis")
    if num > 1 and stop <= start:
        raise LandscapeError(f"grid spec {label!r} needs MIN < MAX")
    return Axis(start, stop, num)


@dataclass(frozen=True)
class Grid:
    """A grid over 1 to 3 directions: ``Grid(x)``, ``Grid(x, y)`` or ``Grid(x, y, z)``; each axis an
    :class:`Axis`, a ``(min, max, num)`` tuple or a ``"MIN:MAX:NUM"`` string, e.g.
    ``Grid(x=(-1, 1, 41), y="-1:1:41")``. ``adaptive=TOL`` (1D and 2D): evaluate a coarse grid and
    refine it only where interpolation misses by more than TOL relative (see
    :mod:`landscape.engine.refinement`); the rest of the points are interpolated."""

    x: Axis
    y: Axis | None = None
    z: Axis | None = None
    adaptive: float | None = None

    def __post_init__(self):
        if self.x is None:
            raise LandscapeError("a grid needs an x axis (`x`)")
        for name in ("x", "y", "z"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Axis):
                object.__setattr__(self, name, make_axis(value))
        if self.z is not None and self.y is None:
            raise LandscapeError("a z axis needs a y axis")
        if self.ndim > 1 and min(a.num for a in self.axes) < 2:
            shown = " and ".join(str(a) for a in self.axes)
            raise LandscapeError(f"a {self.ndim}D grid needs at least 2 points on each axis, got {shown}")
        if self.adaptive is not None:
            if isinstance(self.adaptive, bool) or not isinstance(self.adaptive, int | float) or \
                    not 0 < self.adaptive < 1:
                raise LandscapeError(f"`adaptive` is a relative tolerance between 0 and 1 (e.g. 0.01), got "
                                     f"{self.adaptive!r}")
            if self.ndim == 3:
                raise LandscapeError("an adaptive grid is 1D or 2D")
            object.__setattr__(self, "adaptive", float(self.adaptive))
        if self.size > MAX_GRID_POINTS:
            raise LandscapeError(f"the grid has {self.size:,} points; at most {MAX_GRID_POINTS:,} fit in memory")

    @property
    def axes(self) -> tuple[Axis, ...]:
        return tuple(a for a in (self.x, self.y, self.z) if a is not None)

    @property
    def ndim(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of an array over the grid: ``(nx,)``, ``(ny, nx)`` or ``(nz, ny, nx)``."""
        return tuple(a.num for a in reversed(self.axes))

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # Python integers: no overflow on absurd grids

    def coordinates(self) -> list[np.ndarray]:
        """The coordinates of each axis, x first."""
        return [a.coordinates for a in self.axes]

    def point(self, p: int) -> tuple[float, ...]:
        """The coordinates ``(x, y, ...)`` of flat index ``p``."""
        index = np.unravel_index(int(p), self.shape)[::-1]  # (i, j, k)
        return tuple(float(a.coordinates[n]) for a, n in zip(self.axes, index, strict=True))

    def points(self) -> np.ndarray:
        """All points, shape (size, ndim), in flat-index order (x varies fastest)."""
        mesh = np.meshgrid(*[a.coordinates for a in reversed(self.axes)], indexing="ij")
        return np.stack([m.ravel() for m in reversed(mesh)], axis=1)

    def specs(self) -> list[str]:
        return [str(a) for a in self.axes]


def as_grid(value) -> Grid:
    """A :class:`Grid` as it is; anything else (an :class:`Axis`, a tuple, a string) is its x axis."""
    return value if isinstance(value, Grid) else Grid(value)
