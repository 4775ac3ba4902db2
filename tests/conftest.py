"""Shared fixtures: tiny checkpoints, and a private cache so the demo never touches ~/.cache."""

from __future__ import annotations

import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))  # so "quadratic:..." specs import tests/quadratic.py


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LANDSCAPE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    # One thread wherever the thread policy decides (library calls, child processes): torch splits
    # its sums by thread count, and the policy's count follows the machine's load, so a test that
    # compares two runs bit for bit would otherwise depend on how busy CI's machine was. Tests of
    # the policy itself set or remove the variable.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)


def save_digits_cnn(path, seed: int = 0, scale_first_conv: float = 1.0) -> str:
    """A randomly initialized digits_cnn, with its running statistics set to non-trivial values.

    ``scale_first_conv`` multiplies the first conv (which feeds BatchNorm) and its BN's running
    statistics accordingly: the network computes the same function.
    """
    from landscape.models import build_model

    torch.manual_seed(seed)
    model = build_model("digits_cnn", num_classes=10, in_channels=1)
    g = torch.Generator().manual_seed(seed + 1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.num_features, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    conv, bn = model.features[0], model.features[1]
    with torch.no_grad():
        conv.weight.mul_(scale_first_conv)
        bn.running_mean.mul_(scale_first_conv)
        bn.running_var.mul_(scale_first_conv**2)
    torch.save(model.state_dict(), path)
    return str(path)


@pytest.fixture
def digits_ckpt(tmp_path) -> str:
    return save_digits_cnn(tmp_path / "digits_cnn.pt")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    """A randomly initialized digits_cnn's state dict, shared by a test module."""
    from landscape.models import build_model

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "digits_cnn.pt"
    torch.save(build_model("digits_cnn", num_classes=10, in_channels=1).state_dict(), path)
    return str(path)


def make_surface(coords, values: dict, attrs: dict | None = None):
    """A surface from arrays already in the file's meshgrid order ([j, i] at (x[i], y[j])), every
    finite point marked done."""
    import numpy as np

    from landscape.surface_file import new_surface

    s = new_surface(coords, list(values), attrs or {})
    for name, v in values.items():
        s.values[name] = np.asarray(v, dtype=float)
        s.done[name] = np.isfinite(s.values[name])
    return s


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the tests marked slow (the whole suite)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
