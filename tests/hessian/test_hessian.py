"""Hessian operator and algorithms against the exact Hessian (torch.autograd.functional.hessian)."""

from __future__ import annotations

import copy
import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import conv_data, convnet, digits_mlp, exact_hessian, mlp, mlp_data
from torch import nn

from landscape import hessian
from landscape.errors import LandscapeError

# ------------------------------------------------------------------------------ small networks


CASES = {"mlp": (mlp, mlp_data), "convnet": (convnet, conv_data)}


@functools.cache
def get_case(name: str):
    """``(name, model, X, y, exact Hessian, its eigenvalues)``, computed once per session."""
    make, data = CASES[name]
    model, (X, y) = make(), data()
    H = exact_hessian(model, X, y)
    return name, model, X, y, H, np.linalg.eigvalsh(H)


@pytest.fixture(params=list(CASES))
def case(request):
    return get_case(request.param)


def rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)) / np.abs(np.asarray(b))))


# ------------------------------------------------------------------------------- the operator


def test_products_equal_the_exact_hessian(case):
    _, model, X, y, H, _ = case
    V = np.random.default_rng(0).standard_normal((H.shape[0], 3))
    for dtype, tol in ((torch.float32, 2e-5), (torch.float64, 1e-11)):
        op = hessian.HessianOperator(model, (X, y), dtype=dtype, batch_size=20)
        assert op.size == H.shape[0]
        HV = op.matmat(V)
        assert HV.dtype == np.float64
        assert np.abs(HV - H @ V).max() <= tol * np.abs(H @ V).max()
        hv = op.matvec(V[:, 1])  # one vector, numpy in and out
        np.testing.assert_allclose(hv, HV[:, 1], rtol=0, atol=tol * np.abs(HV).max())
        ht = op.matvec(torch.from_numpy(V[:, 1]))  # torch in, torch float64 out
        assert torch.is_tensor(ht) and ht.dtype == torch.float64
        np.testing.assert_allclose(ht.numpy(), hv, rtol=0, atol=1e-12 * np.abs(hv).max())
        lin = op.as_linear_operator()
        np.testing.assert_allclose(lin @ V[:, 2], HV[:, 2], rtol=0, atol=tol * np.abs(HV).max())
    assert model.training  # the model's mode is put back (the products ran in eval mode)


class OddConvNet(nn.Module):
    """Strided, dilated, grouped, bias-free and 1-d convolutions, BatchNorm with and without affine."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.c1 = nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.b1 = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 6, 3, padding=2, dilation=2, groups=2, bias=False)
        self.c3 = nn.Conv1d(6, 4, 2)
        self.b3 = nn.BatchNorm1d(4, affine=False)
        self.fc = nn.Linear(4 * 7, 3)
        g = torch.Generator().manual_seed(4)
        with torch.no_grad():
            for b in (self.b1, self.b3):
                b.running_mean.uniform_(-1, 1, generator=g)
                b.running_var.uniform_(0.5, 2, generator=g)
            self.b1.weight.uniform_(0.5, 1.5, generator=g)

    def forward(self, x):
        x = torch.tanh(self.b1(self.c1(x)))
        x = torch.relu(self.c2(x)).mean(2)
        return self.fc(torch.tanh(self.b3(self.c3(x))).flatten(1))


def test_rewritten_layers_give_the_same_products():
    from landscape.hessian.layers import rewritten_layers

    model = OddConvNet().eval()
    g = torch.Generator().manual_seed(5)
    X, y = torch.randn(10, 3, 16, 16, generator=g), torch.randint(0, 3, (10,), generator=g)
    with torch.no_grad():
        before = model(X)
        with rewritten_layers(model) as n:
            assert n == 5  # three convolutions, two BatchNorms
            assert torch.allclose(model(X), before, rtol=1e-5, atol=1e-6)
    assert not any("forward" in m.__dict__ for m in model.modules())  # torch's own are back
    H = exact_hessian(model, X, y)
    V = np.random.default_rng(2).standard_normal((H.shape[0], 3))
    fast = hessian.HessianOperator(model, (X, y), dtype=torch.float64).matmat(V)
    own = hessian.HessianOperator(model, (X, y), dtype=torch.float64, fast_layers=False).matmat(V)
    assert np.abs(fast - H @ V).max() <= 1e-11 * np.abs(H @ V).max()
    assert np.abs(fast - own).max() <= 1e-12 * np.abs(own).max()
    for channels_last in (None, False):  # a conv net on images: channels-last inputs by default
        op = hessian.HessianOperator(model, (X, y), channels_last=channels_last)
        f32 = op.matmat(V)
        assert op.channels_last is (channels_last is None)
        assert np.abs(f32 - H @ V).max() <= 2e-5 * np.abs(H @ V).max()
    assert model.c1.weight.is_contiguous()  # the model's own memory format is not touched
    op = hessian.HessianOperator(mlp(), mlp_data())
    op.matvec(np.ones(op.size))
    assert op.channels_last is False


def test_rewritten_layers_leave_other_layers_alone():
    from landscape.hessian.layers import rewritten_layers

    class MyConv(nn.Conv2d):
        def forward(self, x):
            return super().forward(x) * 2

    layers = [nn.Conv2d(2, 2, 3, padding="same"), nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"),
              MyConv(2, 2, 1), nn.BatchNorm2d(2), nn.BatchNorm2d(2, track_running_stats=False).eval(),
              nn.ConvTranspose2d(2, 2, 3), nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2).eval()]
    model = nn.Sequential(*layers)
    with rewritten_layers(model) as n:  # training BatchNorm, no running statistics, custom forwards: kept
        assert n == 2
        assert [("forward" in m.__dict__) for m in layers] == [False] * 6 + [True] * 2
    assert not any("forward" in m.__dict__ for m in layers)


def test_model_is_evaluated_in_eval_mode_and_mode_kept(case):
    _, model, X, y, H, _ = case  # H: eval mode (BatchNorm with its running statistics)
    model.train()
    op = hessian.HessianOperator(model, (X, y), dtype=torch.float64)
    v = np.random.default_rng(1).standard_normal(op.size)
    np.testing.assert_allclose(op.matvec(v), H @ v, rtol=0, atol=1e-10 * np.abs(H @ v).max())
    assert model.training
    model.eval()
    op.matvec(v)
    assert not model.training
    model.train()


def test_mean_convention_does_not_depend_on_the_batch_size():
    model, (X, y) = mlp(), mlp_data()
    v = np.random.default_rng(0).standard_normal(hessian.HessianOperator(model, (X, y)).size)
    ref = hessian.HessianOperator(model, (X, y), batch_size=48, dtype=torch.float64).matvec(v)
    for b in (7, 16, 20):  # 7 and 20 leave a smaller last batch
        out = hessian.HessianOperator(model, (X, y), batch_size=b, dtype=torch.float64).matvec(v)
        np.testing.assert_allclose(out, ref, rtol=0, atol=1e-12 * np.abs(ref).max())


def test_batch_sum_convention_is_the_original_tools_scale():
    model, (X, y) = mlp(), mlp_data()
    v = np.random.default_rng(0).standard_normal(hessian.HessianOperator(model, (X, y)).size)
    mean = hessian.HessianOperator(model, (X, y), batch_size=12, dtype=torch.float64)
    summed = hessian.HessianOperator(model, (X, y), batch_size=12, convention="batch_sum", dtype=torch.float64)
    assert summed.batch_sum_factor == 4
    np.testing.assert_allclose(summed.matvec(v), 4 * mean.matvec(v), rtol=1e-12, atol=0)
    # Unequal last batch (48 = 2 x 20 + 8): H_orig = (N / m) H + (1 - r / m) H_last.
    summed = hessian.HessianOperator(model, (X, y), batch_size=20, convention="batch_sum", dtype=torch.float64)
    last = hessian.HessianOperator(model, (X[40:], y[40:]), dtype=torch.float64)
    expected = (48 / 20) * mean.matvec(v) + (1 - 8 / 20) * last.matvec(v)
    np.testing.assert_allclose(summed.matvec(v), expected, rtol=1e-11, atol=0)
    # ... and as the original sums it: the Hessians of the batch means, one by one.
    parts = [hessian.HessianOperator(model, (X[i:i + 20], y[i:i + 20]), dtype=torch.float64).matvec(v)
             for i in (0, 20, 40)]
    np.testing.assert_allclose(summed.matvec(v), sum(parts), rtol=1e-11, atol=0)


def test_parameter_selection():
    _, model, X, y, H_all, _ = get_case("convnet")
    original = hessian.HessianOperator(model, (X, y), params="original", dtype=torch.float64)
    assert list(original.names) == [k for k, p in model.named_parameters() if p.dim() > 1]
    assert original.size == sum(p.numel() for p in model.parameters() if p.dim() > 1)
    keep = np.concatenate([np.full(p.numel(), p.dim() > 1) for p in model.parameters()])
    H = H_all[np.ix_(keep, keep)]  # the Hessian restricted to those parameters
    v = np.random.default_rng(0).standard_normal(original.size)
    np.testing.assert_allclose(original.matvec(v), H @ v, rtol=0, atol=1e-10 * np.abs(H @ v).max())

    names = ["8.weight", "0.bias"]  # a list: taken in the model's order
    op = hessian.HessianOperator(model, (X, y), params=names)
    assert op.names == ("0.bias", "8.weight") and op.size == 6 + 128
    pred = hessian.HessianOperator(model, (X, y), params=lambda name, p: name.startswith("3."))
    assert pred.names == ("3.weight", "3.bias")
    model[4].weight.requires_grad_(False)  # frozen parameters are left out by default
    assert "4.weight" not in hessian.HessianOperator(model, (X, y)).names
    model[4].weight.requires_grad_(True)
    for bad in (["nope"], "some", lambda n, p: False, []):
        with pytest.raises(LandscapeError):
            hessian.HessianOperator(model, (X, y), params=bad)


def test_bad_arguments_are_refused():
    model, (X, y) = mlp(), mlp_data()
    with pytest.raises(LandscapeError, match="convention"):
        hessian.HessianOperator(model, (X, y), convention="sum")
    with pytest.raises(LandscapeError, match="dtype"):
        hessian.HessianOperator(model, (X, y), dtype=torch.float16)
    op = hessian.HessianOperator(model, (X, y))
    with pytest.raises(LandscapeError, match="size"):
        op.matvec(np.ones(op.size + 1))
    with pytest.raises(LandscapeError):
        hessian.eigenpairs(op, which="middle")
    with pytest.raises(LandscapeError):
        hessian.eigenpairs(op, k=0)


def test_data_loader_and_custom_loss():
    model, (X, y) = mlp(), mlp_data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=30)
    v = np.random.default_rng(0).standard_normal(hessian.HessianOperator(model, (X, y)).size)
    a = hessian.HessianOperator(model, loader, dtype=torch.float64).matvec(v)
    b = hessian.HessianOperator(model, (X, y), dtype=torch.float64, loss_fn=lambda out, batch:
                                F.cross_entropy(out.double(), batch[1])).matvec(v)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(b).max())


# ------------------------------------------------------------------------------ eigenvalues


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_eigenpairs_equal_the_exact_spectrum(case, dtype):
    _, model, X, y, H, w = case
    op = hessian.HessianOperator(model, (X, y), dtype=dtype)
    tol = 1e-9 if dtype == torch.float64 else 1e-6
    ends = hessian.eigenpairs(op, k=3, which="both_ends", tol=tol)
    assert ends.converged
    np.testing.assert_array_equal(ends.eigenvalues, np.sort(ends.eigenvalues)[::-1])
    assert rel(ends.eigenvalues[:3], w[::-1][:3]) < 1e-4
    assert rel(ends.eigenvalues[3:], w[:3][::-1]) < 1e-4
    # The eigenvectors are unit eigenvectors, with the residuals reported.
    Y = ends.eigenvectors
    np.testing.assert_allclose(np.linalg.norm(Y, axis=0), 1, atol=1e-8)
    R = np.linalg.norm(H @ Y - Y * ends.eigenvalues, axis=0)
    assert np.all(R <= 2e-4 * abs(w).max())
    top = hessian.eigenpairs(op, k=3, which="largest", tol=tol)
    assert rel(top.eigenvalues, w[::-1][:3]) < 1e-4
    low = hessian.eigenpairs(op, k=1, which="smallest", tol=tol)
    assert low.eigenvalues.shape == (1,) and rel(low.eigenvalues, w[:1]) < 1e-4


def test_eigsh_method(case):
    _, model, X, y, H, w = case
    op = hessian.HessianOperator(model, (X, y), dtype=torch.float64)
    r = hessian.eigenpairs(op, k=2, which="both_ends", tol=1e-10, method="eigsh")
    assert rel(r.eigenvalues, np.r_[w[::-1][:2], w[:2][::-1]]) < 1e-4
    assert np.all(r.residuals < 1e-6 * abs(w).max()) and r.matvecs > 4
    r = hessian.eigenpairs(op, k=1, which="smallest", method="eigsh", tol=1e-10)
    assert rel(r.eigenvalues, w[:1]) < 1e-4


def test_default_tolerance_bound(case):
    """At the default tolerance both ends are within 1e-3 |lambda_max| (in fact far closer)."""
    _, model, X, y, H, w = case
    op = hessian.HessianOperator(model, (X, y))
    r = hessian.eigenpairs(op, which="both_ends")
    assert r.converged and r.tol == hessian.DEFAULT_TOL == 1e-3
    assert abs(r.max - w[-1]) <= 1e-3 * abs(w[-1])
    assert abs(r.min - w[0]) <= 1e-3 * abs(w[-1])
    assert np.all(r.residuals <= 1e-3 * abs(r.max))


def test_lanczos_on_a_matrix_and_small_problems():
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    lam = np.r_[10.0, 9.0, np.linspace(-1, 1, 56), -2.0, -3.0]
    op = hessian.MatrixOperator((Q * lam) @ Q.T)
    r = hessian.eigenpairs(op, k=2, which="both_ends", tol=1e-10)
    np.testing.assert_allclose(r.eigenvalues, [10, 9, -2, -3], rtol=1e-8)
    # A start vector inside an invariant subspace: the process goes on past it.
    r = hessian.eigenpairs(op, k=1, which="largest", v0=Q[:, 5], warm_mix=0.0, tol=1e-10)
    np.testing.assert_allclose(r.eigenvalues, [10], rtol=1e-8)
    tiny = hessian.MatrixOperator(np.diag([3.0, -1.0, 2.0]))
    np.testing.assert_allclose(hessian.eigenpairs(tiny, k=1, which="both_ends").eigenvalues, [3, -1])
    np.testing.assert_allclose(hessian.eigenpairs(tiny, k=2, which="largest", method="eigsh").eigenvalues, [3, 2])
    kry = hessian.lanczos(op, 20, seed=1)
    assert kry.steps == 20 and np.allclose(kry.basis @ kry.basis.T, np.eye(20), atol=1e-12)


def test_warm_start_cuts_products_and_keeps_the_answer():
    model, (X, y) = convnet(), conv_data()
    op = hessian.HessianOperator(model, (X, y))
    first = hessian.eigenpairs(op, which="both_ends", seed=0)
    d = [0.05 * torch.randn_like(p) * p.detach().norm() / p.numel() ** 0.5 for p in model.parameters()]
    with torch.no_grad():
        for p, di in zip(model.parameters(), d, strict=True):
            p.add_(di)
    cold = hessian.eigenpairs(op, which="both_ends", seed=1)
    warm = hessian.eigenpairs(op, which="both_ends", seed=1, v0=first.eigenvectors)
    assert abs(warm.max - cold.max) <= 2e-3 * cold.max and abs(warm.min - cold.min) <= 2e-3 * cold.max
    assert abs(first.max - cold.max) > 1e-2 * cold.max  # the point did move
    assert warm.matvecs <= 0.8 * cold.matvecs, (warm.matvecs, cold.matvecs)


# ---------------------------------------------------------------------------- trace, density


def test_trace_within_three_standard_errors(case):
    _, model, X, y, H, w = case
    op = hessian.HessianOperator(model, (X, y))
    t = hessian.trace(op, tol=2e-2, max_samples=400, seed=0)
    assert t.samples == len(t.values) <= 400 and t.stderr > 0
    assert abs(t.estimate - np.trace(H)) <= 3 * t.stderr
    assert t.converged == (t.stderr <= 2e-2 * abs(t.estimate))
    # Rademacher samples of a diagonal matrix have no variance: exact after min_samples.
    d = hessian.trace(hessian.MatrixOperator(np.diag(np.arange(1.0, 11.0))), min_samples=4, block=2)
    assert d.estimate == pytest.approx(55.0) and d.stderr == pytest.approx(0.0, abs=1e-12) and d.samples == 4


def test_density_moments_match_the_spectrum(case):
    _, model, X, y, H, w = case
    op = hessian.HessianOperator(model, (X, y))
    d = hessian.density(op, num_runs=8, num_iters=40, seed=0)
    assert d.nodes.shape == d.weights.shape == (8, 40) and d.matvecs == 320
    np.testing.assert_allclose(d.weights.sum(axis=1), 1, atol=1e-10)
    assert np.trapezoid(d.density, d.grid) == pytest.approx(1.0, abs=1e-6)
    for p in (1, 2):
        exact = np.mean(w**p)
        assert abs(d.moment(p) - exact) <= 4 * d.moment_stderr(p) + 1e-6 * abs(exact)
    # The broadened curve has the quadrature's mean and its second moment plus sigma^2.
    assert np.trapezoid(d.grid * d.density, d.grid) == pytest.approx(d.moment(1), abs=1e-6 * np.ptp(w))
    assert np.trapezoid(d.grid**2 * d.density, d.grid) == pytest.approx(d.moment(2) + d.sigma**2, rel=1e-5)
    # The extreme nodes converge to the extreme eigenvalues.
    assert d.nodes.max() == pytest.approx(w[-1], rel=1e-3) and d.nodes.min() == pytest.approx(w[0], rel=1e-2)


def test_density_is_exact_on_a_small_matrix():
    lam = np.array([-1.0, 0.5, 2.0, 4.0])
    d = hessian.density(hessian.MatrixOperator(np.diag(lam)), num_runs=3, num_iters=10, sigma=0.01)
    assert d.nodes.shape == (3, 4)
    np.testing.assert_allclose(np.sort(d.nodes, axis=1), np.tile(lam, (3, 1)), atol=1e-10)
    peaks = [d.density[np.argmin(abs(d.grid - v))] for v in lam]
    assert min(peaks) > 1.0  # a peak at each eigenvalue
    assert np.trapezoid(d.density, d.grid) == pytest.approx(1.0, abs=1e-8)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")  # PyHessian's own
def test_pyhessian_agrees_on_the_top_eigenvalue():
    pyhessian = pytest.importorskip("pyhessian")
    model, (X, y) = mlp(), mlp_data()
    ours = hessian.eigenpairs(hessian.HessianOperator(model, (X, y)), which="largest", tol=1e-6)
    torch.manual_seed(0)
    theirs = pyhessian.hessian(copy.deepcopy(model), nn.CrossEntropyLoss(), data=(X, y), cuda=False)
    values, _ = theirs.eigenvalues(top_n=1, maxIter=300, tol=1e-6)
    assert values[0] == pytest.approx(ours.max, rel=1e-3)


def test_shifted_operator_is_the_matrix_minus_a_multiple_of_the_identity():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((6, 6))
    a = a + a.T
    op = hessian.Shifted(hessian.MatrixOperator(a), 2.5)
    v, V = rng.standard_normal(6), rng.standard_normal((6, 3))
    np.testing.assert_allclose(op.matvec(v), (a - 2.5 * np.eye(6)) @ v, rtol=1e-12)
    np.testing.assert_allclose(op.matmat(V), (a - 2.5 * np.eye(6)) @ V, rtol=1e-12)
    assert op.size == 6
    top = hessian.eigenpairs(op, k=1, which="largest", tol=1e-10)  # the original's second run: the shifted top
    assert top.eigenvalues[0] == pytest.approx(np.linalg.eigvalsh(a)[-1] - 2.5, rel=1e-8)


# ------------------------------------------------------------------------------ users' models


def test_hessian_products_through_a_transformer_layer_on_cpu():
    from torch.func import functional_call
    from torch.nn.attention import SDPBackend, sdpa_kernel

    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Linear(4, 8)
            self.enc = torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, x):
            return self.head(self.enc(self.emb(x)).mean(1))

    model, X, y = Tiny().eval(), torch.randn(12, 5, 4), torch.randint(0, 3, (12,))
    op = hessian.HessianOperator(model, (X, y))
    v = np.random.default_rng(0).standard_normal(op.size)
    names = [k for k, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]

    def loss(flat):  # the reference: torch's own Hessian-vector product, math attention
        parts = dict(zip(names, (c.reshape(s) for c, s in zip(flat.split([s.numel() for s in shapes]), shapes,
                                                                strict=True)), strict=True))
        return torch.nn.functional.cross_entropy(functional_call(model, parts, (X,)), y)

    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    with sdpa_kernel(SDPBackend.MATH):
        _, ref = torch.autograd.functional.hvp(loss, flat, torch.as_tensor(v, dtype=torch.float32))
    np.testing.assert_allclose(op.matvec(v), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_an_operator_of_a_model_without_parameters_is_one_clear_error():
    class NoParams(torch.nn.Module):
        def forward(self, x):
            return x[:, :3]

    data = (torch.randn(8, 4), torch.randint(0, 3, (8,)))
    with pytest.raises(LandscapeError, match=r"^the model \(NoParams\) has no parameters: a Hessian needs some$"):
        hessian.HessianOperator(NoParams(), data)


def test_the_trace_default_converges_on_a_small_model_and_says_when_it_did_not():
    from landscape.hessian.operator import matmat

    model, X, y = digits_mlp(hidden=4)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):  # a newcomer's trained model
        opt.zero_grad()
        F.cross_entropy(model(X), y).backward()
        opt.step()
    op = hessian.HessianOperator(model.eval(), (X, y))
    exact = float(np.trace(matmat(op, np.eye(op.size))))
    tr = hessian.trace(op)
    assert tr.converged and tr.samples < 1000, repr(tr)
    assert abs(tr.estimate - exact) <= 4 * tr.stderr
    assert "converged" in str(tr) and "NOT" not in str(tr)
    short = hessian.trace(op, tol=1e-6, max_samples=8, min_samples=4)
    assert not short.converged
    assert "NOT converged" in str(short) and "NOT converged" in repr(short)
