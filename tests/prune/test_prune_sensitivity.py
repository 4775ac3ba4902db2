"""Sensitivity analysis (prune one layer, evaluate unretrained), its file and resume, its plots."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import randomized

import landscape.prune.scan as sens_mod
from landscape.data.datasets import load_dataset
from landscape.engine.options import Output
from landscape.errors import LandscapeError
from landscape.evaluation.options import EvalOptions
from landscape.models import build_model
from landscape.prune import filter_norms, prune_filters, read_sensitivity, sensitivity

RATIOS = [0.25, 0.5, 0.75]
LAYERS = ["features.0", "features.3", "features.7"]
B32 = EvalOptions(batch_size=32, device="cpu")


@pytest.fixture(scope="module")
def model():
    return randomized(build_model("digits_cnn", num_classes=10, in_channels=1), seed=11)


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", split="test", shape=(1, 8, 8), size=96)


def plain(model, data, plan):
    """Loss and accuracy (%) of the pruned network by one plain forward pass."""
    net = prune_filters(model, plan).eval()
    with torch.no_grad():
        out = net(data.x)
    return F.cross_entropy(out, data.y).item(), 100.0 * (out.argmax(1) == data.y).double().mean().item()


def test_sensitivity_matches_a_plain_loop(model, data):
    res = sensitivity(model, data, RATIOS, evaluation=B32)
    assert res.layers == tuple(LAYERS)  # every conv of digits_cnn can be pruned alone
    assert res.accuracy.shape == res.loss.shape == (3, 3) and res.completed.all()
    assert res.filters == (16, 32, 32) and res.stages == (0, 0, 1)  # 8x8, 8x8, then 4x4 maps
    for i, layer in enumerate(LAYERS):
        for j, r in enumerate(RATIOS):
            loss, acc = plain(model, data, {layer: r})
            assert res.loss[i, j] == pytest.approx(loss, rel=1e-5), (layer, r)
            assert res.accuracy[i, j] == pytest.approx(acc, abs=1e-9), (layer, r)
    with torch.no_grad():
        out = model(data.x)
    assert res.baseline_loss == pytest.approx(F.cross_entropy(out, data.y).item(), rel=1e-5)
    assert len({round(v, 6) for v in res.loss.ravel()}) > 3  # pruning different layers changes different things


def test_one_layer_and_bad_inputs(model, data):
    res = sensitivity(model, data, [0.5], layers=["features.3"], evaluation=B32)
    assert res.layers == ("features.3",) and res.ratios.tolist() == [0.5]
    for kwargs, message in (
        ({"ratios": [0.5, 1.0]}, r"\[0, 1\)"),
        ({"ratios": []}, "no ratios"),
        ({"ratios": [0.5, 0.5]}, "repeat"),
        ({"ratios": [0.99]}, "removes every filter"),
        ({"ratios": [0.5], "layers": ["features.99"]}, "unknown layer"),
        ({"ratios": [0.5], "layers": ["fc"]}, "Linear"),
        ({"ratios": [0.5], "strategy": "random"}, "strategy"),
        ({"ratios": [0.5], "evaluation": EvalOptions(bn_recompute=2)}, "no `bn_recompute`"),
        ({"ratios": [0.5], "output": "sens.h5"}, "must be a landscape.Output"),
    ):
        with pytest.raises(LandscapeError, match=message):
            sensitivity(model, data, **{"evaluation": B32, **kwargs})


def test_residual_layers_cannot_be_scanned_alone():
    net = build_model("resnet20")
    small = load_dataset("synthetic", shape=(3, 32, 32), size=8)
    with pytest.raises(LandscapeError, match="alone"):
        sensitivity(net, small, [0.5], layers=["layer1.0.conv2"], evaluation=EvalOptions(batch_size=8))


class Interrupt(Exception):
    pass


def test_resume_computes_only_missing_pairs_and_equals_an_uninterrupted_run(model, data, tmp_path, monkeypatch):
    out = tmp_path / "sens.h5"
    whole = sensitivity(model, data, RATIOS, evaluation=B32)
    real, calls = sens_mod._prune, []

    def failing(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 5:
            raise Interrupt  # killed on the 5th pair: 4 are finished
        return real(*args, **kwargs)

    monkeypatch.setattr(sens_mod, "_prune", failing)
    with pytest.raises(Interrupt):
        sensitivity(model, data, RATIOS, output=Output(out, progress=False), evaluation=B32)
    part = read_sensitivity(out)
    assert part.completed.sum() == 4 and np.isnan(part.accuracy).sum() == 5
    assert np.array_equal(part.accuracy[part.completed], whole.accuracy[part.completed])

    calls.clear()
    monkeypatch.setattr(sens_mod, "_prune", lambda *a, **k: (calls.append(a[2]), real(*a, **k))[1])
    res = sensitivity(model, data, RATIOS, output=Output(out, progress=False), evaluation=B32)
    assert len(calls) == 5  # only the missing pairs
    assert np.array_equal(res.accuracy, whole.accuracy) and np.array_equal(res.loss, whole.loss)
    assert res.baseline_loss == whole.baseline_loss
    again = read_sensitivity(out)
    assert np.array_equal(again.loss, whole.loss) and again.completed.all()
    assert "resumed" in again.attrs and again.attrs["strategy"] == "independent"
    calls.clear()
    sensitivity(model, data, RATIOS, output=Output(out, progress=False), evaluation=B32)
    assert calls == []  # nothing left to do
    with h5py.File(out, "r") as f:  # a surface file over (ratio, layer): checksums, resume checks and all
        assert {"xcoordinates", "ycoordinates", "acc", "loss", "completed", "point_checksums"} <= set(f)
        assert f["acc"].shape == (len(again.layers), len(RATIOS)) and f.attrs["kind"] == "pruning sensitivity"
        np.testing.assert_array_equal(f["xcoordinates"][()], RATIOS)
    assert again.filters[0] == 16 and again.layers[0] == "features.0"


def test_other_inputs_are_refused(model, data, tmp_path):
    out = tmp_path / "sens.h5"
    sensitivity(model, data, [0.5], output=Output(out, progress=False), evaluation=B32)
    before = out.read_bytes()
    with pytest.raises(LandscapeError, match="ratios"):
        sensitivity(model, data, [0.25], output=Output(out, progress=False), evaluation=B32)
    with pytest.raises(LandscapeError, match="layers"):
        sensitivity(model, data, [0.5], layers=["features.0"], output=Output(out, progress=False), evaluation=B32)
    other = randomized(build_model("digits_cnn", num_classes=10, in_channels=1), seed=12)
    with pytest.raises(LandscapeError, match="model differs"):
        sensitivity(other, data, [0.5], output=Output(out, progress=False), evaluation=B32)
    with pytest.raises(LandscapeError, match="data differ"):
        sensitivity(model, load_dataset("synthetic", split="test", shape=(1, 8, 8), size=96, seed=1), [0.5],
                    output=Output(out, progress=False), evaluation=B32)
    with pytest.raises(LandscapeError, match="strategy"):
        sensitivity(model, data, [0.5], output=Output(out, progress=False), evaluation=B32, strategy="greedy")
    assert out.read_bytes() == before
    res = sensitivity(model, data, [0.25], output=Output(out, overwrite=True, progress=False), evaluation=B32)
    assert read_sensitivity(out).ratios.tolist() == [0.25] == res.ratios.tolist()


def test_filter_norms(model):
    norms = filter_norms(model)
    assert list(norms) == LAYERS
    for name, conv in ((n, m) for n, m in model.named_modules() if n in LAYERS):
        plain_ = sorted((float(conv.weight.detach()[i].abs().sum()) for i in range(conv.out_channels)), reverse=True)
        assert np.allclose(norms[name], np.array(plain_) / plain_[0])
    raw = filter_norms(model, ["features.0"], normalize=False)["features.0"]
    assert raw[0] == pytest.approx(float(model.features[0].weight.detach().abs().sum((1, 2, 3)).max()))


def test_plots(model, data, tmp_path):
    from landscape.plot.prune import norm_curves, pruning_figures, sensitivity_curves

    res = sensitivity(model, data, RATIOS, evaluation=B32)
    fig = pruning_figures(res, filter_norms(model, res.layers))
    ax = fig["sensitivity"].axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label() in LAYERS]
    assert len(lines) == 3
    assert np.allclose(lines[1].get_ydata(), res.accuracy[1]) and np.allclose(lines[0].get_xdata(), [25, 50, 75])
    assert len({lines[k].get_color() for k in range(3)}) == 3  # each layer its own colour (issue 24)
    from matplotlib.figure import Figure

    ax2 = Figure().subplots()
    artists = sensitivity_curves(ax2, res, quantity="loss")
    assert len(artists) == 4  # three layers and the unpruned baseline
    ax3 = Figure().subplots()
    curves = norm_curves(ax3, filter_norms(model))
    assert len(curves) == 3 and curves[0].get_ydata()[0] == pytest.approx(1.0)
    for key, f in fig.items():
        f.savefig(tmp_path / f"{key}.png", dpi=40)
        assert (tmp_path / f"{key}.png").stat().st_size > 500


def test_sensitivity_takes_every_form_of_data_surface_takes():
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    model = build_model("digits_cnn", num_classes=10, in_channels=1).eval()
    data = load_dataset("synthetic", split="test", shape=(1, 8, 8), size=64)
    X, y = data.x, data.y
    with torch.no_grad():  # the reference: a plain forward pass of the pruned network
        out = prune_filters(model, {"features.3": 0.5}).eval()(X)
    loss, acc = F.cross_entropy(out, y).item(), 100.0 * (out.argmax(1) == y).double().mean().item()
    for given in [(X, y), data, TensorDataset(X, y), DataLoader(TensorDataset(X, y), batch_size=16)]:
        res = sensitivity(model, given, [0.5], layers=["features.3"], evaluation=EvalOptions(batch_size=16))
        assert res.loss[0, 0] == pytest.approx(loss, rel=1e-5), type(given).__name__
        assert res.accuracy[0, 0] == pytest.approx(acc, abs=1e-9)
        assert res.stages == (0,)
