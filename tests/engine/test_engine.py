"""landscape.surface: any model, data and per-point quantity, against independent answers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import landscape as ls
from landscape.data.batches import as_batches
from landscape.directions.options import Directions
from landscape.engine.options import Output
from landscape.errors import LandscapeError
from landscape.evaluation.evaluator import Evaluator
from landscape.evaluation.options import EvalOptions
from landscape.space.grid import Grid
from landscape.space.params import Mover, snapshot

QUIET = Output(progress=False)
GRID3x3 = Grid((-1, 1, 3), (-1, 1, 3))


class DictNet(nn.Module):
    """Not a zoo network: it takes dict batches {"tokens": ..., "mask": ...}."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(6, 8)
        self.norm = nn.LayerNorm(8)
        self.head = nn.Linear(8, 3)

    def forward(self, batch):
        h = torch.tanh(self.norm(self.embed(batch["tokens"])))
        return self.head(h * batch["mask"][:, None])


def dict_data(n=90, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(n, 6, generator=g)
    mask = (torch.rand(n, generator=g) > 0.2).float()
    target = torch.randn(n, 3, generator=g)
    return [{"tokens": tokens[i:i + 16], "mask": mask[i:i + 16], "target": target[i:i + 16]}
            for i in range(0, n, 16)]  # uneven last batch


def huber(output, batch):
    return nn.functional.smooth_l1_loss(output, batch["target"])


def plain_loop(model, batches, directions, x, y):
    """The loss at every (x[i], y[j]), setting the parameters by hand."""
    origin = {k: v.detach().clone() for k, v in model.named_parameters()}
    out = np.empty((len(y), len(x)))
    with torch.no_grad():
        for j, b in enumerate(y):
            for i, a in enumerate(x):
                for k, p in model.named_parameters():
                    p.copy_(origin[k] + a * directions[0][k] + b * directions[1][k])
                total = sum(float(huber(model(batch), batch)) * len(batch["mask"]) for batch in batches)
                out[j, i] = total / sum(len(batch["mask"]) for batch in batches)
        for k, p in model.named_parameters():
            p.copy_(origin[k])
    return out


def test_any_model_dict_batches_and_a_custom_loss_against_a_plain_loop():
    torch.manual_seed(0)
    model = DictNet()
    batches = dict_data()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    surf = ls.surface(model, batches, Grid((-1, 1, 4), (-0.5, 0.5, 3)), evaluation=EvalOptions(loss_fn=huber),
                      output=QUIET)
    assert set(surf.values) == {"train_loss"}  # float targets: no accuracy
    expected = plain_loop(model, batches, surf.directions, surf.x, surf.y)
    np.testing.assert_allclose(surf.values["train_loss"], expected, rtol=1e-5)
    for k, v in model.state_dict().items():  # put back at the origin
        assert torch.equal(v, before[k])
    assert surf.attrs["command"].startswith("python API") and "DictNet" in surf.attrs["model_class"]


def test_a_streamed_loader_gives_the_in_memory_surface():
    data = ls.load_dataset("digits", split="test")
    model = ls.build_model("digits_cnn", num_classes=10, in_channels=1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.x, data.y), batch_size=50)
    streamed = as_batches(loader, "cpu", memory_budget=0)
    assert streamed.kind == "streamed" and streamed.n == len(data)
    kw = dict(evaluation=EvalOptions(batch_size=50), output=QUIET)
    a = ls.surface(model, (data.x, data.y), GRID3x3, **kw)
    b = ls.surface(model, streamed, GRID3x3, **kw)
    c = ls.surface(model, loader, GRID3x3, **kw)  # fits in memory: read once, kept
    np.testing.assert_allclose(b.loss, a.loss, rtol=1e-6)
    np.testing.assert_allclose(c.loss, a.loss, rtol=1e-6)
    np.testing.assert_allclose(b.acc, a.acc, atol=1e-9)
    # a shuffled loader holds the same samples: the same data checksum
    shuffled = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.x, data.y), batch_size=64,
                                           shuffle=True)
    assert as_batches(shuffled, "cpu").fingerprint() == as_batches(loader, "cpu").fingerprint()


def test_a_metric_with_a_closed_form_at_every_point():
    """The squared norm of the parameters: ||theta0 + a d1 + b d2||^2 from numpy."""
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    x, y = torch.randn(30, 4), torch.randint(0, 2, (30,))

    def sq_norm(m):
        return float(sum((p.double() ** 2).sum() for p in m.parameters()))

    surf = ls.surface(model, (x, y), Grid((-1, 1, 5), (-1, 1, 3)), metrics={"sq_norm": sq_norm},
                      directions=Directions(ignore="none"), output=QUIET)
    flat = {k: v.detach().double().numpy() for k, v in model.named_parameters()}
    d1 = {k: v.double().numpy() for k, v in surf.directions[0].items()}
    d2 = {k: v.double().numpy() for k, v in surf.directions[1].items()}
    for j, b in enumerate(surf.y):
        for i, a in enumerate(surf.x):
            expected = sum(((flat[k] + a * d1[k] + b * d2[k]) ** 2).sum() for k in flat)
            assert surf.values["sq_norm"][j, i] == pytest.approx(expected, rel=1e-6)


def test_resume_that_adds_a_metric_computes_only_the_metric(tmp_path, monkeypatch):
    data = ls.load_dataset("digits", split="test")
    model = ls.build_model("digits_cnn", num_classes=10, in_channels=1)
    out = str(tmp_path / "s.h5")
    kw = dict(evaluation=EvalOptions(batch_size=128), output=Output(out, progress=False))
    first = ls.surface(model, data, GRID3x3, **kw)
    calls = {"evaluator": 0, "metric": 0}
    original = Evaluator.__call__

    def counting(self):
        calls["evaluator"] += 1
        return original(self)

    monkeypatch.setattr(Evaluator, "__call__", counting)

    def bn_mean(m):
        calls["metric"] += 1
        return float(m.features[1].weight.mean())

    second = ls.surface(model, data, GRID3x3, metrics={"bn_mean": bn_mean}, **kw)
    assert calls == {"evaluator": 0, "metric": 9}
    np.testing.assert_array_equal(second.loss, first.loss)
    assert np.isfinite(second.values["bn_mean"]).all()
    again = ls.read_surface(out)
    assert set(again.values) == {"train_loss", "train_acc", "bn_mean"} and again.completed.all()


def test_three_directions_make_a_volume(tmp_path):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    surf = ls.surface(model, (x, y), Grid((-1, 1, 3), (-1, 1, 4), (0, 1, 2)),
                      directions=Directions(norm="layer", ignore="none"),
                      output=Output(tmp_path / "v.h5", progress=False))
    assert surf.shape == (2, 4, 3) and surf.completed.all()
    d = [{k: v.double() for k, v in dd.items()} for dd in surf.directions]
    w0 = {k: v.detach().double() for k, v in model.named_parameters()}
    k, j, i = 1, 2, 0
    a, b, c = surf.x[i], surf.y[j], surf.z[k]
    w = {n: w0[n] + a * d[0][n] + b * d[1][n] + c * d[2][n] for n in w0}
    logits = x.double() @ w["weight"].T + w["bias"]
    assert surf.loss[k, j, i] == pytest.approx(float(nn.functional.cross_entropy(logits, y)), rel=1e-5)
    assert ls.read_surface(tmp_path / "v.h5").loss[k, j, i] == surf.loss[k, j, i]


class ViewNet(nn.Module):
    """A conv net that flattens its feature maps with ``.view``: channels-last inputs break it."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.bn, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Linear(4 * 8 * 8, 2)

    def forward(self, x):
        h = self.bn(self.conv(x))
        return self.fc(h.view(h.size(0), -1))


def test_a_model_that_cannot_run_channels_last_keeps_its_memory_format():
    from landscape import hessian
    from landscape.space.params import uses_channels_last

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 8, 8, generator=g), torch.randint(0, 2, (16,), generator=g)
    model = ViewNet().train()
    stats = model.bn.running_mean.clone()
    assert not uses_channels_last(model, x[:1])
    assert model.training and torch.equal(model.bn.running_mean, stats)  # the probe ran in eval mode
    assert uses_channels_last(nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), x[:1])
    surf = ls.surface(model, (x, y), (-1, 1, 3), output=QUIET)
    assert np.isfinite(surf.loss).all()
    op = hessian.HessianOperator(model, (x, y))
    assert np.isfinite(op.matvec(np.ones(op.size))).all() and op.channels_last is False


@pytest.mark.parametrize("order", ["mover first", "evaluator first"])
def test_mover_and_evaluator_in_either_order(order):
    """The evaluator puts the model channels-last (new tensors); the mover must follow."""
    data = ls.load_dataset("digits", split="test")
    torch.manual_seed(3)
    model = ls.build_model("digits_cnn", num_classes=10, in_channels=1)
    origin = snapshot(model)
    dirs = ls.random_directions(origin, 1, seed=2)
    if order == "mover first":
        mover = Mover(model, origin, dirs)
        ev = Evaluator(model, data, EvalOptions(batch_size=100), channels_last=True)
    else:
        ev = Evaluator(model, data, EvalOptions(batch_size=100), channels_last=True)
        mover = Mover(model, origin, dirs)
    losses = []
    for a in (0.0, 0.5, 1.0):
        mover.move_([a])
        losses.append(ev()["loss"])
    reference = ls.build_model("digits_cnn", num_classes=10, in_channels=1)
    expected = []
    for a in (0.0, 0.5, 1.0):
        reference.load_state_dict({k: origin[k] + a * dirs[0][k] if k in origin else v
                                   for k, v in reference.state_dict().items()}, strict=True)
        reference.eval()
        with torch.no_grad():
            expected.append(float(nn.functional.cross_entropy(reference(data.x), data.y)))
    np.testing.assert_allclose(losses, expected, rtol=1e-5)
    assert losses[0] != losses[2]


def test_logged_training_loss_equals_the_evaluators(tmp_path):
    run = ls.train(ls.TrainConfig.from_args(arch="digits_cnn", dataset="digits", epochs=2, lr=0.05, batch_size=64,
                                        save_every=1, out=str(tmp_path / "run"), progress=False))
    test = ls.load_dataset("digits", split="test")
    model = ls.load_model("digits_cnn", run.checkpoints[-1], in_channels=1)
    values = Evaluator(model, test, EvalOptions(batch_size=97))()
    assert run.history[-1]["test_loss"] == pytest.approx(values["loss"], rel=1e-5)
    assert run.history[-1]["test_err"] == pytest.approx(100 - values["acc"], abs=1e-9)


def test_model_device_mode_and_threads_are_given_back_also_on_error():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 3))
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    threads = torch.get_num_threads()
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))

    def broken(m):
        if abs(float(m[0].weight.sum()) - float(before["0.weight"].sum())) > 1e-9:
            raise RuntimeError("metric failed away from the origin")
        return 0.0

    with pytest.raises(RuntimeError, match="metric failed"):
        ls.surface(model, (x, y), (-1, 1, 3), metrics={"b": broken}, evaluation=EvalOptions(threads=threads + 1),
                   output=QUIET)
    assert model.training and torch.get_num_threads() == threads
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_bad_requests_are_user_errors():
    model = nn.Linear(4, 3)
    x, y = torch.randn(10, 4), torch.randint(0, 3, (10,))
    with pytest.raises(LandscapeError, match="needs 2 directions"):
        ls.surface(model, (x, y), GRID3x3, directions=[snapshot(model)], output=QUIET)
    with pytest.raises(LandscapeError, match="read only once"):
        ls.surface(model, ((x, y) for _ in range(2)), (-1, 1, 3), output=QUIET)
    with pytest.raises(LandscapeError, match="more than 5"):
        ls.surface(model, (x, y), GRID3x3, output=Output(max_points=5, progress=False))
    with pytest.raises(LandscapeError, match="two metrics both write"):
        ls.surface(model, (x, y), (-1, 1, 3), metrics={"train_loss": lambda m: 0.0}, output=QUIET)


def test_import_landscape_and_plotting_do_not_import_torch():
    code = ("import sys, landscape, landscape.plot, landscape.cli.plot, landscape.plot.interactive; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_conv_net_comes_back_in_its_memory_format_also_when_setup_fails():
    model = ls.build_model("digits_cnn", num_classes=10, in_channels=1)
    data = ls.load_dataset("digits", split="test")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # runs channels-last inside
    ls.surface(model, data, (-1, 1, 3), evaluation=EvalOptions(batch_size=128), output=QUIET)
    assert all(p.is_contiguous() for p in model.parameters())
    with pytest.raises(LandscapeError, match="needs 1 directions"):
        ls.surface(model, data, (-1, 1, 3), directions=[snapshot(model), snapshot(model)], output=QUIET)
    assert all(p.is_contiguous() for p in model.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_a_surface_of_a_model_without_parameters_is_one_clear_error():
    class NoParams(nn.Module):
        def forward(self, x):
            return x[:, :3]

    data = (torch.randn(8, 4), torch.randint(0, 3, (8,)))
    with pytest.raises(LandscapeError, match=r"^the model \(NoParams\) has no parameters: a landscape moves them$"):
        ls.surface(NoParams(), data, ls.Grid("-1:1:3"), output=QUIET)
