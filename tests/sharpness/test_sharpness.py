"""landscape.sharpness against closed forms, invariances, costs, errors, and MPI against serial.

The closed forms use a bias-free linear map under mean squared error (as tests/quadratic.py):
``L(W) = mean_{n,k} (W x_n - t_n)_k^2`` is exactly quadratic in W, with Hessian
``H = I_K (x) 2 X^T X / (N K)`` (row-major W), so at the least-squares minimizer
``L(W* + D) - L(W*) = 1/2 vec(D)^T H vec(D)`` with no approximation.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import landscape as ls
from landscape import sharpness
from landscape.errors import LandscapeError
from landscape.sharpness.perturbation import cpu_copy, draw, sample_generator

NONE = ls.Directions(norm="none")
MSE = ls.EvalOptions(loss_fn="mse")

N, D, K = 64, 5, 3


def quadratic_minimizer(offset: float = 3.0):
    """The linear model at its least-squares minimizer, the data, and the Hessian (numpy)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, D, generator=g) + offset  # a common positive mean: the Gram matrix is entrywise positive
    t = x @ torch.randn(D, K, generator=g) + 0.3 * torch.randn(N, K, generator=g)
    model = nn.Linear(D, K, bias=False)
    w = np.linalg.lstsq(x.double().numpy(), t.double().numpy(), rcond=None)[0].T  # (K, D)
    with torch.no_grad():
        model.weight.copy_(torch.from_numpy(w))
    X = x.double().numpy()
    H = np.kron(np.eye(K), 2.0 * X.T @ X / (N * K))
    return model, (x, t), H


def test_average_case_none_is_radius_squared_trace_over_two():
    model, data, H = quadratic_minimizer()
    r = 0.02
    res = sharpness.average_case(model, data, radius=r, directions=NONE, evaluation=MSE, samples=200, tol=0)
    expected = r * r * np.trace(H) / 2
    assert res.samples == 200 and np.isfinite(res.stderr) and res.stderr > 0
    assert abs(res.value - expected) <= 3 * res.stderr, (res.value, expected, res.stderr)
    assert res.stderr < 0.2 * expected  # the test has power: a wrong factor of 2 would fail
    # each sample is exactly 1/2 d^T H d: check the first against its own draw
    d = draw(cpu_copy(dict(model.named_parameters())), "none", "biasbn", r,
                          sample_generator(0, 0))["weight"].double().numpy().ravel()
    assert res.values[0] == pytest.approx(0.5 * d @ H @ d, rel=1e-3)


def test_average_case_stops_at_its_tolerance():
    model, data, _ = quadratic_minimizer()
    loose = sharpness.average_case(model, data, radius=0.02, directions=NONE, evaluation=MSE, tol=0.5, samples=200)
    assert loose.converged and loose.samples == 10 and loose.stderr <= 0.5 * loose.value
    tight = sharpness.average_case(model, data, radius=0.02, directions=NONE, evaluation=MSE, tol=1e-6, samples=30)
    assert not tight.converged and tight.samples == 30
    assert np.array_equal(tight.values[:10], loose.values)  # sample k is the same draw either way


def test_worst_case_p2_at_the_minimizer_is_radius_squared_lambda_max_over_two():
    model, data, H = quadratic_minimizer()
    r = 0.05
    res = sharpness.worst_case(model, data, radius=r, directions=NONE, evaluation=MSE)
    lam = np.linalg.eigvalsh(H)[-1]
    assert res.value == pytest.approx(r * r * lam / 2, rel=1e-3)
    d = res.delta["weight"].double().numpy().ravel()
    assert np.linalg.norm(d) == pytest.approx(r, rel=1e-5)  # on the sphere
    assert 0.5 * d @ H @ d == pytest.approx(res.value, rel=1e-3)
    assert res.converged and res.restarts == 3 and res.steps == 20 and res.hvps > 0


def test_epsilon_against_the_closed_form_and_brute_force():
    """With an entrywise-positive PSD Hessian the maximum of 1/2 d^T H d over the box |d_i| <= b_i
    is at d = b (|d^T H d| <= |d|^T H |d|); brute force over the vertices of one row agrees."""
    model, data, H = quadratic_minimizer()
    eps = 1e-3
    w = model.weight.detach().double().numpy().ravel()
    b = eps * (np.abs(w) + 1)
    res = sharpness.epsilon(model, data, eps=eps, evaluation=MSE)
    rise = 0.5 * b @ H @ b
    assert res.value == pytest.approx(100 * rise / (1 + res.loss), rel=1e-3)
    # brute force: every vertex of the box (rows are independent blocks of H)
    best = 0.0
    blocks = [slice(k * D, (k + 1) * D) for k in range(K)]
    for blk in blocks:
        hb, bb = H[blk, blk], b[blk]
        best += max(0.5 * (s * bb) @ hb @ (s * bb) for s in itertools.product((-1, 1), repeat=D))
    assert rise == pytest.approx(best, rel=1e-9)


def test_m_sharpness_averages_each_batch_maximum():
    """m-sharpness over batches of m samples is the mean of each batch's own worst case."""
    model, data, _ = quadratic_minimizer()
    x, t = data
    m = 16
    res = sharpness.worst_case(model, data, radius=0.05, directions=NONE, evaluation=MSE, steps=5, m=m)
    each = [sharpness.worst_case(model, (x[i:i + m], t[i:i + m]), radius=0.05, directions=NONE, evaluation=MSE,
                                 steps=5).value for i in range(0, N, m)]
    # every batch uses its own generators (seed, j), the plain loop (seed, 0): the same maxima,
    # found from other random points
    assert res.value == pytest.approx(np.mean(each), rel=1e-4)
    assert res.delta is None and res.m == m


class ScaledNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def bn_pair(alpha: float = 0.25):
    """A conv feeding BatchNorm, and the same network with the conv scaled by alpha (running
    statistics and eps scaled with it): the same function."""
    torch.manual_seed(0)
    a = ScaledNet()
    with torch.no_grad():
        a.bn.running_mean.uniform_(-0.2, 0.2)
        a.bn.running_var.uniform_(0.5, 2.0)
        a.bn.weight.uniform_(0.5, 1.5)
    b = ScaledNet()
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b.conv.weight.mul_(alpha)
        b.bn.running_mean.mul_(alpha)
        b.bn.running_var.mul_(alpha ** 2)
    b.bn.eps = a.bn.eps * alpha ** 2
    g = torch.Generator().manual_seed(1)
    data = (torch.randn(96, 1, 8, 8, generator=g), torch.randint(0, 10, (96,), generator=g))
    return a, b, data


def test_invariance_under_a_rescaled_conv_feeding_batchnorm():
    a, b, data = bn_pair()
    with torch.no_grad():
        assert torch.allclose(a(data[0]), b(data[0]), atol=1e-5)  # the same function
    r = 0.1

    def measures(model):
        def dirs(norm):
            return ls.Directions(norm=norm, seed=3)

        return {
            "avg_filter": sharpness.average_case(model, data, radius=r, directions=dirs("filter"), samples=10,
                                                 tol=0).value,
            "avg_elementwise": sharpness.average_case(model, data, radius=r, directions=dirs("elementwise"),
                                                      samples=10, tol=0).value,
            "avg_none": sharpness.average_case(model, data, radius=r, directions=dirs("none"), samples=10,
                                               tol=0).value,
            "worst_filter": sharpness.worst_case(model, data, radius=r, directions=dirs("filter"), steps=5).value,
            "worst_elementwise": sharpness.worst_case(model, data, radius=r, directions=dirs("elementwise"), steps=5,
                                                      p="inf").value,
            "worst_none": sharpness.worst_case(model, data, radius=r, directions=dirs("none"), steps=5).value,
        }

    ma, mb = measures(a), measures(b)
    for name in ("avg_filter", "avg_elementwise", "worst_filter", "worst_elementwise"):
        assert mb[name] == pytest.approx(ma[name], rel=2e-3, abs=1e-7), name
    for name in ("avg_none", "worst_none"):
        assert abs(mb[name] - ma[name]) > 0.05 * abs(ma[name]), (name, ma[name], mb[name])


def test_the_model_is_put_back_and_cost_is_counted():
    a, _, data = bn_pair()
    a.train()
    before = {k: v.clone() for k, v in a.state_dict().items()}
    calls = []

    def counting(model, batch):
        calls.append(len(batch[0]))
        return model(batch[0])

    counted = ls.EvalOptions(batch_size=32, forward_fn=counting)
    res = sharpness.average_case(a, data, radius=0.05, samples=20, tol=0, evaluation=counted)
    full = [c for c in calls if c == 32]
    assert len(full) == 21 * 3  # 20 samples and the minimizer, 3 batches each (plus the 2-sample fit check)
    assert res.forward == 21 and res.samples == 20
    calls.clear()
    res = sharpness.worst_case(a, data, radius=0.05, steps=20, evaluation=counted)
    assert len([c for c in calls if c == 32]) == res.forward * 3  # every forward pass counted, 3 batches each
    assert res.forward <= 1 + 2 + res.restarts * 21 + 1  # the minimizer, the signs, the ascents, the products' graphs
    assert a.training
    for k, v in a.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_curvature_of_the_quadratic_along_its_direction():
    """Along a filter-normalized direction d the quadratic's surface is 1/2 a^2 d^T H d exactly."""
    from landscape.directions.sampling import random_directions
    from landscape.space.params import snapshot

    model, data, H = quadratic_minimizer()
    res = sharpness.curvature(model, data, radius=0.5, points=7, directions=ls.Directions(seed=4), evaluation=MSE)
    d = random_directions({k: v.cpu() for k, v in snapshot(model).items()}, 1, "filter", "biasbn", 4)[0]
    dv = d["weight"].double().numpy().ravel()
    assert res.value == pytest.approx(dv @ H @ dv, rel=1e-3)
    res2 = sharpness.curvature(model, data, radius=0.5, points=5, ndim=2, directions=ls.Directions(seed=4),
                               evaluation=MSE)
    assert res2.hessian.shape == (2, 2) and res2.value >= res.value * 0.5


def test_hessian_measures_match_numpy():
    model, data, H = quadratic_minimizer()
    lam = sharpness.lambda_max(model, data, evaluation=MSE)
    assert lam.value == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-3) and lam.converged
    tr = sharpness.hessian_trace(model, data, evaluation=MSE, tol=0.02)
    assert abs(tr.value - np.trace(H)) <= 4 * tr.stderr + 1e-6
    assert tr.measure == "hessian_trace" and tr.ignore == "none"


def test_kendall_against_scipy_and_warns_for_few_minima():
    from scipy.stats import kendalltau

    c = sharpness.kendall("m", [1.0, 2.0, 3.0, 5.0], [0.1, 0.3, 0.2, 0.4])
    ref = kendalltau([1.0, 2.0, 3.0, 5.0], [0.1, 0.3, 0.2, 0.4])
    assert c.tau == pytest.approx(ref.statistic) and c.p_value == pytest.approx(ref.pvalue)
    assert "proves little" in c.warning
    with pytest.raises(LandscapeError):
        sharpness.kendall("m", [1.0], [2.0])


@pytest.mark.parametrize("call, message", [
    (lambda m, d: sharpness.average_case(m, d, radius=0.0), "radius must be a positive number"),
    (lambda m, d: sharpness.average_case(m, d, radius=-1), "radius must be a positive number"),
    (lambda m, d: sharpness.average_case(m, d, radius=0.1, directions=ls.Directions(norm="layer")),
     "norm must be one of"),
    (lambda m, d: sharpness.average_case(m, d, radius=0.1, directions=ls.Directions(norm=("filter", "none"))),
     "one norm"),
    (lambda m, d: sharpness.average_case(m, d, radius=0.1, directions=ls.Directions(dir_type="states")),
     "surface option"),
    (lambda m, d: sharpness.average_case(m, d, radius=0.1, directions="filter"), "must be a landscape.Directions"),
    (lambda m, d: sharpness.average_case(m, d, radius=0.1, evaluation=ls.EvalOptions(bn_recompute=2)),
     "BatchNorm"),
    (lambda m, d: sharpness.worst_case(m, d, radius=0.1, evaluation=ls.EvalOptions(precision="bf16")), "float32"),
    (lambda m, d: sharpness.worst_case(m, d, radius=0.1, p=1), "p must be 2 or 'inf'"),
    (lambda m, d: sharpness.worst_case(m, d, radius=0.1, steps=0), "steps must be a whole number of at least 1"),
    (lambda m, d: sharpness.worst_case(m, d, radius=0.1, restarts=0), "restarts must be a whole number"),
    (lambda m, d: sharpness.epsilon(m, d, eps=1e-3, restarts=-1), "restarts must be a whole number"),
    (lambda m, d: sharpness.worst_case(m, d, radius=0.1, m=0), "m must be a whole number"),
    (lambda m, d: sharpness.epsilon(m, d, eps=0), "eps must be a positive number"),
    (lambda m, d: sharpness.average_case(m, d, radius=0.1, samples=0), "samples must be a whole number"),
    (lambda m, d: sharpness.hessian_trace(m, d, max_samples=0), "max_samples must be a whole number"),
])
def test_errors_are_one_line(call, message):
    model, data, _ = quadratic_minimizer()
    with pytest.raises(LandscapeError) as info:
        call(model, data)
    assert message in str(info.value) and "\n" not in str(info.value)


# -- the maximizers against exact maxima, with default settings ----------------------------------------------


def rotated(eigenvalues, rng) -> np.ndarray:
    """A symmetric matrix with the given eigenvalues and random eigenvectors."""
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return q @ np.diag(eigenvalues) @ q.T


def vertex_maximum(H: np.ndarray, bounds: np.ndarray) -> float:
    """max 1/2 d^T H d over the box |d_i| <= b_i, by enumerating its vertices (H positive
    definite: the maximum of a convex function over a box is at a vertex)."""
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=len(bounds))))
    d = signs * bounds
    return float((0.5 * np.einsum("vi,ij,vj->v", d, H, d)).max())


@pytest.mark.parametrize("instance", range(5))
def test_worst_case_inf_and_epsilon_reach_the_vertex_maximum(instance):
    """General positive definite quadratics (eigenvalues uniform on [0.2, 4], random eigenvectors,
    dimension 6 to 12): the maximum over the box, found by enumerating its 2^n vertices. The
    first-order ascent of 0.2 reached 61 % (worst case) and 66 % (epsilon) of it."""
    import quadratic

    rng = np.random.default_rng(100 + instance)
    n = int(rng.integers(6, 13))
    H = rotated(rng.uniform(0.2, 4.0, n), rng)
    model, data = quadratic.with_hessian(H, seed=instance)
    r = 0.1
    res = sharpness.worst_case(model, data, radius=r, p="inf", directions=NONE, evaluation=MSE)
    exact = vertex_maximum(H, np.full(n, r))
    assert 0.98 * exact <= res.value <= exact * (1 + 1e-4) + 1e-7, (res.value, exact)
    assert res.converged and res.restarts == 3
    w = model.weight.detach().double().numpy().ravel()
    eps = 1e-2
    e = sharpness.epsilon(model, data, eps=eps, evaluation=MSE)
    exact = 100 * vertex_maximum(H, eps * (np.abs(w) + 1)) / (1 + e.loss)
    assert 0.98 * exact <= e.value <= exact * (1 + 1e-4) + 1e-7, (e.value, exact)
    assert e.converged
    d = e.delta["weight"].double().numpy().ravel()
    assert np.all(np.abs(d) <= eps * (np.abs(w) + 1) * (1 + 1e-6))  # inside Keskar's box


@pytest.mark.parametrize("instance", range(3))
def test_worst_case_p2_on_a_slowly_separating_spectrum(instance):
    """24 eigenvalues evenly spread over [0.2, 4]: gradient ascent creeps towards the top
    eigenvector as power iteration does (90 % of the maximum at 20 steps in 0.2); the maximum over
    the ball is radius^2 lambda_max / 2."""
    import quadratic

    rng = np.random.default_rng(200 + instance)
    H = rotated(np.linspace(0.2, 4.0, 24), rng)
    model, data = quadratic.with_hessian(H, seed=instance)
    r = 0.1
    res = sharpness.worst_case(model, data, radius=r, directions=NONE, evaluation=MSE)
    exact = r * r * 4.0 / 2
    assert 0.98 * exact <= res.value <= exact * (1 + 1e-4), (res.value, exact)
    assert res.converged


def test_converged_says_when_the_steps_ran_out():
    """One step from the gradient alone (a restart of one ascent) cannot settle: not converged."""
    import quadratic

    rng = np.random.default_rng(7)
    H = rotated(np.linspace(0.2, 4.0, 24), rng)
    model, data = quadratic.with_hessian(H, noise=1.0)
    res = sharpness.worst_case(model, data, radius=0.5, directions=NONE, evaluation=MSE, steps=1, restarts=1)
    assert res.steps == 1 and res.restarts == 1
    full = sharpness.worst_case(model, data, radius=0.5, directions=NONE, evaluation=MSE)
    assert full.value >= res.value and full.converged


# -- each measure's defaults against a direct implementation of its paper's definition ------------------------


def plain_loss(model, data) -> float:
    with torch.no_grad():
        return float(torch.nn.functional.cross_entropy(model(data[0]), data[1]))


def perturbed(model, delta: dict) -> nn.Module:
    other = copy.deepcopy(model).eval()
    with torch.no_grad():
        for k, p in other.named_parameters():
            p.add_(delta[k])
    return other


def test_elementwise_average_case_is_andriushchenko_et_al_over_every_parameter():
    """Adaptive average-case sharpness: delta ~ N(0, rho^2 diag(theta^2)) over every parameter,
    biases and BatchNorm's included (their code perturbs model.parameters()); written out here as
    a plain loop over the same draws."""
    a, _, data = bn_pair()
    a.eval()
    rho, seed = 0.05, 5
    res = sharpness.average_case(a, data, radius=rho, directions=ls.Directions(norm="elementwise", seed=seed),
                                 samples=6, tol=0)
    assert res.ignore == "none" and "Andriushchenko" in res.paper
    base = plain_loss(a, data)
    rises = []
    for k in range(6):
        g = sample_generator(seed, k)
        delta = {name: torch.randn(p.shape, generator=g) * p.detach().abs() * rho for name, p in a.named_parameters()}
        rises.append(plain_loss(perturbed(a, delta), data) - base)
    np.testing.assert_allclose(res.values, rises, rtol=1e-4, atol=1e-6)
    assert a.bn.weight.abs().sum() > 0  # a BatchNorm parameter is there to be perturbed


def test_filter_average_case_is_the_surfaces_direction_times_the_radius():
    """Filter normalization keeps the original tool's rule: biases and BatchNorm left out; each
    sample is the surfaces' random direction (landscape.directions) times the radius."""
    from landscape.directions.sampling import random_direction
    from landscape.space.params import snapshot

    a, _, data = bn_pair()
    a.eval()
    res = sharpness.average_case(a, data, radius=0.1, directions=ls.Directions(seed=2), samples=3, tol=0)
    assert res.norm == "filter" and res.ignore == "biasbn" and "Li et al." in res.paper
    base = plain_loss(a, data)
    origin = {k: v.cpu() for k, v in snapshot(a).items()}
    for k in range(3):
        d = random_direction(origin, "filter", "biasbn", sample_generator(2, k))
        assert not d["bn.weight"].any() and not d["fc.bias"].any()
        delta = {name: 0.1 * d[name] for name in d}
        assert res.values[k] == pytest.approx(plain_loss(perturbed(a, delta), data) - base, rel=1e-4, abs=1e-6)


def test_worst_case_defaults_follow_their_papers():
    """Elementwise: every parameter in the ellipsoid ||delta / |theta| ||_2 <= rho (biases and BN
    perturbed); filter: 1-D tensors untouched; the value is the loss rise at the returned delta."""
    a, _, data = bn_pair()
    a.eval()
    base = plain_loss(a, data)
    ada = sharpness.worst_case(a, data, radius=0.05, directions=ls.Directions(norm="elementwise"))
    assert ada.ignore == "none" and "Andriushchenko" in ada.paper
    assert ada.delta["bn.weight"].abs().sum() > 0 and ada.delta["fc.bias"].abs().sum() > 0
    params = dict(a.named_parameters())
    scaled = math.sqrt(sum(float(((ada.delta[k] / params[k].detach().abs()) ** 2).nan_to_num().sum())
                           for k in params))  # |theta_i| = 0 (a zero bias): delta_i = 0 there
    assert scaled == pytest.approx(0.05, rel=1e-4)
    assert ada.value == pytest.approx(plain_loss(perturbed(a, ada.delta), data) - base, rel=1e-4, abs=1e-6)
    flt = sharpness.worst_case(a, data, radius=0.05)
    assert flt.ignore == "biasbn" and not flt.delta["bn.weight"].any() and not flt.delta["fc.bias"].any()
    assert flt.value == pytest.approx(plain_loss(perturbed(a, flt.delta), data) - base, rel=1e-4, abs=1e-6)


def test_epsilon_is_keskar_et_al_over_every_parameter():
    """Keskar et al.: the box |delta_i| <= eps (|theta_i| + 1) over every parameter, in percent
    of 1 + L(theta)."""
    a, _, data = bn_pair()
    a.eval()
    eps = 1e-3
    res = sharpness.epsilon(a, data, eps=eps)
    assert res.ignore == "none" and "Keskar" in res.paper
    base = plain_loss(a, data)
    for k, p in a.named_parameters():
        bound = eps * (p.detach().abs() + 1)
        assert bool((res.delta[k].abs() <= bound * (1 + 1e-5)).all()), k
    assert res.delta["bn.bias"].abs().sum() > 0
    rise = plain_loss(perturbed(a, res.delta), data) - base
    assert res.value == pytest.approx(100 * rise / (1 + base), rel=1e-4, abs=1e-4)


def test_hessian_measures_take_every_parameter():
    """lambda_max (Keskar et al.; PyHessian) over every parameter: against the largest eigenvalue of
    the Hessian of the mean loss written out with torch.func, biases and BatchNorm included (and
    not that of the weights alone)."""
    from torch.func import functional_call, hessian

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3)).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.5, 0.5)
        net[1].weight.uniform_(0.5, 2.0)
        net[1].bias.uniform_(-1.0, 1.0)
    g = torch.Generator().manual_seed(1)
    data = (torch.randn(64, 4, generator=g), torch.randint(0, 3, (64,), generator=g))
    names = [k for k, _ in net.named_parameters()]
    shapes = [p.shape for p in net.parameters()]
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).double()
    double = copy.deepcopy(net).double()

    def loss(v):
        parts = [c.view(s) for c, s in zip(v.split([math.prod(s) for s in shapes]), shapes, strict=True)]
        out = functional_call(double, dict(zip(names, parts, strict=True)), (data[0].double(),))
        return torch.nn.functional.cross_entropy(out, data[1])

    full = torch.linalg.eigvalsh(hessian(loss)(flat)).numpy()
    weights = np.concatenate([np.full(math.prod(s), len(s) > 1) for s in shapes])
    h = hessian(loss)(flat).numpy()
    alone = np.linalg.eigvalsh(h[np.ix_(weights, weights)])[-1]
    assert abs(alone - full[-1]) > 0.05 * full[-1]  # the test can tell the two apart
    res = sharpness.lambda_max(net, data, tol=1e-6)
    assert res.ignore == "none" and res.converged
    assert res.value == pytest.approx(float(full[-1]), rel=1e-4)
    tr = sharpness.hessian_trace(net, data)  # the same operator: every parameter
    assert abs(tr.value - float(full.sum())) <= 4 * tr.stderr

ROOT = Path(__file__).resolve().parents[2]
JOB = r"""
import json, sys, torch
sys.path.insert(0, {root!r})
from landscape import sharpness
from landscape.directions.options import Directions
from landscape.data.datasets import load_dataset
from landscape.models import build_model
from landscape.runtime.parallel import world
torch.manual_seed(0)
torch.set_num_threads(1)
model = build_model("digits_cnn", num_classes=10, in_channels=1)
data = load_dataset("digits", split="train")
data, _ = data.subset(256, 0)
avg = sharpness.average_case(model, data, radius=0.05, directions=Directions(seed=1), samples=12, tol=0)
worst = sharpness.worst_case(model, data, radius=0.05, steps=3, m=64)
if world().rank == 0:
    print(json.dumps({{"avg": avg.values.tolist(), "worst": worst.value}}))
"""


@pytest.mark.mpi
@pytest.mark.slow
def test_mpi_gives_the_serial_values(tmp_path):
    pytest.importorskip("mpi4py")
    from helpers import MPIRUN, launcher

    if MPIRUN is None:
        pytest.skip("no mpirun")
    script = tmp_path / "job.py"
    script.write_text(JOB.format(root=str(ROOT)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    serial = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert serial.returncode == 0, serial.stderr
    par = subprocess.run([*launcher(2), sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                         env=env)
    assert par.returncode == 0, par.stderr
    a, b = json.loads(serial.stdout.strip().splitlines()[-1]), json.loads(par.stdout.strip().splitlines()[-1])
    assert a == b
