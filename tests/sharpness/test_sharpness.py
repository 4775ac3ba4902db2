"""landscape.sharpness against closed forms, invariances, costs, errors, and MPI against serial.

The closed forms use a bias-free linear map under mean squared error (as tests/quadratic.py):
``L(W) = mean_{n,k} (W x_n - t_n)_k^2`` is exactly quadratic in W, with Hessian
``H = I_K (x) 2 X^T X / (N K)`` (row-major W), so at the least-squares minimizer
``L(W* + D) - L(W*) = 1/2 vec(D)^T H vec(D)`` with no approximation.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from landscape import sharpness
from landscape.errors import LandscapeError
from landscape.sharpness.perturbation import cpu_copy, draw, sample_generator

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
    res = sharpness.average_case(model, data, radius=r, norm="none", loss_fn="mse", seed=0, samples=200, tol=0)
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
    loose = sharpness.average_case(model, data, radius=0.02, norm="none", loss_fn="mse", tol=0.5, samples=200)
    assert loose.converged and loose.samples == 10 and loose.stderr <= 0.5 * loose.value
    tight = sharpness.average_case(model, data, radius=0.02, norm="none", loss_fn="mse", tol=1e-6, samples=30)
    assert not tight.converged and tight.samples == 30
    assert np.array_equal(tight.values[:10], loose.values)  # sample k is the same draw either way


def test_worst_case_p2_at_the_minimizer_is_radius_squared_lambda_max_over_two():
    model, data, H = quadratic_minimizer()
    r = 0.05
    res = sharpness.worst_case(model, data, radius=r, norm="none", loss_fn="mse", steps=20, p=2)
    lam = np.linalg.eigvalsh(H)[-1]
    assert res.value == pytest.approx(r * r * lam / 2, rel=1e-3)
    d = res.delta["weight"].double().numpy().ravel()
    assert np.linalg.norm(d) == pytest.approx(r, rel=1e-5)  # on the sphere
    assert 0.5 * d @ H @ d == pytest.approx(res.value, rel=1e-3)
    assert (res.forward, res.backward) == (21, 20)


def test_epsilon_against_the_closed_form_and_brute_force():
    """With an entrywise-positive PSD Hessian the maximum of 1/2 d^T H d over the box |d_i| <= b_i
    is at d = b (|d^T H d| <= |d|^T H |d|); brute force over the vertices of one row agrees."""
    model, data, H = quadratic_minimizer()
    eps = 1e-3
    w = model.weight.detach().double().numpy().ravel()
    b = eps * (np.abs(w) + 1)
    res = sharpness.epsilon(model, data, eps=eps, loss_fn="mse")
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
    res = sharpness.worst_case(model, data, radius=0.05, norm="none", loss_fn="mse", steps=5, m=m)
    each = [sharpness.worst_case(model, (x[i:i + m], t[i:i + m]), radius=0.05, norm="none", loss_fn="mse",
                                 steps=5, seed=0).value for i in range(0, N, m)]
    # every batch uses its own generator (seed, j): compare with the plain loop up to the random
    # fallback, which the minimizer's non-zero per-batch gradient never needs
    assert res.value == pytest.approx(np.mean(each), rel=1e-6)
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
        return {
            "avg_filter": sharpness.average_case(model, data, radius=r, norm="filter", seed=3, samples=10, tol=0).value,
            "avg_elementwise": sharpness.average_case(model, data, radius=r, norm="elementwise", seed=3, samples=10,
                                                      tol=0).value,
            "avg_none": sharpness.average_case(model, data, radius=r, norm="none", seed=3, samples=10, tol=0).value,
            "worst_filter": sharpness.worst_case(model, data, radius=r, norm="filter", steps=5).value,
            "worst_elementwise": sharpness.worst_case(model, data, radius=r, norm="elementwise", steps=5,
                                                      p="inf").value,
            "worst_none": sharpness.worst_case(model, data, radius=r, norm="none", steps=5).value,
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

    res = sharpness.average_case(a, data, radius=0.05, norm="filter", samples=20, tol=0, batch_size=32,
                                 forward_fn=counting)
    full = [c for c in calls if c == 32]
    assert len(full) == 21 * 3  # 20 samples and the minimizer, 3 batches each (plus the 2-sample fit check)
    assert res.forward == 21 and res.samples == 20
    calls.clear()
    res = sharpness.worst_case(a, data, radius=0.05, norm="filter", steps=20, batch_size=32, forward_fn=counting)
    assert len([c for c in calls if c == 32]) == 21 * 3 and (res.forward, res.backward) == (21, 20)
    assert a.training
    for k, v in a.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_curvature_of_the_quadratic_along_its_direction():
    """Along a filter-normalized direction d the quadratic's surface is 1/2 a^2 d^T H d exactly."""
    from landscape.directions.sampling import random_directions
    from landscape.space.params import snapshot

    model, data, H = quadratic_minimizer()
    res = sharpness.curvature(model, data, radius=0.5, points=7, loss_fn="mse", seed=4)
    d = random_directions({k: v.cpu() for k, v in snapshot(model).items()}, 1, "filter", "biasbn", 4)[0]
    dv = d["weight"].double().numpy().ravel()
    assert res.value == pytest.approx(dv @ H @ dv, rel=1e-3)
    res2 = sharpness.curvature(model, data, radius=0.5, points=5, ndim=2, loss_fn="mse", seed=4)
    assert res2.hessian.shape == (2, 2) and res2.value >= res.value * 0.5


def test_hessian_measures_match_numpy():
    model, data, H = quadratic_minimizer()
    lam = sharpness.lambda_max(model, data, loss_fn="mse")
    assert lam.value == pytest.approx(np.linalg.eigvalsh(H)[-1], rel=1e-3)
    tr = sharpness.trace(model, data, loss_fn="mse", tol=0.02)
    assert abs(tr.value - np.trace(H)) <= 4 * tr.stderr + 1e-6


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
    (lambda m, d: sharpness.average_case(m, d, radius=0.1, norm="layer"), "norm must be one of"),
    (lambda m, d: sharpness.worst_case(m, d, radius=0.1, p=1), "p must be 2 or 'inf'"),
    (lambda m, d: sharpness.worst_case(m, d, radius=0.1, steps=0), "steps must be at least 1"),
    (lambda m, d: sharpness.worst_case(m, d, radius=0.1, m=0), "m must be at least 1"),
    (lambda m, d: sharpness.epsilon(m, d, eps=0), "eps must be a positive number"),
    (lambda m, d: sharpness.average_case(m, d, radius=0.1, samples=0), "samples must be at least 1"),
])
def test_errors_are_one_line(call, message):
    model, data, _ = quadratic_minimizer()
    with pytest.raises(LandscapeError) as info:
        call(model, data)
    assert message in str(info.value) and "\n" not in str(info.value)


ROOT = Path(__file__).resolve().parents[2]
JOB = r"""
import json, sys, torch
sys.path.insert(0, {root!r})
from landscape import sharpness
from landscape.data.datasets import load_dataset
from landscape.models import build_model
from landscape.runtime.parallel import world
torch.manual_seed(0)
torch.set_num_threads(1)
model = build_model("digits_cnn", num_classes=10, in_channels=1)
data = load_dataset("digits", split="train")
data, _ = data.subset(256, 0)
avg = sharpness.average_case(model, data, radius=0.05, norm="filter", samples=12, tol=0, seed=1)
worst = sharpness.worst_case(model, data, radius=0.05, norm="filter", steps=3, m=64)
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
