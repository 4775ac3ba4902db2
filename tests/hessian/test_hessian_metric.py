"""The convexity-map metric (EigMetric): fresh parameters, warm starts, a known map, the engine."""

from __future__ import annotations

import numpy as np
import pytest
import quadratic
import torch
from helpers import conv_data, convnet, exact_hessian, mlp, mlp_data

from landscape.errors import LandscapeError
from landscape.evaluation.metrics import Context, Point, config_of
from landscape.hessian import EigMetric, HessianOperator, eigenpairs
from landscape.space.grid import Grid, make_axis
from landscape.space.params import Mover, snapshot


def tiny() -> tuple[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    """A 103-parameter MLP and 40 samples: exact Hessians in milliseconds."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 10), torch.nn.Tanh(), torch.nn.Linear(10, 3))
    g = torch.Generator().manual_seed(1)
    return net, (torch.randn(40, 6, generator=g), torch.randint(0, 3, (40,), generator=g))


def quadratic_spectrum() -> tuple[float, float]:
    """``L(W) = mean_nk (W x_n - t_n)_k^2`` has Hessian ``(2 / (N K)) I_K (x) X^T X``: its extremes."""
    X, _ = quadratic.data()
    w = np.linalg.eigvalsh(X.double().T @ X.double() * 2 / (quadratic.N * quadratic.K))
    return float(w[-1]), float(w[0])


def test_names_and_config():
    m = EigMetric()
    assert tuple(m.names) == ("max_eig", "min_eig")
    cfg = config_of(m)
    assert cfg["tol"] == 1e-3 and cfg["params"] == "all" and cfg["convention"] == "mean"
    assert cfg["dtype"] == "float32" and cfg["class"] == "EigMetric"
    cfg = EigMetric(tol=1e-5, params="original", convention="batch_sum", dtype=torch.float64, batch_size=16).config()
    assert cfg == {"tol": 1e-5, "params": "original", "convention": "batch_sum", "dtype": "float64",
                   "method": "lanczos", "floor": 0.1, "warm_floor": 0.2, "batch_size": 16}
    with pytest.raises(LandscapeError):
        EigMetric(tol=0)
    with pytest.raises(LandscapeError, match="data"):
        EigMetric()(mlp())


def test_reads_the_parameters_afresh():
    model, (X, y) = tiny()
    metric = EigMetric(data=(X, y))
    before = metric(model)
    w0 = np.linalg.eigvalsh(exact_hessian(model, X, y))
    with torch.no_grad():  # move the model in place, as the engine's Mover does
        model[0].weight.mul_(1.7)
        model[2].weight.add_(0.3)
    after = metric(model)
    w1 = np.linalg.eigvalsh(exact_hessian(model, X, y))
    for values, w in ((before, w0), (after, w1)):
        assert abs(values["max_eig"] - w[-1]) <= 1e-3 * w[-1]
        assert abs(values["min_eig"] - w[0]) <= 1e-3 * w[-1]
    assert abs(after["max_eig"] - before["max_eig"]) > 0.05 * before["max_eig"]
    assert metric.history[1]["warm_from"] is not None  # no grid: started from the previous call


def run_grid(metric: EigMetric, model, X, y, grid: Grid, direction_seed: int = 0, order=None) -> dict:
    """What the engine does: setup once, then move the model to each point and call the metric."""
    origin = snapshot(model)
    g = torch.Generator().manual_seed(direction_seed)
    dirs = [{k: 0.2 * torch.randn(v.shape, generator=g) * v.norm() / v.numel() ** 0.5 for k, v in origin.items()}
            for _ in range(grid.ndim)]
    mover = Mover(model, origin, dirs)
    from landscape.data.batches import as_batches

    ctx = Context(model, torch.device("cpu"), data=as_batches((X, y), "cpu", 16), loss_fn=None, grid=grid)
    metric.setup(ctx)
    out = {}
    for p in (order if order is not None else range(grid.size)):
        ctx.point = Point(p, grid.point(p))
        mover.move_(grid.point(p))
        out[p] = metric(model)
    mover.restore_()
    return out


def test_warm_starts_from_a_neighbour_and_cuts_products():
    model, (X, y) = convnet(), conv_data()
    grid = Grid(make_axis((-0.5, 0.5, 3)), make_axis((-0.5, 0.5, 2)))
    warm = EigMetric(seed=0)
    values = run_grid(warm, model, X, y, grid)
    cold = EigMetric(seed=0, warm_start=False)
    ref = run_grid(cold, model, X, y, grid)
    shape = grid.shape
    for rec in warm.history[1:]:  # every point after the first starts from a grid neighbour
        a = np.unravel_index(rec["index"], shape)
        b = np.unravel_index(rec["warm_from"], shape)
        assert max(abs(i - j) for i, j in zip(a, b, strict=True)) == 1
    for p in values:
        scale = ref[p]["max_eig"]
        assert abs(values[p]["max_eig"] - ref[p]["max_eig"]) <= 2e-3 * scale
        assert abs(values[p]["min_eig"] - ref[p]["min_eig"]) <= 2e-3 * scale
    spent = sum(r["matvecs"] for r in warm.history[1:])
    spent_cold = sum(r["matvecs"] for r in cold.history[1:])
    assert spent <= 0.85 * spent_cold, (spent, spent_cold)


def test_out_of_order_points_use_only_neighbours():
    model, (X, y) = tiny()
    grid = Grid(make_axis((-1, 1, 5)))
    metric = EigMetric(seed=0)
    run_grid(metric, model, X, y, grid, order=[0, 4, 2, 3, 1])
    by_index = {r["index"]: r["warm_from"] for r in metric.history}
    # 3's neighbours 2 and 4 are both done: the more recent (2) wins; 1's: 0 and 2, 2 the more recent.
    assert by_index == {0: None, 4: None, 2: None, 3: 2, 1: 2}
    small = EigMetric(seed=0, cache_size=1)  # a cache of one point: only the previous point is kept
    run_grid(small, model, X, y, grid, order=[0, 4, 1])
    assert [r["warm_from"] for r in small.history] == [None, None, None]


def test_a_quadratic_loss_gives_its_known_map():
    model = quadratic.model()
    X, t = quadratic.data()
    top, low = quadratic_spectrum()
    grid = Grid(make_axis((-1, 1, 3)), make_axis((-2, 2, 3)))
    metric = EigMetric(tol=1e-8, dtype=torch.float64, loss_fn="mse")
    origin = snapshot(model)
    dirs = [{k: torch.randn_like(v) for k, v in origin.items()} for _ in range(2)]
    mover = Mover(model, origin, dirs)
    from landscape.data.batches import as_batches

    ctx = Context(model, torch.device("cpu"), data=as_batches((X, t), "cpu", 10), loss_fn=None, grid=grid)
    metric.setup(ctx)
    for p in range(grid.size):
        ctx.point = Point(p, grid.point(p))
        mover.move_(grid.point(p))
        v = metric(model)
        assert v["max_eig"] == pytest.approx(top, rel=1e-6)
        assert v["min_eig"] == pytest.approx(low, rel=1e-6)


def test_through_the_engine_with_a_known_map(tmp_path):
    import landscape as ls  # the project's own module: fail, never skip, when it breaks

    model = quadratic.model()
    X, t = quadratic.data()
    top, low = quadratic_spectrum()
    surf = ls.surface(model, (X, t), Grid((-1, 1, 3), (-1, 1, 2)), metrics=[EigMetric(tol=1e-6)],
                          evaluation=ls.EvalOptions(loss_fn="mse", threads=1),
                          output=ls.Output(tmp_path / "s.h5", progress=False))
    np.testing.assert_allclose(surf.values["max_eig"], top, rtol=1e-4)
    np.testing.assert_allclose(surf.values["min_eig"], low, rtol=1e-4)
    assert surf.values["max_eig"].shape == (2, 3)


def test_batch_sum_metric_scale():
    model, (X, y) = mlp(), mlp_data()  # 48 samples: 4 batches of 12
    mean = EigMetric(data=(X, y), dtype=torch.float64, tol=1e-8)(model)
    summed = EigMetric(data=(X, y), dtype=torch.float64, tol=1e-8, convention="batch_sum", batch_size=12)(model)
    assert summed["max_eig"] == pytest.approx(4 * mean["max_eig"], rel=1e-6)
    assert summed["min_eig"] == pytest.approx(4 * mean["min_eig"], rel=1e-6)


def test_tolerance_option_changes_the_accuracy():
    model, (X, y) = tiny()
    w = np.linalg.eigvalsh(exact_hessian(model, X, y))
    loose = EigMetric(data=(X, y), tol=1e-1)
    tight = EigMetric(data=(X, y), tol=1e-6)
    a, b = loose(model), tight(model)
    assert loose.last.matvecs < tight.last.matvecs
    assert abs(b["min_eig"] - w[0]) <= 1e-5 * w[-1] and abs(b["max_eig"] - w[-1]) <= 1e-5 * w[-1]
    assert abs(a["max_eig"] - w[-1]) <= 1e-1 * w[-1]
    assert np.all(loose.last.residuals <= 1e-1 * abs(a["max_eig"]))


def test_operator_and_metric_agree():
    model, (X, y) = tiny()
    metric = EigMetric(data=(X, y), tol=1e-6)
    v = metric(model)
    r = eigenpairs(HessianOperator(model, (X, y)), which="both_ends", tol=1e-6)
    assert v["max_eig"] == pytest.approx(r.max, rel=1e-5)
    assert v["min_eig"] == pytest.approx(r.min, rel=1e-4)
