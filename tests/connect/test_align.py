"""Permutation alignment (landscape.connect.align, landscape-align), REPAIR and the two barrier
definitions: the aligned network computes what the original does, weight matching of one hidden
layer is the optimal assignment found by brute force, alignment removes most of the straight
line's barrier between two digits MLPs trained from different seeds, the barriers against plain
loops, REPAIR's statistics against hooks of our own, and every bad input in one line."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from landscape import connect
from landscape.errors import LandscapeError
from landscape.jobs.demo import fit
from landscape.models import build_model
from landscape.models.tiny import MLP


def _pair(arch: str, in_channels: int = 1, **kw):
    torch.manual_seed(0)
    a = build_model(arch, num_classes=10, in_channels=in_channels, **kw)
    torch.manual_seed(1)
    b = build_model(arch, num_classes=10, in_channels=in_channels, **kw)
    g = torch.Generator().manual_seed(2)
    for m in (*a.modules(), *b.modules()):  # BatchNorm away from its identity start: its tensors must follow
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return a.eval(), b.eval()


@pytest.fixture(scope="module")
def digits():
    from landscape.data.datasets import load_dataset

    return load_dataset("digits", split="train"), load_dataset("digits", split="test")


@pytest.fixture(scope="module")
def minima(digits):
    """Two digits MLPs (two hidden layers of 128) trained from different seeds."""
    out = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        out.append(fit(build_model("mlp", num_classes=10, in_channels=1), digits[0], seed=seed, epochs=10))
    return out


# ------------------------------------------------------------------------- the same function


@pytest.mark.parametrize("arch,in_channels,size", [("mlp", 1, 8), ("digits_cnn", 1, 8), ("resnet20", 3, 16)])
@pytest.mark.parametrize("method", connect.METHODS)
def test_aligned_network_computes_the_same_function(arch, in_channels, size, method):
    a, b = _pair(arch, in_channels)
    before = {k: v.clone() for k, v in b.state_dict().items()}
    x = torch.randn(32, in_channels, size, size, generator=torch.Generator().manual_seed(3))
    result = connect.align(a, b, method, data=(x,) if method == "activations" else None)
    aligned, permutation = result  # unpacks as the aligned copy and its permutation
    with torch.no_grad():
        want, got = b(x), aligned.eval()(x)
    assert (got - want).abs().max() <= 1e-5 * max(1.0, float(want.abs().max()))
    # something moved: the units are in another order, and nearer to a's
    assert any(not torch.equal(p, torch.arange(len(p))) for p in permutation.values())
    assert result.distance[1] < result.distance[0]
    # b itself is untouched, and the recorded permutation reproduces the aligned copy
    assert all(torch.equal(v, before[k]) for k, v in b.state_dict().items())
    again = connect.permute(b, permutation)
    for k, v in aligned.state_dict().items():
        assert torch.equal(again.state_dict()[k], v), k


class _Concat(nn.Module):
    """Two branches concatenated along the channels, then BatchNorm over the whole: each branch's
    channels are a group of their own, and the BatchNorm and the next conv follow both."""

    def __init__(self):
        super().__init__()
        self.left, self.right = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(1, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(10)
        self.conv, self.fc = nn.Conv2d(10, 8, 3, padding=1), nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.bn(torch.cat([self.left(x), self.right(x)], dim=1)))
        return self.fc(F.relu(self.conv(x)).mean(dim=(2, 3)))


@pytest.mark.parametrize("method", connect.METHODS)
def test_a_concatenation_is_aligned_branch_by_branch(method):
    torch.manual_seed(0)
    a = _Concat()
    torch.manual_seed(1)
    b = _Concat()
    g = torch.Generator().manual_seed(2)
    for bn in (a.bn, b.bn):
        bn.running_mean.copy_(torch.randn(10, generator=g))
        bn.running_var.copy_(torch.rand(10, generator=g) + 0.5)
    a.eval(), b.eval()
    x = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    aligned, permutation = connect.align(a, b, method, data=(x,) if method == "activations" else None)
    with torch.no_grad():
        want, got = b(x), aligned.eval()(x)
    assert (got - want).abs().max() <= 1e-5 * max(1.0, float(want.abs().max()))
    # each branch permuted within itself: the BatchNorm's first 4 channels stay the left branch's
    left = aligned.state_dict()["left.weight"]
    moved = [int(torch.nonzero((b.state_dict()["left.weight"] == left[i]).flatten(1).all(1))[0]) for i in range(4)]
    assert sorted(moved) == [0, 1, 2, 3]
    for i, j in enumerate(moved):
        assert torch.equal(aligned.bn.running_mean[i], b.bn.running_mean[j])
    assert any(not torch.equal(p, torch.arange(len(p))) for p in permutation.values())


def test_the_cap_on_rounds_is_reported():
    a, b = _pair("digits_cnn")
    full = connect.align(a, b, "weights")
    assert full.converged and 2 <= full.rounds < full.max_rounds  # a last round changed nothing
    capped = connect.align(a, b, "weights", max_rounds=1)
    assert (capped.rounds, capped.converged, capped.max_rounds) == (1, False, 1)
    assert capped.record()["converged"] is False


def test_residual_groups_are_the_stages():
    """resnet20: the residual stream of each stage is one group (the stem or projection and every
    block's second conv), each block's first conv a group of its own; the classifier stays."""
    spec = connect.permutation_spec(build_model("resnet20", num_classes=10, in_channels=3))
    groups = {spec.names[g]: spec.producers[g] for g in spec.names}
    assert groups["conv1"] == ("conv1", "layer1.0.conv2", "layer1.1.conv2", "layer1.2.conv2")
    assert groups["layer2.0.conv2"] == ("layer2.0.conv2", "layer2.0.shortcut.0", "layer2.1.conv2", "layer2.2.conv2")
    assert len(groups) == 3 + 9  # three streams, nine inner convs
    assert "linear" in spec.fixed and "output" in spec.fixed["linear"]
    tensors = {(ax.tensor, ax.dim) for ax in spec.axes}
    assert ("layer2.0.bn1.running_var", 0) in tensors and ("linear.weight", 1) in tensors
    assert ("linear.weight", 0) not in tensors


# --------------------------------------------------------------------- optimal by brute force


def test_one_hidden_layer_weight_matching_is_the_optimal_assignment():
    """With one hidden layer the objective is linear in the permutation: weight matching must
    find the best of all 720 permutations of 6 units, scored on the cost matrix built by hand."""
    torch.manual_seed(0)
    a = MLP(num_classes=3, in_channels=1, input_size=2, hidden=(6,))
    b = MLP(num_classes=3, in_channels=1, input_size=2, hidden=(6,))
    w1a, b1a, w2a = (t.detach().double() for t in (a.net[1].weight, a.net[1].bias, a.net[3].weight))
    w1b, b1b, w2b = (t.detach().double() for t in (b.net[1].weight, b.net[1].bias, b.net[3].weight))
    cost = (w1a @ w1b.T + b1a[:, None] * b1b[None, :] + w2a.T @ w2b).numpy()
    best = max(itertools.permutations(range(6)), key=lambda p: sum(cost[i, p[i]] for i in range(6)))
    result = connect.align(a, b)
    assert result.permutation["net.1"].tolist() == list(best)
    assert result.converged and result.rounds == 2  # found in the first round, confirmed by the second
    x = torch.randn(16, 1, 2, 2)
    with torch.no_grad():
        assert torch.allclose(result.model(x), b(x), atol=1e-6)
    aligned = result.model.state_dict()
    assert torch.equal(aligned["net.1.weight"], b.net[1].weight[list(best)])
    assert torch.equal(aligned["net.3.weight"], b.net[3].weight[:, list(best)])
    assert torch.equal(aligned["net.3.bias"], b.net[3].bias)  # the output is not permuted


# ------------------------------------------------------------------------------- the barriers


def _plain_barriers(values, t):
    values, t = list(map(float, values)), list(map(float, t))
    largest = max(values)
    above = max(v - ((1 - s) * values[0] + s * values[-1]) for v, s in zip(values, t, strict=True))
    return largest - (values[0] + values[-1]) / 2, above


def test_both_barriers_against_a_plain_loop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        t = np.concatenate([[0.0], np.sort(rng.uniform(0, 1, 7)), [1.0]])
        values = rng.uniform(0, 3, t.size)
        mean_def, chord = _plain_barriers(values, t)
        assert connect.barrier(values) == pytest.approx(mean_def)
        assert connect.chord_barrier(values, t) == pytest.approx(chord)
    # a path that falls straight from 1 to 0: no barrier above the chord, half the difference by the mean
    t = np.linspace(0, 1, 5)
    assert connect.chord_barrier(1 - t, t) == pytest.approx(0.0, abs=1e-12)
    assert connect.barrier(1 - t) == pytest.approx(0.5)
    assert np.isnan(connect.chord_barrier(np.array([1.0, np.nan, 0.0]), np.array([0, 0.5, 1])))


def test_alignment_removes_most_of_the_barrier(minima, digits):
    """Two digits MLPs from different seeds: after alignment (either method) the straight line's
    train-loss barrier is at most a quarter of the one before; the barriers the path reports are
    those of a plain loop over its values, and REPAIR lowers the naive line's barrier."""
    a, b = minima
    train = digits[0]
    before = connect.evaluate_path(connect.Curve.between(a, b), train, t=11)
    assert before.barrier["line"] > 0.2, "the straight line between two seeds' minima crosses a barrier"
    for method in connect.METHODS:
        aligned = connect.align(a, b, method, data=train)
        after = connect.evaluate_path(connect.Curve.between(a, aligned.model), train, t=11)
        assert after.barrier["line"] <= before.barrier["line"] / 4, (method, after.barrier, before.barrier)
        assert after.chord_barrier["line"] <= before.chord_barrier["line"] / 4
        for name in ("line", "curve"):
            mean_def, chord = _plain_barriers(after.loss[name], after.t)
            assert after.barrier[name] == pytest.approx(mean_def) and after.chord_barrier[name] == pytest.approx(chord)
    # the line's midpoint, by a plain forward pass of the averaged tensors
    net = build_model("mlp", num_classes=10, in_channels=1)
    net.load_state_dict({k: (v + aligned.model.state_dict()[k]) / 2 for k, v in a.state_dict().items()})
    with torch.no_grad():
        assert after.loss["line"][5] == pytest.approx(F.cross_entropy(net(train.x), train.y).item(), rel=1e-5)
    repaired = connect.evaluate_path(connect.Curve.between(a, b), train, t=11, repair_stats=True)
    assert repaired.barrier["line"] < before.barrier["line"] / 2
    assert repaired.loss["line"][0] == before.loss["line"][0] and repaired.loss["line"][-1] == before.loss["line"][-1]


def test_repair_gives_every_unit_the_interpolated_statistics(minima, digits):
    """At t = 0.3, every hidden layer's units have the mean and standard deviation interpolated
    from the ends' (measured here with hooks of our own); one batch of all the data, so the
    statistics REPAIR measures and those it is checked by are the same samples."""
    from landscape.connect.repair import Repair, repaired_layers
    from landscape.data.batches import as_batches

    a, b = minima
    x = digits[0].x
    layers = repaired_layers(a)
    assert layers == ["net.1", "net.3"]  # the output layer is not repaired

    def stats(model):
        seen = {}
        hooks = [dict(model.named_modules())[n].register_forward_hook(
            lambda m, i, y, n=n: seen.__setitem__(n, (y.double().mean(0), y.double().std(0, unbiased=False))))
            for n in layers]
        with torch.no_grad():
            model(x)
        for h in hooks:
            h.remove()
        return seen

    ends = stats(a), stats(b)
    curve = connect.Curve.between(a, b)
    net = curve.network()
    fix = Repair(net, as_batches(digits[0], "cpu", len(x)), 1)
    fix.ends_(curve.a, curve.b)
    net.load_state_dict(curve.line(0.3))
    fix.prepare_(0.3)
    got = stats(net)
    for n in layers:
        mean = 0.7 * ends[0][n][0] + 0.3 * ends[1][n][0]
        std = 0.7 * ends[0][n][1] + 0.3 * ends[1][n][1]
        assert torch.allclose(got[n][0], mean, atol=1e-4), n
        assert torch.allclose(got[n][1], std, rtol=1e-3, atol=1e-4), n
    fix.remove()


class _Mixed(nn.Module):
    """A conv with BatchNorm, then one without: REPAIR corrects the second, BatchNorm the first."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6)
        self.conv2, self.fc = nn.Conv2d(6, 8, 3, padding=1), nn.Linear(8, 10)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return self.fc(x.mean((2, 3)))


def test_repair_beside_batchnorm(digits):
    """REPAIR and the BatchNorm re-estimation in one pass: the layer no BatchNorm follows gets the
    interpolated statistics of the ends, each end's BatchNorm re-estimated as the path does it;
    a network whose every layer feeds a BatchNorm needs no hook, and its path is the plain one."""
    from landscape.connect.repair import Repair, repaired_layers
    from landscape.data.batches import as_batches
    from landscape.evaluation.batchnorm import BatchNormRecompute

    x = digits[0].x[:512]
    data = (x, digits[0].y[:512])
    torch.manual_seed(0)
    a = _Mixed()
    torch.manual_seed(1)
    b = _Mixed()
    assert repaired_layers(a) == ["conv2"]
    batches = as_batches(data, "cpu", len(x))

    def conv2_stats(state):
        net = copy.deepcopy(a)
        net.load_state_dict(state)
        BatchNormRecompute(net, batches, 1)()
        seen = {}
        h = net.conv2.register_forward_hook(lambda m, i, y: seen.update(y=y.double().transpose(0, 1).flatten(1)))
        with torch.no_grad():
            net.eval()(x)
        h.remove()
        return seen["y"].mean(1), seen["y"].std(1, unbiased=False)

    (ma, sa), (mb, sb) = conv2_stats(a.state_dict()), conv2_stats(b.state_dict())
    curve = connect.Curve.between(a, b)
    net = curve.network()
    bn = BatchNormRecompute(net, batches, 1)
    fix = Repair(net, batches, 1)
    fix.ends_(curve.a, curve.b, bn)
    net.load_state_dict(curve.line(0.25))
    fix.prepare_(0.25, bn)
    seen = {}
    h = net.conv2.register_forward_hook(lambda m, i, y: seen.update(y=y.double().transpose(0, 1).flatten(1)))
    with torch.no_grad():
        net.eval()(x)
    h.remove()
    assert torch.allclose(seen["y"].mean(1), 0.75 * ma + 0.25 * mb, atol=1e-3)
    assert torch.allclose(seen["y"].std(1, unbiased=False), 0.75 * sa + 0.25 * sb, rtol=1e-3, atol=1e-4)
    fix.remove()

    cnn_a, cnn_b = _pair("digits_cnn")
    plain = connect.evaluate_path(connect.Curve.between(cnn_a, cnn_b), data, t=3)
    repaired = connect.evaluate_path(connect.Curve.between(cnn_a, cnn_b), data, t=3, repair_stats=True)
    assert repaired.surface.attrs["repair_layers"] == 0
    assert np.array_equal(repaired.loss["line"], plain.loss["line"])


# --------------------------------------------------------------------------------- commands


def _align_cli(*args):
    from landscape.cli.align import main

    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def ends(minima, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ends")
    paths = []
    for k, m in enumerate(minima):
        p = folder / f"mlp_{k}.pt"
        torch.save({"state_dict": m.state_dict(), "arch": "mlp", "epoch": 10, "optimizer": {"state": {}}}, p)
        paths.append(str(p))
    return paths


def test_cli_writes_an_ordinary_checkpoint(ends, tmp_path, capsys):
    from landscape.cli.connect import main as connect_main
    from landscape.cli.surf import main as surf_main
    from landscape.io.checkpoint import sha256
    from landscape.io.surface_file import read_surface

    out = tmp_path / "b_aligned.pt"
    assert _align_cli(*ends, "--arch", "mlp", "--dataset", "digits", "--out", out) == 0
    said = capsys.readouterr().out
    assert "weight matching, 2 groups permuted" in said and "left in place: net.5" in said
    raw = torch.load(out, weights_only=True)  # plain tensors and values only
    record = raw["alignment"]
    assert record["method"] == "weights" and record["converged"] and record["rounds"] >= 2
    assert record["reference_sha256"] == sha256(ends[0]) and record["source_sha256"] == sha256(ends[1])
    assert set(record["permutation"]) == {"net.1", "net.3"} and record["landscape_version"]
    assert raw["arch"] == "mlp" and raw["epoch"] == 10 and "optimizer" not in raw  # b's order-free entries stay
    b = build_model("mlp", num_classes=10, in_channels=1)
    b.load_state_dict(torch.load(ends[1], weights_only=True)["state_dict"])
    again = connect.permute(b, record["permutation"])
    for k, v in raw["state_dict"].items():
        assert torch.equal(again.state_dict()[k], v), k
    # every command reads it as a checkpoint: the line after alignment, and a curve between a and it
    line, aligned_line = tmp_path / "line.h5", tmp_path / "aligned.h5"
    for model2, file in ((ends[1], line), (out, aligned_line)):
        assert surf_main(["--model", ends[0], "--model2", str(model2), "--arch", "mlp", "--x=0:1:5", "--out",
                          str(file), "--no-progress"]) == 0
    naive, aligned = (connect.barrier(read_surface(f).values["train_loss"]) for f in (line, aligned_line))
    assert aligned <= naive / 4, (aligned, naive)
    curve = tmp_path / "c.pt"
    assert connect_main([ends[0], str(out), "--arch", "mlp", "--epochs", "1", "--out", str(curve),
                         "--no-progress"]) == 0
    path = tmp_path / "p.h5"
    assert connect_main(["--eval", str(curve), "--points", "5", "--split", "train", "--out", str(path),
                         "--repair-stats", "--no-progress"]) == 0
    said = capsys.readouterr().out
    assert "REPAIR" in said and "barrier (max - mean of the ends)" in said and "barrier above the chord" in said
    s = read_surface(path)
    assert s.attrs["repair_stats"] == 1 and s.attrs["repair_layers"] == 2  # the two hidden layers
    for p, prefix in (("line", "line_"), ("curve", "")):
        mean_def, chord = _plain_barriers(s.values[f"{prefix}train_loss"], s.x)
        assert s.attrs[f"barrier_{p}_train_loss"] == pytest.approx(mean_def)
        assert s.attrs[f"chord_barrier_{p}_train_loss"] == pytest.approx(chord)


@pytest.fixture
def user_nets(tmp_path, monkeypatch):
    """Networks of a user's own module: one fx cannot trace, one whose BatchNorm does not fit its conv."""
    (tmp_path / "alignnets.py").write_text(
        "import torch\nfrom torch import nn\n"
        "class Gate(nn.Module):\n"
        "    def forward(self, x):\n"
        "        return x if x.sum() > 0 else -x\n"
        "class Untraceable(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc1, self.gate, self.fc2 = nn.Linear(64, 16), Gate(), nn.Linear(16, 10)\n"
        "    def forward(self, x):\n"
        "        return self.fc2(self.gate(self.fc1(x.flatten(1))))\n"
        "class Misfit(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv, self.bn = nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(6)\n"
        "        self.fc = nn.Linear(8, 10)\n"
        "    def forward(self, x):\n"
        "        return self.fc(self.bn(self.conv(x)).mean((2, 3)))\n"
        "def untraceable():\n    return Untraceable()\n"
        "def misfit():\n    return Misfit()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_bad_input_one_line_exit_2(ends, user_nets, tmp_path, capsys):
    def one_line_exit_2(*args):
        code = _align_cli(*args)
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
        return err

    out = tmp_path / "x.pt"
    # architectures that differ
    cnn = tmp_path / "cnn.pt"
    torch.save(build_model("digits_cnn", num_classes=10, in_channels=1).state_dict(), cnn)
    assert "does not fit" in one_line_exit_2(ends[0], cnn, "--arch", "mlp", "--out", out)
    # a network fx cannot trace: the layer that stops it is named
    for name in ("a.pt", "b.pt"):
        torch.save(__import__("alignnets").untraceable().state_dict(), tmp_path / name)
    err = one_line_exit_2("a.pt", "b.pt", "--arch", "alignnets:untraceable", "--out", out)
    assert "cannot trace Untraceable" in err and "'gate' (Gate)" in err
    # a permutation group whose coupled tensors disagree in size
    for name in ("a.pt", "b.pt"):
        torch.save(__import__("alignnets").misfit().state_dict(), tmp_path / name)
    err = one_line_exit_2("a.pt", "b.pt", "--arch", "alignnets:misfit", "--out", out)
    assert "disagree in size" in err and "bn.weight has 6" in err and "'conv'" in err
    # an existing output is not replaced; a method that does not exist
    out.write_bytes(b"keep me")
    assert "exists" in one_line_exit_2(*ends, "--arch", "mlp", "--out", out)
    assert out.read_bytes() == b"keep me"
    assert "--method" in one_line_exit_2(*ends, "--arch", "mlp", "--method", "sinkhorn", "--out", tmp_path / "y.pt")
    assert not (tmp_path / "y.pt").exists()


def test_bad_input_in_python(minima):
    a, b = minima
    with pytest.raises(LandscapeError, match="one architecture"):
        connect.align(a, build_model("digits_cnn", num_classes=10, in_channels=1))
    wide = MLP(10, 1, 8, hidden=(128, 64))
    with pytest.raises(LandscapeError, match="differ in shape"):
        connect.align(a, wide)
    with pytest.raises(LandscapeError, match="needs data"):
        connect.align(a, b, "activations")
    with pytest.raises(LandscapeError, match="`method` must be one of"):
        connect.align(a, b, "sinkhorn")
    with pytest.raises(LandscapeError, match="max_rounds"):
        connect.align(a, b, max_rounds=0)
    with pytest.raises(LandscapeError, match="nothing to align"):
        connect.align(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), nn.Sequential(nn.Flatten(), nn.Linear(64, 10)))
    with pytest.raises(LandscapeError, match="not a permutation of its 128 units"):
        connect.permute(b, {"net.1": [0] * 128})
    with pytest.raises(LandscapeError, match="no permutation group"):
        connect.permute(b, {"net.5": list(range(10))})
    linear = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    with pytest.raises(LandscapeError, match="REPAIR has nothing to correct"):
        connect.evaluate_path(connect.Curve.between(linear, copy.deepcopy(linear)),
                              (torch.zeros(4, 1, 8, 8), torch.zeros(4).long()), t=3, repair_stats=True)
    with pytest.raises(LandscapeError, match="EvalOptions"):
        connect.evaluate_path(connect.Curve.between(a, b), (torch.zeros(4, 1, 8, 8), torch.zeros(4).long()),
                              t=3, evaluation={"batch_size": 4})


@pytest.mark.slow
@pytest.mark.mpi
def test_mpi_align_equals_serial(ends, tmp_path):
    """Under mpirun rank 0 computes the permutation and shares it: the same checkpoint as serially."""
    from helpers import run_command

    serial, parallel = tmp_path / "serial.pt", tmp_path / "parallel.pt"
    assert _align_cli(*ends, "--arch", "mlp", "--method", "activations", "--out", serial) == 0
    done = run_command(2, "align", *ends, "--arch", "mlp", "--method", "activations", "--out", parallel)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("wrote") == 1  # rank 0 alone writes and reports
    a, b = (torch.load(p, weights_only=True) for p in (serial, parallel))
    assert a["alignment"]["permutation"] == b["alignment"]["permutation"]
    for k, v in a["state_dict"].items():
        assert torch.equal(b["state_dict"][k], v), k
