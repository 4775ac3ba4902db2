"""Grid specs such as ``"-1:1:51"`` and the points of a 1D or 2D grid. Pure functions."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from landscape.errors import LandscapeError


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
    if not (np.isfinite(start) and np.isfinite(stop)):
        raise LandscapeError(f"grid spec {spec!r} has a non-finite bound")
    if num < 1:
        raise LandscapeError(f"grid spec {spec!r} needs at least one point")
    if num > 1 and stop <= start:
        raise LandscapeError(f"grid spec {spec!r} needs MIN < MAX")
    return Axis(start, stop, num)


@dataclass(frozen=True)
class Grid:
    """A 1D grid (``y is None``) or a 2D grid; point ``k`` is ``(x[i], y[j])`` with ``k = i*ny + j``."""

    x: Axis
    y: Axis | None = None

    def __post_init__(self):
        if self.y is not None and min(self.x.num, self.y.num) < 2:
            raise LandscapeError(f"a 2D grid needs at least 2 points on each axis, got {self.x} and {self.y}")

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.x.num,) if self.y is None else (self.x.num, self.y.num)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def point(self, k: int) -> tuple[float, ...]:
        """The coordinates of flat index ``k``."""
        if self.y is None:
            return (float(self.x.coordinates[k]),)
        i, j = divmod(int(k), self.y.num)
        return (float(self.x.coordinates[i]), float(self.y.coordinates[j]))

    def points(self) -> np.ndarray:
        """All points, shape (size, ndim), in flat-index order."""
        if self.y is None:
            return self.x.coordinates[:, None]
        xx, yy = np.meshgrid(self.x.coordinates, self.y.coordinates, indexing="ij")
        return np.stack([xx.ravel(), yy.ravel()], axis=1)
