"""``landscape.hessian.summarize``: every value of the summary against the exact Hessian.

The algorithms are tested one by one in test_hessian.py; this checks what the summary assembles
from them (which eigenvalue lands where, the ratio, the trace, the density and its
configuration) against ``torch.autograd.functional.hessian`` and ``numpy.linalg.eigh`` on an
83-parameter network, small enough that Lanczos can run the whole Krylov space.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import exact_hessian

from landscape.hessian import read_summary, summarize, write_summary


@pytest.fixture(scope="module")
def tiny():
    """An 83-parameter MLP, 40 samples, its exact Hessian and the Hessian's eigen-decomposition."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    g = torch.Generator().manual_seed(1)
    X, y = torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g)
    H = exact_hessian(model, X, y)
    w, U = np.linalg.eigh(H)
    return model, (X, y), H, w, U


@pytest.fixture(scope="module")
def summary(tiny):
    model, data, H, _, _ = tiny
    n = H.shape[0]
    return summarize(model, data, top_k=4, trace=True, density=True, dtype=torch.float64, tol=1e-9,
                     trace_tol=1e-3, trace_max_samples=400, density_runs=6, density_iters=n, seed=0)


def test_eigenvalues_are_the_exact_extremes_in_order(tiny, summary):
    _, _, H, w, U = tiny
    scale = w[-1]
    np.testing.assert_allclose(summary.top_eigenvalues, w[::-1][:4], rtol=1e-7, atol=1e-9 * scale)
    assert list(summary.top_eigenvalues) == sorted(summary.top_eigenvalues, reverse=True)
    assert summary.max_eig == pytest.approx(w[-1], rel=1e-8)
    assert summary.min_eig == pytest.approx(w[0], abs=1e-8 * scale)
    assert summary.min_eig < 0 < summary.max_eig  # a random network: an indefinite Hessian
    assert summary.eig_ratio == pytest.approx(abs(w[0] / w[-1]), rel=1e-6)
    vecs = summary.eigen.eigenvectors
    for i in range(4):  # the top eigenvectors: unit, and eigenvectors of the exact H
        v = vecs[:, i]
        assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-8)
        assert np.linalg.norm(H @ v - w[-1 - i] * v) <= 1e-6 * scale
        assert abs(v @ U[:, -1 - i]) == pytest.approx(1.0, abs=1e-6)


def test_trace_is_the_exact_trace_within_its_known_spread(tiny, summary):
    _, _, H, _, _ = tiny
    t = summary.trace
    # z^T H z over Rademacher z has mean tr(H) and variance 2 * sum_{i != j} H_ij^2: the spread is known.
    spread = np.sqrt(2 * (np.sum(H**2) - np.sum(np.diag(H) ** 2)))
    assert t.samples == len(t.values) and 10 <= t.samples <= 400
    assert abs(t.estimate - np.trace(H)) <= 4 * spread / np.sqrt(t.samples)
    assert t.estimate == pytest.approx(np.mean(t.values), rel=1e-12)
    assert t.stderr == pytest.approx(spread / np.sqrt(t.samples), rel=0.35)  # sample std of >= 10 draws
    assert t.converged == (t.stderr <= 1e-3 * abs(t.estimate))


def test_density_rests_on_the_exact_spectrum_and_has_its_moments(tiny, summary):
    _, _, H, w, _ = tiny
    n, d = H.shape[0], summary.density
    assert d.nodes.shape == d.weights.shape == (6, n) and d.matvecs == 6 * n
    np.testing.assert_allclose(d.weights.sum(axis=1), 1.0, atol=1e-10)
    # A full Krylov space: each run's nodes are eigenvalues of H, its weights the start vector's
    # squared components on them.
    used = d.nodes[d.weights > 1e-12]
    gap = np.min(np.abs(used[:, None] - w[None, :]), axis=1)
    assert gap.max() <= 1e-6 * w[-1], gap.max()
    for p in (1, 2):
        exact = np.mean(w**p)
        assert abs(d.moment(p) - exact) <= 4 * d.moment_stderr(p) + 1e-9, (p, d.moment(p), exact)
    assert np.trapezoid(d.density, d.grid) == pytest.approx(1.0, abs=1e-6)
    assert d.grid[0] < w[0] and d.grid[-1] > w[-1]
    assert summary.config["density_runs"] == 6 and summary.config["density_iters"] == n
    assert summary.config["sigma"] == pytest.approx(d.sigma)


def test_the_file_keeps_every_value(tiny, summary, tmp_path):
    path = write_summary(str(tmp_path / "h.h5"), summary)
    _, back = read_summary(path)
    np.testing.assert_array_equal(back.top_eigenvalues, summary.top_eigenvalues)
    assert (back.max_eig, back.min_eig, back.eig_ratio) == (summary.max_eig, summary.min_eig, summary.eig_ratio)
    assert back.trace.estimate == summary.trace.estimate and back.trace.samples == summary.trace.samples
    np.testing.assert_array_equal(back.density.density, summary.density.density)


def test_float32_summary_is_close_to_the_exact_one(tiny):
    """The default dtype: eigenvalues to the default tolerance's accuracy, relative to the largest."""
    model, data, _, w, _ = tiny
    s = summarize(model, data, top_k=2)
    np.testing.assert_allclose(s.top_eigenvalues, w[::-1][:2], atol=1e-3 * w[-1])
    assert abs(s.min_eig - w[0]) <= 1e-3 * w[-1]


def test_options_are_declared_once_and_checked(tiny):
    from landscape.cli.hessian import build_parser
    from landscape.errors import LandscapeError
    from landscape.hessian import SummaryOptions

    model, data, *_ = tiny
    opts = SummaryOptions(top_k=2, dtype=torch.float64, tol=1e-8)
    a = summarize(model, data, options=opts)
    b = summarize(model, data, top_k=2, dtype=torch.float64, tol=1e-8)  # the same fields as keywords
    np.testing.assert_array_equal(a.eigen.eigenvalues, b.eigen.eigenvalues)
    for bad in ({"top_k": 0}, {"tol": -1.0}, {"convention": "sum"}, {"dtype": torch.float16}, {"seed": -1},
                {"density_iters": 2.5}):
        with pytest.raises(LandscapeError) as info:
            SummaryOptions(**bad)
        assert "\n" not in str(info.value) and next(iter(bad)) in str(info.value)
    with pytest.raises(LandscapeError, match="no option 'topk'"):
        summarize(model, data, topk=2)
    ns = build_parser().parse_args(["--model", __file__, "--arch", "mlp"])  # the flags' defaults are the options'
    d = SummaryOptions()
    for name in ("top_k", "tol", "trace_tol", "trace_max_samples", "density_runs", "density_iters", "seed",
                 "convention"):
        assert getattr(ns, name) == getattr(d, name), name
