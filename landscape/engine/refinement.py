"""The same figure from fewer points: a grid refined where interpolation is not good enough, and
checked where it claims to be.

A 1D or 2D grid is evaluated level by level, coarse to fine: the first level is every ``s``-th
point of each axis (and the last), ``s`` a power of two of at most ``MAX_STEP`` (4) grid steps that
leaves at least ``MIN_COARSE`` (5) points per axis, and each next level halves the step. Values
are interpolated by cubic splines, in log space where all are positive (figures use log levels: a
relative error is what a reader sees). Going from one level to the next:

1. **Estimate.** The level's spline is compared with the spline of the level before (on the first
   level: with the linear interpolant) at the next level's points; the difference divided by
   ``MARGIN`` (4) estimates the error. Every point of the next level not yet evaluated (new, or
   interpolated at an earlier level) where the estimate exceeds the tolerance is evaluated, with
   its neighbours.
2. **Validate.** So that an optimistic estimate cannot hide a feature, one more point per
   ``BLOCK`` x ``BLOCK`` (4 x 4; 1D: 16) block of the next level is evaluated at random (a
   stratified sample of the points the estimate would interpolate).
3. **Grow.** Every evaluated point of the level whose value the spline missed by more than
   ``GROW_AT`` (half) the tolerance has its neighbours on the level evaluated too, and theirs,
   until the region where the spline misses is surrounded by points where it does not.

At the end two interpolants of everything evaluated, the levels' splines and a thin-plate fill
(the smoothest surface through the evaluated points), must agree within the tolerance at every
point not evaluated; where they do not, the point is evaluated, until they agree.

The first level sees any feature of width (the standard deviation of a Gaussian bump, dip or
ridge) of 2 grid steps or more with at least ``e^-1`` of its height at an evaluated point, which
the estimate, the sample and the growth then follow: such features are never lost
(``tests/engine/test_adaptive.py`` places them at random). A narrower feature, or a kink (a ReLU
boundary) that falls between evaluated points, can be missed.

:class:`Refinement` is the plan: :meth:`Refinement.start` gives the first points, and
:meth:`Refinement.refine` the next round's from the values so far (None when done), so the rounds
can be spread over MPI ranks and a resumed run replays them from the evaluated values alone (a
point the plan has not asked for yet is ignored until it does); :meth:`Refinement.fill`
interpolates every quantity at the points not evaluated; :attr:`Refinement.validation` says what
the checks found.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from landscape.errors import LandscapeError

MIN_COARSE = 5  # points per axis of the first level, at least
MAX_STEP = 4  # grid steps between the first level's points, at most
MARGIN = 4.0  # the estimate: |spline(level) - spline(level before)| / MARGIN
BLOCK = 4  # one random point per BLOCK x BLOCK block of each level (1D: BLOCK^2 points) checks the estimate
GROW_AT = 0.5  # an evaluated point the spline missed by more than GROW_AT * tol has its neighbours evaluated
REFINEMENT_VERSION = 2  # the rounds this module plays (files of another version are not resumed)


def check_tolerance(tol) -> float:
    if isinstance(tol, bool) or not isinstance(tol, int | float) or not 0 < tol < 1:
        raise LandscapeError(f"the adaptive tolerance is a relative error between 0 and 1 (e.g. 0.01), got {tol!r}")
    return float(tol)


def axis_levels(n: int) -> list[np.ndarray]:
    """The indices of one axis at each level, coarse to fine: every ``s``-th and the last."""
    s = 1
    while (n - 1) // (2 * s) >= MIN_COARSE - 1 and 2 * s <= MAX_STEP:
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


def _thin_plate(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """The grid's values at the points not ``known`` that minimize the discrete thin-plate energy
    (``u_xx^2 + 2 u_xy^2 + u_yy^2``; 1D: ``u_xx^2``, a natural cubic spline) with the known ones fixed."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    def second(n: int):
        return sp.diags([1.0, -2.0, 1.0], [0, 1, 2], shape=(max(n - 2, 0), n))

    def first(n: int):
        return sp.diags([-1.0, 1.0], [0, 1], shape=(n - 1, n))

    if values.ndim == 1:
        A = second(len(values)).tocsc()
    else:
        ny, nx = values.shape
        A = sp.vstack([sp.kron(sp.identity(ny), second(nx)), sp.kron(second(ny), sp.identity(nx)),
                       np.sqrt(2.0) * sp.kron(first(ny), first(nx))]).tocsc()
    k = known.ravel()
    out = np.where(k, values.ravel(), 0.0)
    if k.all() or not k.any():
        return out.reshape(values.shape)
    Au = A[:, ~k]
    out[~k] = spsolve((Au.T @ Au).tocsc(), -(Au.T @ (A[:, k] @ out[k])))
    return out.reshape(values.shape)


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
    """``mask`` and its neighbours (the diagonal ones too)."""
    out = mask.copy()
    for shifts in itertools.product((-1, 0, 1), repeat=mask.ndim):
        rolled = mask
        for axis, shift in enumerate(shifts):
            if shift:
                rolled = np.roll(rolled, shift, axis)
                edge = [slice(None)] * mask.ndim
                edge[axis] = 0 if shift == 1 else -1
                rolled[tuple(edge)] = False
        out |= rolled
    return out


def _relative(a: np.ndarray, b: np.ndarray, log: bool, scale: float) -> np.ndarray:
    """``|a - b|`` relative to ``b`` (log scale) or to the values' scale."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(a - b) / (np.abs(b) if log else scale)


class Refinement:
    """The rounds of an adaptive grid of ``shape`` (``(nx,)`` or ``(ny, nx)``) at relative
    tolerance ``tol``, refined on quantity ``key`` (see the module docstring)."""

    def __init__(self, shape: Sequence[int], tol: float, key: str):
        if len(shape) not in (1, 2):
            raise LandscapeError("an adaptive grid is 1D or 2D")
        self.shape, self.tol, self.key = tuple(int(n) for n in shape), check_tolerance(tol), key
        per_axis = [axis_levels(n) for n in self.shape]
        depth = max(len(lv) for lv in per_axis)
        # axes with fewer levels stay at their finest (all points) for the remaining levels
        self.levels = [tuple(lv[max(0, i - (depth - len(lv)))] for lv in per_axis) for i in range(depth)]
        self.start()

    def _flat(self, index: Sequence[np.ndarray], mask: np.ndarray | None = None) -> list[int]:
        grids = np.meshgrid(*index, indexing="ij")
        picked = [g.ravel() if mask is None else g[mask] for g in grids]
        return sorted(int(p) for p in np.ravel_multi_index(tuple(picked), self.shape))

    def _request(self, index: Sequence[np.ndarray], mask: np.ndarray | None = None) -> list[int]:
        points = self._flat(index, mask)
        self.requested.flat[points] = True
        return points

    def start(self) -> list[int]:
        """The points of the first round: the coarsest level, all of them."""
        self.round, self.stage = 0, "level"
        self.requested = np.zeros(self.shape, dtype=bool)
        self.sampled = np.zeros(self.shape, dtype=bool)
        self.sample_errors: dict[int, float] = {}
        self.disagreement = 0.0
        return self._request(self.levels[0])

    @property
    def validation(self) -> dict:
        """What the checks found: the points evaluated at random to check the estimate, the largest
        relative error the interpolation had at them, how many missed the tolerance (each grown
        around), and the largest difference left between the two interpolants."""
        errors = list(self.sample_errors.values())
        return {"validated": len(errors), "largest_error": float(max(errors, default=0.0)),
                "missed": int(sum(e > self.tol for e in errors)), "disagreement": float(self.disagreement)}

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

    def _estimate(self, known: np.ndarray, level: int) -> tuple[np.ndarray, np.ndarray, bool, float]:
        """At the next level's points: the estimated relative error of the spline of ``level``, the
        spline itself (the prediction), whether it is in log space, and the values' scale."""
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
        scale = 1.0 if log else max(float(np.max(np.abs(t))), 1e-300)
        estimate = np.abs(cubic - prev) / MARGIN / scale
        estimate[_near(~np.isfinite(sub), grid, fine)] = np.inf
        return estimate, (np.exp(cubic) if log else cubic), log, scale

    def _sample(self, candidates: np.ndarray) -> np.ndarray:
        """One random candidate per block of BLOCK^2 points of the level's grid (BLOCK x BLOCK; 1D:
        BLOCK^2 in a row), the same on a replay."""
        rng = np.random.default_rng([self.round, *self.shape])
        pick = np.zeros(candidates.shape, dtype=bool)
        side = BLOCK * BLOCK if candidates.ndim == 1 else BLOCK
        for corner in itertools.product(*[range(0, n, side) for n in candidates.shape]):
            block = tuple(slice(c, c + side) for c in corner)
            where = np.flatnonzero(candidates[block])
            if len(where):
                chosen = np.zeros(candidates[block].shape, dtype=bool)
                chosen.flat[rng.choice(where)] = True
                pick[block] |= chosen
        return pick

    def refine(self, values: np.ndarray, done: np.ndarray) -> list[int] | None:
        """The next round's points (every rank evaluates some), or None when the grid is done.
        ``values``/``done``: the refinement quantity over the grid and where it was evaluated."""
        done = done & self.requested  # a resumed file's later points count when the plan gets to them
        while True:
            if self.stage == "level":
                if self.round + 1 == len(self.levels):
                    self.stage = "agree"
                    continue
                fine = self.levels[self.round + 1]
                estimate, self.prediction, self.log, self.scale = self._estimate(
                    self._known(values, done, self.round), self.round)
                self.candidates = ~self.requested[np.ix_(*fine)]
                flag = _dilate(estimate > self.tol) & self.candidates
                sample = self._sample(self.candidates & ~flag)
                self.sampled[np.ix_(*fine)] |= sample
                self.stage = "grow"
                points = self._request(fine, flag | sample)
                if points:
                    return points
            elif self.stage == "grow":
                fine = self.levels[self.round + 1]
                v = values[np.ix_(*fine)]
                evaluated = done[np.ix_(*fine)] & self.candidates
                error = _relative(self.prediction, v, self.log, self.scale)
                sampled = evaluated & self.sampled[np.ix_(*fine)]
                for p, e in zip(self._flat(fine, sampled), error[sampled], strict=True):
                    self.sample_errors.setdefault(p, float(e))
                missed = evaluated & ~(error <= GROW_AT * self.tol)
                more = _dilate(missed) & self.candidates & ~self.requested[np.ix_(*fine)]
                if more.any():
                    return self._request(fine, more)
                self.round += 1
                self.stage = "level"
            elif self.stage == "agree":
                splines = self._known(values, done, len(self.levels) - 1)
                t, log = _transform(np.where(done, values, np.nan))
                smooth = _thin_plate(t, done)
                smooth = np.exp(smooth) if log else smooth
                scale = 1.0 if log else max(float(np.max(np.abs(t))), 1e-300)
                differ = np.where(done, 0.0, _relative(smooth, splines, log, scale))
                self.disagreement = float(np.nanmax(differ)) if differ.size else 0.0
                more = ~(differ <= self.tol) & ~self.requested
                if more.any():
                    return self._request([np.arange(n) for n in self.shape], more)
                self.stage = "done"
            else:
                return None

    def fill(self, values: Mapping[str, np.ndarray], done: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Every quantity over the whole grid: evaluated values as they are, the others interpolated
        level by level as the refinement predicted them."""
        return {name: self._known(v, done[name], len(self.levels) - 1) if done[name].any() else v
                for name, v in values.items()}


__all__ = ["REFINEMENT_VERSION", "Refinement", "axis_levels", "check_tolerance"]
