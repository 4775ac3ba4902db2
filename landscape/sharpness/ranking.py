"""Ranking minima: Kendall's tau between a measure and the generalization gap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from landscape.errors import LandscapeError
from landscape.sharpness.results import Correlation

FEW_MINIMA = 10  # below this many minima a rank correlation gets a warning


def kendall(measure: str, values: Sequence[float], gaps: Sequence[float], stderrs: Sequence[float] = (),
            labels: Sequence[str] = ()) -> Correlation:
    """Kendall's tau (``scipy.stats.kendalltau``, tau-b) of ``values`` against the generalization
    ``gaps`` of the same minima, its two-sided p-value, and a warning for few minima."""
    from scipy.stats import kendalltau

    v, g = np.asarray(values, dtype=float), np.asarray(gaps, dtype=float)
    if v.shape != g.shape or v.ndim != 1:
        raise LandscapeError("a rank correlation needs one value and one gap per minimum")
    ok = np.isfinite(v) & np.isfinite(g)
    k = int(ok.sum())
    if k < 2:
        raise LandscapeError(f"a rank correlation needs at least 2 minima with finite values, got {k}")
    res = kendalltau(v[ok], g[ok])
    tau, p = float(res.statistic), float(res.pvalue)
    warning = ""
    if k < FEW_MINIMA:
        warning = (f"only {k} minima: a rank correlation over so few proves little "
                   f"(tau = {tau:.2f}, p = {p:.2g}; Jiang et al. rank over thousands of networks)")
    return Correlation(measure, tau, p, tuple(v.tolist()), tuple(g.tolist()), tuple(float(s) for s in stderrs),
                       tuple(str(s) for s in labels), warning)
