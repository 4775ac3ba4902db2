"""The Markov-chain toy (Li et al., NIPS'17, Sec. 5) and its figure."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from landscape.cli.markov import main
from landscape.plot.quant import distribution, markov_figure, objective
from landscape.quant.markov import (
    RATES,
    Toy,
    compare_rates,
    simulate_bc,
    simulate_sr,
    spread,
    stationary_distribution,
    transition_matrix,
)


@pytest.mark.parametrize("lr", RATES)
def test_stationary_distribution_is_a_left_eigenvector_with_eigenvalue_one(lr):
    toy = Toy()
    T = transition_matrix(toy, lr)
    assert T.shape == (23, 23) and np.all(T >= 0)
    assert np.allclose(T.sum(1), 1.0, atol=1e-12)
    pi = stationary_distribution(T)
    assert pi.sum() == pytest.approx(1.0) and np.all(pi >= 0)
    assert np.allclose(pi @ T, pi, atol=1e-12)
    # the same vector as numpy's eigen-decomposition gives for the eigenvalue closest to 1
    values, vectors = np.linalg.eig(T.T)
    k = np.argmin(np.abs(values - 1))
    assert abs(values[k] - 1) < 1e-9
    v = np.real(vectors[:, k])
    assert np.allclose(v / v.sum(), pi, atol=1e-6)


def test_sr_spread_does_not_shrink_with_the_rate():
    toy = Toy()
    x = toy.states()
    sds, entropies = zip(*(spread(x, stationary_distribution(transition_matrix(toy, lr))) for lr in RATES),
                         strict=True)
    # rates 0.1 -> 0.01 -> 0.001: the distribution tends to a fixed, spread-out limit
    for a, b in zip(sds[1:], sds[2:], strict=False):
        assert b >= 0.97 * a
    assert sds[-1] > 2 * toy.delta and entropies[-1] > 1.5
    assert abs(sds[-1] - sds[-2]) < 0.01 * sds[-1]


def test_exact_matrix_matches_stochastic_rounding_simulated_with_the_quantizer():
    toy = Toy()
    x = toy.states()
    for lr, i in [(1.0, 5), (0.1, 10), (0.01, 3)]:
        chains = 40_000
        freq = simulate_sr(toy, lr, steps=1, chains=chains, seed=i, start=float(x[i]))
        row = transition_matrix(toy, lr)[i]
        tol = 5 * np.sqrt(row * (1 - row) / chains) + 1e-9
        assert np.all(np.abs(freq - row) <= tol), (lr, i)


def test_bc_concentrates_as_the_rate_shrinks_and_sr_does_not():
    toy = Toy()
    x = toy.states()
    bc = {lr: spread(x, simulate_bc(toy, lr, steps=2000, chains=400, seed=0))[1] for lr in (1.0, 0.01)}
    sr = spread(x, stationary_distribution(transition_matrix(toy, 0.01)))[1]
    assert bc[0.01] < 0.6 * bc[1.0]
    assert bc[0.01] < 0.8 * sr


def test_plot_functions_and_figure():
    result = compare_rates(rates=(1.0, 0.01), steps=50, chains=50)
    fig = markov_figure(result)
    assert isinstance(fig, Figure) and len(fig.axes) == 1 + 2 * 2
    fig2 = Figure()
    ax = fig2.subplots()
    assert isinstance(objective(ax, result.toy), Line2D)
    assert isinstance(distribution(ax, result.toy.states(), result.sr[0]), BarContainer)
    assert "| 0.01 |" in result.table()


def test_cli_writes_the_figure_and_rejects_bad_input(tmp_path, capsys):
    out = tmp_path / "markov.png"
    assert main(["--out", str(out), "--steps", "20", "--chains", "20", "--rates", "1,0.1"]) == 0
    assert out.stat().st_size > 10_000 and out.read_bytes()[:4] == b"\x89PNG"
    assert "| 0.1 |" in capsys.readouterr().out
    assert main(["--out", str(tmp_path / "m.png"), "--rates", "0,1"]) == 2
    assert main(["--out", str(tmp_path / "noext")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("landscape-markov: error:") for line in err)
