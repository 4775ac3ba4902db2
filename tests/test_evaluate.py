"""The evaluator against a plain full-batch forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from landscape.data import Dataset, load_dataset
from landscape.errors import LandscapeError
from landscape.evaluate import Evaluator
from landscape.models import build_model


def reference(model, data):
    with torch.no_grad():
        model.eval()
        out = model(data.x)
        return float(F.cross_entropy(out, data.y)), 100.0 * float((out.argmax(1) == data.y).float().mean())


@pytest.fixture
def net_and_data():
    torch.manual_seed(0)
    model = build_model("digits_cnn", num_classes=10, in_channels=1)
    data = load_dataset("digits", split="test")
    return model, data


def test_loss_and_accuracy_equal_a_plain_forward_pass(net_and_data):
    model, data = net_and_data
    ref_loss, ref_acc = reference(model, data)
    for bs in (7, 64, 1000):
        loss, acc = Evaluator(model, data, batch_size=bs)()
        assert loss == pytest.approx(ref_loss, rel=1e-5)
        assert acc == pytest.approx(ref_acc, abs=1e-4)


def test_channels_last_is_exact_enough_and_probe_picks_a_candidate(net_and_data):
    model, data = net_and_data
    a = Evaluator(model, data, batch_size=128, channels_last=False)()
    ev = Evaluator(model, data, channels_last=True)
    assert ev.batch_size in (64, 128, 256, 359)  # 359: the whole test split
    b = ev()
    assert b[0] == pytest.approx(a[0], rel=1e-5) and b[1] == a[1]


def test_mse_on_labels_compares_softmax_with_one_hot_targets(net_and_data):
    model, data = net_and_data
    loss, _ = Evaluator(model, data, loss="mse", batch_size=50)()
    with torch.no_grad():
        prob = torch.softmax(model(data.x).double(), 1).numpy()
    onehot = np.eye(10)[data.y.numpy()]
    expected = float(((prob - onehot) ** 2).mean())  # the original tool's MSELoss(softmax, one-hot)
    assert loss == pytest.approx(expected, rel=1e-5)


def test_bf16_is_close_but_opt_in(net_and_data):
    model, data = net_and_data
    ref = Evaluator(model, data, batch_size=128)()[0]
    bf = Evaluator(model, data, batch_size=128, precision="bf16")()[0]
    assert bf == pytest.approx(ref, rel=0.05)


def test_bad_settings_are_user_errors(net_and_data):
    model, data = net_and_data
    with pytest.raises(LandscapeError, match="loss must be"):
        Evaluator(model, data, loss="hinge")
    with pytest.raises(LandscapeError, match="batch size"):
        Evaluator(model, data, batch_size=0)
    with pytest.raises(LandscapeError, match="regression"):
        Evaluator(torch.nn.Linear(4, 1), Dataset(torch.randn(8, 4), torch.randn(8), 0, "r"))
    with pytest.raises(LandscapeError, match="does not accept inputs of shape"):
        Evaluator(build_model("mlp", num_classes=10, in_channels=1), load_dataset("synthetic", size=8))
    with pytest.raises(LandscapeError, match="labels go up"):
        Evaluator(build_model("digits_cnn", num_classes=3, in_channels=1), data, batch_size=64)
    with pytest.raises(LandscapeError, match="empty"):
        Evaluator(model, Dataset(data.x[:0], data.y[:0], 10, "e"), batch_size=4)
