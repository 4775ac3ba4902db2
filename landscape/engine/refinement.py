"""The same figure from fewer points: a grid refined where interpolation is not good enough.

A 1D or 2D grid is evaluated on a coarse sub-grid first (every ``s``-th point of each axis, ``s``
a power of two, at least 5 points per axis), then level by level down to every point. Before each
level the values known so far (evaluated, or interpolated at an earlier level) are interpolated
onto the new points by a cubic spline, in log space where all are positive (figures use log
levels: a relative error is what a reader sees). The error of that interpolant is estimated as the
difference between it and the previous level's spline, divided by 4 (a cubic converges 16x per
halving; 4 is the margin); new points where the estimate exceeds ``tol`` are marked, together
with their neighbours on the new level, and evaluated. The rest keep the interpolated value.

Measured on a 41x41 surface of the digits network (``tol=0.01``): 34% of the points evaluated,
every point within 0.9% of the full grid's loss (``benchmarks/bench_adaptive.py``).

:class:`Refinement` is the plan: :meth:`Refinement.start` gives the first points, and
:meth:`Refinement.refine` the next round's from the values so far (None when done), so the rounds
can be spread over MPI ranks and a resumed run replays them from the evaluated values alone;
:meth:`Refinement.fill` interpolates every quantity at the points not evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from landscape.errors import LandscapeError

MIN_COARSE = 5  # points per axis of the first level
MARGIN = 4.0  # the estimate: |spline(level) - spline(level before)| / MARGIN


def check_tolerance(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 < tol < 1:
        raise LandscapeError(f"the adaptive tolerance is a relative error between 0 and 1 (e.g. 0.01), got {tol!r}")
    return float(tol)


def axis_levels(n: int) -> list[np.ndarray]:
    """The indices of one axis at each level, coarse to fine: every ``s``-th and the last."""
    s = 1
    while (n - 1) // (2 * s) >= MIN_COARSE - 1:
        s *= 2
    levels = []
    while s >= 1:
        levels.append(np.array(sorted(set(range(0, n, s)) | {n - 1})))
        s //= 2
    return levels


def _spline(coords: Sequence[np.ndarray], values: np.ndarray, at: Sequence[np.ndarray]) -> np.ndarray:
    """The interpolating spline (cubic where there are points enough) of ``values`` on the grid
    ``coords`` (y first for 2D), evaluated on the grid ``at``."""
    from scipy.interpolate import InterpolatedUnivariateSpline, RectBivariateSpline

    if len(coords) == 1:
        k = min(3, len(coords[0]) - 1)
        return InterpolatedUnivariateSpline(coords[0], values, k=k)(at[0])
    k = min(3, len(coords[0]) - 1, len(coords[1]) - 1)
    return RectBivariateSpline(coords[0], coords[1], values, kx=k, ky=k)(at[0], at[1])


def _transform(values: np.ndarray) -> tuple[np.ndarray, bool]:
    """Log of the values where all finite ones are positive (a relative scale), else as they are;
    non-finite values replaced by the largest finite one (the points beside them are evaluated)."""
    finite = np.isfinite(values)
    v = np.where(finite, values, np.nanmax(np.where(finite, values, np.nan)) if finite.any() else 0.0)
    log = bool(finite.any()) and bool((v > 0).all())
    return (np.log(v) if log else v), log


def _near(mask: np.ndarray, level: Sequence[np.ndarray], fine: Sequence[np.ndarray]) -> np.ndarray:
    """On the fine level's grid: True where a bracketing point of the coarse level is in ``mask``."""
    out = np.zeros(tuple(len(f) for f in fine), dtype=bool)
    brackets = []
    for lv, fi in zip(level, fine, strict=True):
        hi = np.clip(np.searchsorted(lv, fi), 0, len(lv) - 1)
        lo = np.clip(hi - 1, 0, len(lv) - 1)
        brackets.append((lo, hi))
    if len(fine) == 1:
        (lo, hi), = brackets
        return mask[lo] | mask[hi]
    (ylo, yhi), (xlo, xhi) = brackets
    for ys in (ylo, yhi):
        for xs in (xlo, xhi):
            out |= mask[np.ix_(ys, xs)]
    return out


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    for axis in range(mask.ndim):
        for shift in (-1, 1):
            rolled = np.roll(mask, shift, axis)
            edge = [slice(None)] * mask.ndim
            edge[axis] = 0 if shift == 1 else -1
            rolled[tuple(edge)] = False
            out |= rolled
    if mask.ndim == 2:  # the diagonal neighbours too
        for dy in (-1, 1):
            for dx in (-1, 1):
                rolled = np.roll(np.roll(mask, dy, 0), dx, 1)
                rolled[0 if dy == 1 else -1, :] = False
                rolled[:, 0 if dx == 1 else -1] = False
                out |= rolled
    return out


class Refinement:
    """The rounds of an adaptive grid of ``shape`` (``(nx,)`` or ``(ny, nx)``) at relative
    tolerance ``tol``, refined on quantity ``key``."""

    def __init__(self, shape: Sequence[int], tol: float, key: str):
        if len(shape) not in (1, 2):
            raise LandscapeError("an adaptive grid is 1D or 2D")
        self.shape, self.tol, self.key = tuple(int(n) for n in shape), check_tolerance(tol), key
        per_axis = [axis_levels(n) for n in self.shape]
        depth = max(len(lv) for lv in per_axis)
        # axes with fewer levels stay at their finest (all points) for the remaining levels
        self.levels = [tuple(lv[max(0, i - (depth - len(lv)))] for lv in per_axis) for i in range(depth)]
        self.round = 0

    def _flat(self, index: Sequence[np.ndarray]) -> np.ndarray:
        grids = np.meshgrid(*index, indexing="ij")
        return np.ravel_multi_index(tuple(g.ravel() for g in grids), self.shape)

    def start(self) -> list[int]:
        """The points of the first round: the coarsest level, all of them."""
        self.round = 0
        return sorted(int(p) for p in self._flat(self.levels[0]))

    def _known(self, values: np.ndarray, done: np.ndarray, upto: int) -> np.ndarray:
        """The quantity over the grid: evaluated values where ``done``, and at the points of levels
        1..``upto`` not evaluated, the spline of the level before (NaN elsewhere)."""
        known = np.where(done, values, np.nan)
        for lv in range(upto):
            grid, fine = self.levels[lv], self.levels[lv + 1]
            t, log = _transform(known[np.ix_(*grid)])
            cubic = _spline(grid, t, fine)
            target = known[np.ix_(*fine)]
            missing = ~done[np.ix_(*fine)]
            target[missing] = (np.exp(cubic) if log else cubic)[missing]
            known[np.ix_(*fine)] = target
        return known

    def _estimate(self, known: np.ndarray, level: int) -> np.ndarray:
        """The estimated relative error of the spline of ``level`` at the next level's points."""
        grid, fine = self.levels[level], self.levels[level + 1]
        sub = known[np.ix_(*grid)]
        t, log = _transform(sub)
        cubic = _spline(grid, t, fine)
        prev = None
        if level > 0:
            pt, plog = _transform(known[np.ix_(*self.levels[level - 1])])
            if plog == log:
                prev = _spline(self.levels[level - 1], pt, fine)
        if prev is None:  # the first level (or a change of scale): against the linear interpolant
            from scipy.interpolate import RegularGridInterpolator

            mesh = np.stack(np.meshgrid(*fine, indexing="ij"), axis=-1)
            prev = RegularGridInterpolator(grid, t, method="linear")(mesh)
        estimate = np.abs(cubic - prev) / MARGIN
        if not log:  # relative to the values' scale
            estimate = estimate / max(float(np.max(np.abs(t))), 1e-300)
        estimate[_near(~np.isfinite(sub), grid, fine)] = np.inf
        return estimate

    def refine(self, values: np.ndarray, done: np.ndarray) -> list[int] | None:
        """The next round's points (every rank evaluates some), or None when the grid is done.
        ``values``/``done``: the refinement quantity over the grid and where it was evaluated."""
        while self.round + 1 < len(self.levels):
            estimate = self._estimate(self._known(values, done, self.round), self.round)
            self.round += 1
            fine = self.levels[self.round]
            coarse = self.levels[self.round - 1]
            new = np.ones(estimate.shape, dtype=bool)
            new[np.ix_(*[np.searchsorted(f, c) for f, c in zip(fine, coarse, strict=True)])] = False
            flag = _dilate(estimate > self.tol) & new
            points = self._flat_masked(fine, flag)
            if points:
                return points
        return None

    def _flat_masked(self, index: Sequence[np.ndarray], mask: np.ndarray) -> list[int]:
        grids = np.meshgrid(*index, indexing="ij")
        return sorted(int(p) for p in np.ravel_multi_index(tuple(g[mask] for g in grids), self.shape))

    def fill(self, values: Mapping[str, np.ndarray], done: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every quantity over the whole grid: evaluated values as they are, the others interpolated
        level by level as the refinement predicted them."""
        return {name: self._known(v, done[name], len(self.levels) - 1) if done[name].any() else v
                for name, v in values.items()}


__all__ = ["Refinement", "axis_levels", "check_tolerance"]
